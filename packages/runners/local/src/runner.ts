import {
  AuthError,
  CommandError,
  InvalidArgumentError,
  TimeoutError,
  maskSecrets,
  silentLogger,
  type CommandRunner,
  type Logger,
  type RunOptions,
  type RunResult,
  type SpawnedCommand,
} from "@cinderts/core";
import type { ChildProcessWithoutNullStreams, SpawnOptionsWithoutStdio } from "node:child_process";
import type { Result } from "execa";
import { onExit } from "signal-exit";
import type { RunnerLocalOptions } from "./config.js";

/**
 * node:child_process is loaded on the first spawn, not at import: it pulls in node's net and stream modules
 * (~7 ms of a cold start), and a process on librbd or a `volume list` never runs a command.
 */
function spawnPiped(file: string, args: string[], opts: SpawnOptionsWithoutStdio): ChildProcessWithoutNullStreams {
  return process.getBuiltinModule("node:child_process").spawn(file, args, opts); // stdio: all three piped
}

/**
 * execa is ~100 ES modules (~300 ms to load on a small VM): loaded on the first command, not when the plugin is,
 * so a CLI command that runs nothing (volume list) does not pay for it.
 */
let execaModule: Promise<typeof import("execa")> | undefined;
const loadExeca = () => (execaModule ??= import("execa"));

/** How much of stderr an error keeps: enough for the tool's message, not a whole log. */
export const STDERR_TAIL_CHARS = 4096;
/** After SIGTERM on timeout, how long the process group gets before SIGKILL. */
export const KILL_GRACE_MS = 2000;

export interface LocalRunnerDeps {
  logger?: Logger;
  /** Whether this process runs as root; detected with process.getuid() when omitted. */
  isRoot?: boolean;
}

function validateArgv(argv: readonly string[]): void {
  if (!Array.isArray(argv) || argv.length === 0) {
    throw new InvalidArgumentError("a command is an argv array with at least the program name");
  }
  argv.forEach((a, i) => {
    if (typeof a !== "string") throw new InvalidArgumentError(`argv[${i}] is not a string`);
    // NUL cannot be passed to execve: it would silently cut the argument short.
    if (a.includes("\0")) throw new InvalidArgumentError(`argv[${i}] contains a NUL byte`);
  });
  if (argv[0] === "") throw new InvalidArgumentError("argv[0] (the program) is empty");
}

function tailOf(s: string, max = STDERR_TAIL_CHARS): string {
  return s.length > max ? s.slice(-max) : s;
}

function decode(v: unknown): string {
  if (typeof v === "string") return v;
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("utf8");
  return "";
}

function toBuffer(v: unknown): Buffer {
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  return Buffer.from(typeof v === "string" ? v : "");
}

/**
 * Kills the whole process group: commands run detached (their own group), so a timeout also reaches
 * what they started (sudo's child, a helper's workers) instead of leaving it holding our pipes.
 */
function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (!pid) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is gone already.
  }
}

/**
 * Process groups of commands still running. Detached groups do not get the terminal's Ctrl-C and execa's
 * own cleanup skips them, so without this a CLI interrupted mid-clone would leave its `cp` running.
 * (Nothing helps against SIGKILL of this process: reconcile settles what such a crash leaves.)
 */
const liveGroups = new Set<number>();
let removeExitHook: (() => void) | undefined;

function track(pid: number | undefined): void {
  if (!pid) return;
  liveGroups.add(pid);
  removeExitHook ??= onExit(() => {
    for (const g of liveGroups) killGroup(g, "SIGTERM");
  });
}

function untrack(pid: number | undefined): void {
  if (!pid) return;
  liveGroups.delete(pid);
  if (liveGroups.size === 0 && removeExitHook) {
    removeExitHook();
    removeExitHook = undefined;
  }
}

/**
 * The execa CommandRunner: argv arrays only (never a shell), an optional root-helper prefix, timeouts
 * that kill the process group, secrets masked in every error and log line.
 */
export class LocalRunner implements CommandRunner {
  readonly name = "local";
  private readonly logger: Logger;
  private readonly isRoot: boolean;

  constructor(
    private readonly options: RunnerLocalOptions,
    deps: LocalRunnerDeps = {},
  ) {
    this.logger = deps.logger ?? silentLogger;
    this.isRoot = deps.isRoot ?? process.getuid?.() === 0;
  }

  /** The argv actually executed: with the root helper in front when root is needed and we are not root. */
  commandLine(argv: readonly string[], root = false): string[] {
    validateArgv(argv);
    if (!root || this.isRoot) return [...argv];
    if (!this.options.rootHelper) {
      throw new AuthError(
        `\`${argv[0]}\` needs root, this process is not root and no rootHelper is configured (e.g. rootHelper: ["sudo", "-n", "--"])`,
        "FORBIDDEN",
      );
    }
    return [...this.options.rootHelper, ...argv];
  }

  async run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    const full = this.commandLine(argv, opts.root);
    const secrets = opts.secrets ?? [];
    const shown = full.map((a) => maskSecrets(a, secrets));
    const timeoutMs = opts.timeoutMs ?? this.options.defaultTimeoutMs;
    if (opts.signal?.aborted) {
      throw new CommandError(shown, null, "", { cause: opts.signal.reason, data: { aborted: true } });
    }
    const { execa } = await loadExeca();
    const started = performance.now();

