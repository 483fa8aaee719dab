import { InvalidArgumentError } from "@cinderts/core";

/**
 * POSIX single-quoting: inside '…' nothing is special, so the only character to handle is the quote
 * itself ('\'' closes, adds an escaped quote, reopens). NUL cannot be passed through any shell.
 */
export function shQuote(arg: string): string {
  if (arg.includes("\0")) throw new InvalidArgumentError("a command argument contains a NUL byte, which no remote shell can pass on");
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Marker line the remote shell writes to stderr first, so the runner can signal the process group later. */
export const PID_MARKER = "__CINDERTS_PID__=";

export interface RemoteCommandOptions {
  /** Prefix `sudo -n --` (no password prompt: fail instead of hanging). */
  sudo?: boolean;
  env?: Record<string, string>;
  cwd?: string;
  /** Run under coreutils `timeout`, which ends the whole process group remotely. */
  timeoutMs?: number;
  killAfterMs?: number;
}

/** The argv actually executed remotely (prefixes included), before quoting: what errors and logs show. */
export function remoteArgv(argv: readonly string[], opts: RemoteCommandOptions = {}): string[] {
  const out: string[] = [];
  if (opts.sudo) out.push("sudo", "-n", "--");
  const env = Object.entries(opts.env ?? {});
  if (env.length) {
    for (const [k] of env) {
      if (!ENV_NAME.test(k)) throw new InvalidArgumentError(`environment variable name ${JSON.stringify(k)} is not valid`);
    }
    out.push("env", ...env.map(([k, v]) => `${k}=${v}`));
  }
  if (opts.timeoutMs !== undefined) {
    const secs = (ms: number) => (Math.max(ms, 1) / 1000).toFixed(3);
    out.push("timeout", "-k", secs(opts.killAfterMs ?? 2000), secs(opts.timeoutMs));
  }
  out.push(...argv);
  return out;
}

/**
 * The string handed to the remote login shell (which must be POSIX sh compatible): every argument
 * single-quoted, never a string built by joining input. It first reports its pid (the session's process
 * group, since sshd calls setsid), then execs the command in place so that pid stays the command's.
 */
export function remoteCommandLine(argv: readonly string[], opts: RemoteCommandOptions = {}): string {
  const full = remoteArgv(argv, opts).map(shQuote).join(" ");
  const cd = opts.cwd !== undefined ? `cd ${shQuote(opts.cwd)} && ` : "";
  return `printf '${PID_MARKER}%s\\n' "$$" >&2; ${cd}exec ${full}`;
}
