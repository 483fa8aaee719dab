import { execFile } from "node:child_process";
import {
  CommandError,
  InProcessLockManager,
  maskSecrets,
  silentLogger,
  type CommandRunner,
  type RunOptions,
  type RunResult,
  type TargetContext,
} from "@cinderts/core";

export interface Call {
  argv: string[];
  opts: RunOptions | undefined;
}

/** Unit tests of drivers, targets and connectors: records every argv and answers from a handler; a handler may throw to simulate a failing command. */
export class RecordingRunner implements CommandRunner {
  readonly name = "recording";
  readonly calls: Call[] = [];
  constructor(private readonly handler: (argv: string[], opts?: RunOptions) => Partial<RunResult> | void = () => undefined) {}
  async run(argv: readonly string[], opts?: RunOptions): Promise<RunResult> {
    this.calls.push({ argv: [...argv], opts });
    const r = this.handler([...argv], opts) ?? {};
    return { stdout: r.stdout ?? "", stderr: r.stderr ?? "", exitCode: r.exitCode ?? 0 };
  }
}

export function failing(argv: string[], stderr: string, exitCode = 22): never {
  throw new CommandError(argv, exitCode, stderr);
}

/** Minimal local runner for tests of packages that must not depend on @cinderts/runner-local. */
export class LocalTestRunner implements CommandRunner {
  readonly name = "local-test";
  run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    return new Promise((resolve, reject) => {
      const child = execFile(
        argv[0]!,
        argv.slice(1),
        { timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 << 20, env: { ...process.env, ...opts.env } },
        (err, stdout, stderr) => {
          const code = err ? (typeof err.code === "number" ? err.code : null) : 0;
          if (code === 0 || (code !== null && opts.okExitCodes?.includes(code))) {
            resolve({ stdout, stderr, exitCode: code ?? 0 });
          } else {
            const s = opts.secrets ?? [];
            reject(new CommandError(argv.map((a) => maskSecrets(a, s)), code, maskSecrets(stderr, s)));
          }
        },
      );
      // a command that never reads stdin may exit before we finish writing it
      child.stdin?.on("error", () => undefined);
      child.stdin?.end(opts.input ?? "");
    });
  }
}

export function targetContext(runner: CommandRunner, stateDir = "/tmp"): TargetContext {
  return {
    logger: silentLogger,
    runner,
    locks: new InProcessLockManager(),
    stateDir,
    kv: { get: async () => undefined, set: async () => undefined, delete: async () => undefined, list: async () => [] },
    backendName: "test",
    nodeId: "test-node",
    baseDir: "/tmp",
  };
}