    const child = execa(full[0]!, full.slice(1), {
      ...(opts.input === undefined ? { stdin: "ignore" as const } : { input: opts.input }),
      // Tools' messages are matched in a few places (losetup, rbd): keep them in one language.
      env: { LC_ALL: "C", ...opts.env },
      extendEnv: true,
      cwd: opts.cwd,
      encoding: opts.binary ? "buffer" : "utf8",
      stripFinalNewline: false,
      reject: false,
      detached: true,
      maxBuffer: 512 * 1024 * 1024,
    });

    track(child.pid);
    let timedOut = false;
    let aborted = false;
    const timers: NodeJS.Timeout[] = [];
    const terminate = () => {
      killGroup(child.pid, "SIGTERM");
      const t = setTimeout(() => killGroup(child.pid, "SIGKILL"), KILL_GRACE_MS);
      t.unref();
      timers.push(t);
    };
    if (timeoutMs > 0) {
      timers.push(
        setTimeout(() => {
          timedOut = true;
          terminate();
        }, timeoutMs),
      );
    }
    const onAbort = () => {
      aborted = true;
      terminate();
    };
    opts.signal?.addEventListener("abort", onAbort, { once: true });

    let result: Result;
    try {
      result = (await child) as unknown as Result;
    } finally {
      for (const t of timers) clearTimeout(t);
      opts.signal?.removeEventListener("abort", onAbort);
      untrack(child.pid);
    }
    // Stragglers that ignored SIGTERM and closed their pipes would otherwise outlive the timeout.
    if (timedOut || aborted) killGroup(child.pid, "SIGKILL");

    const ms = Math.round(performance.now() - started);
    const stderr = decode(result.stderr);
    const stderrTail = maskSecrets(tailOf(stderr), secrets);
    const exitCode = typeof result.exitCode === "number" ? result.exitCode : null;
    const signal = result.signal ?? undefined;
    this.logger.debug("run", { argv: shown, exitCode, signal, ms });

    if (timedOut) {
      throw new TimeoutError(`command \`${shown.join(" ")}\` timed out after ${timeoutMs} ms and was killed`, {
        data: { argv: shown, timeoutMs, stderr: stderrTail },
      });
    }
    if (aborted) {
      throw new CommandError(shown, null, stderrTail, {
        signal: signal ?? "SIGTERM",
        cause: opts.signal?.reason,
        data: { aborted: true },
      });
    }
    const spawnCode = (result as { code?: string }).code ?? (result.cause as { code?: string } | undefined)?.code;
    if (exitCode === null && !signal && spawnCode) {
      // Spawning failed (no such program, not executable): report it the way a shell would (127/126).
      const code = spawnCode === "ENOENT" ? 127 : 126;
      const why = spawnCode === "ENOENT" ? "command not found" : `cannot execute (${spawnCode})`;
      throw new CommandError(shown, code, `${shown[0]}: ${why}`, { cause: result.cause });
    }
    if ((result as { isMaxBuffer?: boolean }).isMaxBuffer) {
      throw new CommandError(shown, exitCode, `${stderrTail}\n(output larger than the runner's buffer)`.trim());
    }
    const ok = opts.okExitCodes ?? [0];
    if (exitCode === null || !ok.includes(exitCode)) {
      throw new CommandError(shown, exitCode, stderrTail, signal ? { signal } : {});
    }
    if (opts.binary) {
      const stdoutBuffer = toBuffer(result.stdout);
      return { stdout: "", stderr, exitCode, stdoutBuffer };
    }
    return { stdout: decode(result.stdout), stderr, exitCode };
  }

  spawn(argv: readonly string[], opts: Omit<RunOptions, "input" | "timeoutMs"> = {}): SpawnedCommand {
    const full = this.commandLine(argv, opts.root);
    const shown = full.map((a) => maskSecrets(a, opts.secrets ?? []));
    // Plain child_process: a stream-to-stream command needs none of execa's buffering, and spawn() must return
    // at once, before execa could be loaded.
    const child = spawnPiped(full[0]!, full.slice(1), {
      env: { ...process.env, LC_ALL: "C", ...opts.env },
      cwd: opts.cwd,
      detached: true,
    });
    // Writing to a command that already exited raises EPIPE on stdin: the exit status tells the caller, the
    // unhandled stream error would end this process.
    child.stdin.on("error", () => undefined);
    const kill = (signal: NodeJS.Signals = "SIGTERM") => killGroup(child.pid, signal);
    track(child.pid);
    if (opts.signal) {
      if (opts.signal.aborted) kill();
      else opts.signal.addEventListener("abort", () => kill(), { once: true });
    }
    this.logger.debug("spawn", { argv: shown, pid: child.pid });
    const exited = new Promise<{ exitCode: number | null; signal: string | null }>((resolve) => {
      // A program that cannot be started emits "error" (ENOENT …) and may never emit "close".
      child.once("error", () => {
        untrack(child.pid);
        resolve({ exitCode: null, signal: null });
      });
      child.once("close", (exitCode, signal) => {
        untrack(child.pid);
        resolve({ exitCode, signal });
      });
    });
    return { stdin: child.stdin, stdout: child.stdout, stderr: child.stderr, exited, kill };
  }
}
