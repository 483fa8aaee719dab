import { execFile } from "node:child_process";
import {
  CommandError,
  TimeoutError,
  createJsonLogger,
  InProcessLockManager,
  type CommandRunner,
  type DriverContext,
  type RunOptions,
  type RunResult,
} from "@cinderts/core";

/** A plain local runner for these tests (execFile, argv only), failing the way the CommandRunner contract says. */
export class ExecRunner implements CommandRunner {
  readonly name = "local";
  readonly calls: string[][] = [];
  run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    this.calls.push([...argv]);
    return new Promise((resolve, reject) => {
      const child = execFile(
        argv[0]!,
        argv.slice(1),
        { timeout: opts.timeoutMs ?? 0, maxBuffer: 64 * 1024 * 1024, encoding: "utf8" },
        (err, stdout, stderr) => {
          if (!err) return resolve({ stdout, stderr, exitCode: 0 });
          const e = err as NodeJS.ErrnoException & { code?: number | string; killed?: boolean; signal?: string };
          if (e.killed && opts.timeoutMs) return reject(new TimeoutError(`${argv[0]} timed out`));
          const code = typeof e.code === "number" ? e.code : null;
          if (code !== null && opts.okExitCodes?.includes(code)) return resolve({ stdout, stderr, exitCode: code });
          reject(new CommandError([...argv], code, stderr.slice(-2000), e.signal ? { signal: e.signal } : {}));
        },
      );
      if (opts.input !== undefined) child.stdin?.end(opts.input);
    });
  }
}

type Reply = { stdout?: string; exitCode?: number; stderr?: string } | ((argv: readonly string[]) => RunResult);

/** Records every argv and answers from a script: first matching [prefix-test, reply]; unmatched → exit 0, "". */
export class RecordingRunner implements CommandRunner {
  readonly name = "local";
  readonly calls: string[][] = [];
  constructor(private readonly script: [(argv: readonly string[]) => boolean, Reply][] = []) {}
  async run(argv: readonly string[]): Promise<RunResult> {
    this.calls.push([...argv]);
    const hit = this.script.find(([m]) => m(argv));
    if (!hit) return { stdout: "", stderr: "", exitCode: 0 };
    const r = hit[1];
    if (typeof r === "function") return r(argv);
    if (r.exitCode && r.exitCode !== 0) throw new CommandError([...argv], r.exitCode, r.stderr ?? "");
    return { stdout: r.stdout ?? "", stderr: r.stderr ?? "", exitCode: 0 };
  }
}

/** argv contains these words in this order (after the common ceph args). */
export const has =
  (...words: string[]) =>
  (argv: readonly string[]): boolean => {
    let i = 0;
    for (const a of argv) if (a === words[i]) i++;
    return i === words.length;
  };

export function driverContext(runner: CommandRunner, backendName = "ceph"): DriverContext {
  const store = new Map<string, unknown>();
  return {
    logger: createJsonLogger({ level: "error" }),
    runner,
    locks: new InProcessLockManager(),
    stateDir: "/tmp",
    backendName,
    kv: {
      get: async (k) => store.get(k),
      set: async (k, v) => void store.set(k, v),
      delete: async (k) => void store.delete(k),
      list: async (p = "") => [...store.keys()].filter((k) => k.startsWith(p)),
    },
  };
}
