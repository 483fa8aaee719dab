import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { PassThrough } from "node:stream";
import {
  BackendError,
  CommandError,
  InvalidArgumentError,
  TimeoutError,
  maskSecrets,
  type CommandRunner,
  type Logger,
  type RunOptions,
  type RunResult,
  type SpawnedCommand,
} from "@cinderts/core";
import ssh2 from "ssh2";
import type { ClientChannel, ConnectConfig, ParsedKey } from "ssh2";
import type { SshRunnerSettings } from "./config.js";
import { HostKeyError, SshAuthError } from "./errors.js";
import { checkKnownHosts, fingerprintOf, knownKeyTypes, parseKnownHosts } from "./known-hosts.js";
import { PID_MARKER, remoteArgv, remoteCommandLine } from "./quote.js";

const { Client, utils } = ssh2;
type Client = InstanceType<typeof Client>;

/** Bytes of stderr kept for a CommandError (the full stderr is in RunResult). */
const STDERR_TAIL = 4096;

/** Preference order of host key algorithms, used to ask for the types known_hosts holds for this host. */
const HOSTKEY_ALGOS: Record<string, string[]> = {
  "ssh-ed25519": ["ssh-ed25519"],
  "ecdsa-sha2-nistp256": ["ecdsa-sha2-nistp256"],
  "ecdsa-sha2-nistp384": ["ecdsa-sha2-nistp384"],
  "ecdsa-sha2-nistp521": ["ecdsa-sha2-nistp521"],
  "ssh-rsa": ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"],
};

const noopLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return noopLogger;
  },
};

interface Slot {
  release(): void;
}

/**
 * A CommandRunner over one SSH connection per runner (one runner per host), opened lazily, kept alive
 * and reopened after it drops. Commands are argv arrays, quoted per argument for the remote POSIX shell.
 */
export class SshRunner implements CommandRunner {
  readonly name: string;
  private connecting?: Promise<Client>;
  private client?: Client;
  private active = 0;
  private readonly waiting: Array<{ grant: () => void; fail: (e: unknown) => void }> = [];
  private closed = false;
  private readonly secrets: string[];
  private readonly log: Logger;
  /** Connections opened so far (1 + reconnects), for diagnostics and tests. */
  connects = 0;

  constructor(
    private readonly cfg: SshRunnerSettings,
    logger: Logger = noopLogger,
  ) {
    this.name = `ssh:${cfg.username}@${cfg.host}:${cfg.port}`;
    this.secrets = [cfg.password, cfg.passphrase, cfg.privateKey].filter((s): s is string => !!s);
    this.log = logger.child({ runner: this.name });
  }

  /** Commands running now and waiting for a channel. */
  get load(): { active: number; queued: number } {
    return { active: this.active, queued: this.waiting.length };
  }

  async run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    checkArgv(argv);
    const secrets = [...this.secrets, ...(opts.secrets ?? [])];
    const timeoutMs = opts.timeoutMs ?? this.cfg.timeoutMs;
    const sudo = this.useSudo(opts.root);
    const full = remoteArgv(argv, { sudo, env: opts.env, timeoutMs, killAfterMs: this.cfg.killGraceMs });
    const shown = full.map((a) => maskSecrets(a, secrets));
    const line = remoteCommandLine(argv, {
      sudo,
      env: opts.env,
      cwd: opts.cwd,
      timeoutMs,
      killAfterMs: this.cfg.killGraceMs,
    });
    opts.signal?.throwIfAborted();
    const started = Date.now();
    const slot = await this.acquire(opts.signal);
    try {
      let result!: Promise<RunResult>;
      await this.openChannel(line, shown, (channel) => {
        result = this.collect(channel, { ...opts, timeoutMs }, shown, secrets, sudo);
      });
      const r = await result;
      this.log.debug("ssh command", { argv: shown, exitCode: r.exitCode, ms: Date.now() - started });
      return r;
    } catch (e) {
      this.log.debug("ssh command failed", { argv: shown, error: (e as { code?: string }).code ?? "ABORTED", ms: Date.now() - started });
      throw e;
    } finally {
      slot.release();
    }
  }

  spawn(argv: readonly string[], opts: Omit<RunOptions, "input" | "timeoutMs"> = {}): SpawnedCommand {
    checkArgv(argv);
    const sudo = this.useSudo(opts.root);
    const secrets = [...this.secrets, ...(opts.secrets ?? [])];
    const shown = remoteArgv(argv, { sudo, env: opts.env }).map((a) => maskSecrets(a, secrets));
    const line = remoteCommandLine(argv, { sudo, env: opts.env, cwd: opts.cwd });
    const stdin = new PassThrough();
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let pid: number | undefined;
    let pendingSignal: string | undefined;
    const exited = (async () => {
      const slot = await this.acquire(opts.signal);
      try {
        let done!: Promise<{ exitCode: number | null; signal?: string | null }>;
        await this.openChannel(line, shown, (channel) => {
          done = new Promise<{ exitCode: number | null; signal?: string | null }>((resolve, reject) => {
            let exitCode: number | null | undefined;
            let signal: string | null = null;
            const pidReader = new PidStripper((p) => {
              pid = p;
              if (pendingSignal) void this.signalGroup(p, pendingSignal, sudo);
            });
            channel.stderr.on("data", (b: Buffer) => {
              const rest = pidReader.push(b);
              if (rest.length) stderr.write(rest);
            });
            channel.pipe(stdout);
            stdin.pipe(channel);
            channel.on("exit", (code: number | null, sig?: string) => {
              exitCode = code ?? null;
              signal = sig ?? null;
            });
            channel.on("close", () => {
              stderr.end(pidReader.end());
              if (exitCode === undefined) {
                reject(this.lostError(shown));
                return;
              }
              resolve({ exitCode, signal });
            });
          });
        });
        return await done;
      } finally {
        slot.release();
      }
    })();
    return {
      stdin,
      stdout,
      stderr,
      exited,
      kill: (sig: NodeJS.Signals = "SIGTERM") => {
        const name = sig.replace(/^SIG/, "");
        if (pid === undefined) pendingSignal = name;
        else void this.signalGroup(pid, name, sudo);
      },
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.waiting.splice(0)) w.fail(new BackendError(`${this.name}: runner closed`));
    const c = this.client;
    this.client = undefined;
    this.connecting = undefined;
    if (c) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          c.destroy();
          resolve();
        }, 2000);
        c.once("close", () => {
          clearTimeout(t);
          resolve();
        });
        c.end();
      });
    }
  }

  // ───────────── commands ─────────────

  private useSudo(root: boolean | undefined): boolean {
    return this.cfg.sudo === "always" || (this.cfg.sudo === "root" && root === true);
  }

  /**
   * Opens an exec channel and hands it to `attach` synchronously, inside ssh2's callback: a fast command's
   * exit-status can arrive in the same packet batch as the exec confirmation, and ssh2 emits "exit" (a plain
   * event, not buffered) and schedules "close" before any promise continuation would run.
   * When opening fails the command has not started, so it is safe to try once more, on a fresh connection
   * if the old one is gone (a dropped connection noticed only now).
   */
  private async openChannel(line: string, shown: string[], attach: (channel: ClientChannel) => void): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const client = await this.connection();
      try {
        await new Promise<void>((resolve, reject) =>
          client.exec(line, (err, ch) => {
            if (err) return reject(err);
            attach(ch);
            resolve();
          }),
        );
        return;
      } catch (e) {
        if (attempt === 0 && !this.closed) {
          this.log.warn("ssh channel open failed, retrying", { argv: shown, error: String((e as Error).message ?? e) });
          if (this.client === client && !isUsable(client)) this.forget(client);
          continue;
        }
        throw new BackendError(`${this.name}: could not start \`${shown.join(" ")}\`: ${(e as Error).message}`, {
          retryable: true,
          cause: e,
          data: { host: this.cfg.host, port: this.cfg.port },
        });
      }
    }
  }

  private collect(
    channel: ClientChannel,
    opts: RunOptions,
    shown: string[],
    secrets: string[],
    sudo: boolean,
  ): Promise<RunResult> {
    return new Promise<RunResult>((resolve, reject) => {
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let exitCode: number | null | undefined;
      let exitSignal: string | undefined;
      let pid: number | undefined;
      let deadlinePassed = false;
      let aborted = false;
      let settled = false;
      const timers: NodeJS.Timeout[] = [];
      const pidReader = new PidStripper((p) => (pid = p));

      const finish = (fn: () => void) => {
        if (settled) return;
        settled = true;
        for (const t of timers) clearTimeout(t);
        opts.signal?.removeEventListener("abort", onAbort);
        fn();
      };
      const timeoutError = () =>
        new TimeoutError(`command \`${shown.join(" ")}\` on ${this.name} timed out after ${opts.timeoutMs} ms and was ended`, {
          data: { argv: shown, timeoutMs: opts.timeoutMs, host: this.cfg.host },
        });
      // Ends the remote process group, then the channel; used on abort and when remote `timeout` did not act.
      const endRemote = () => {
        if (pid !== undefined) {
          const p = pid;
          void this.signalGroup(p, "TERM", sudo);
          timers.push(setTimeout(() => void this.signalGroup(p, "KILL", sudo).finally(() => channel.close()), this.cfg.killGraceMs));
        } else channel.close();
      };
      const onAbort = () => {
        aborted = true;
        endRemote();
        // Do not wait for the remote side to confirm: the caller asked to stop now.
        finish(() => reject(opts.signal?.reason ?? new Error("aborted")));
      };

      channel.on("data", (b: Buffer) => out.push(b));
      channel.stderr.on("data", (b: Buffer) => {
        const rest = pidReader.push(b);
        if (rest.length) err.push(rest);
      });
      channel.on("exit", (code: number | null, signal?: string) => {
        if (code === null || code === undefined) {
          exitCode = null;
          exitSignal = signal;
        } else exitCode = code;
      });
      channel.on("close", () => {
        err.push(pidReader.end());
        const stderrBuf = Buffer.concat(err);
        const stderr = stderrBuf.toString("utf8");
        const tail = maskSecrets(stderrBuf.subarray(-STDERR_TAIL).toString("utf8"), secrets);
        finish(() => {
          if (aborted) return;
          // Remote `timeout` exits 124 (TERM worked) or 137 (needed KILL); a signal death counts too.
          if (deadlinePassed && (exitCode === 124 || exitCode === 137 || exitCode === null || exitCode === undefined)) {
            reject(timeoutError());
            return;
          }
          if (exitCode === undefined) {
            reject(this.lostError(shown));
            return;
          }
          if (exitCode === null) {
            reject(new CommandError(shown, null, tail, { host: this.name, ...(exitSignal ? { signal: exitSignal } : {}) }));
            return;
          }
          const ok = opts.okExitCodes ?? [0];
          if (!ok.includes(exitCode)) {
            reject(new CommandError(shown, exitCode, tail, { host: this.name }));
            return;
          }
          const stdoutBuf = Buffer.concat(out);
          resolve({
            stdout: opts.binary ? "" : stdoutBuf.toString("utf8"),
            stderr,
            exitCode,
            ...(opts.binary ? { stdoutBuffer: stdoutBuf } : {}),
          });
        });
      });

      if (opts.timeoutMs !== undefined) {
        timers.push(setTimeout(() => (deadlinePassed = true), opts.timeoutMs));
        // Backstop in case the remote `timeout` cannot act (stopped process, hung connection).
        timers.push(
          setTimeout(() => {
            endRemote();
            timers.push(setTimeout(() => finish(() => reject(timeoutError())), this.cfg.killGraceMs + 1000));
          }, opts.timeoutMs + this.cfg.killGraceMs + 3000),
        );
      }
      if (opts.signal) {
        if (opts.signal.aborted) onAbort();
        else opts.signal.addEventListener("abort", onAbort, { once: true });
      }

      if (opts.input !== undefined) channel.end(opts.input);
      else channel.end(); // EOF at once, so commands that read stdin do not wait for input that never comes
    });
  }

  /** Sends a signal to the remote process group on its own short channel (outside the slot bound). */
  private async signalGroup(pid: number, signal: string, sudo: boolean): Promise<void> {
    if (!/^[A-Z0-9]+$/.test(signal)) return;
    try {
      const client = await this.connection();
      const line = remoteCommandLine(["kill", `-${signal}`, "--", `-${pid}`], { sudo });
      await new Promise<void>((resolve) =>
        client.exec(line, (err, ch) => {
          if (err) return resolve();
          ch.on("close", () => resolve());
          ch.resume();
          ch.stderr.resume();
          ch.end();
        }),
      );
    } catch (e) {
      this.log.warn("could not signal remote command", { pid, signal, error: String((e as Error).message ?? e) });
    }
  }

  private lostError(shown: string[]): BackendError {
    return new BackendError(
      `connection ${this.name} was lost while \`${shown.join(" ")}\` ran; its outcome is unknown (the next command reconnects)`,
      { retryable: true, data: { argv: shown, host: this.cfg.host, port: this.cfg.port } },
    );
  }

  // ───────────── channel slots ─────────────

  private acquire(signal?: AbortSignal): Promise<Slot> {
    if (this.closed) return Promise.reject(new BackendError(`${this.name}: runner closed`));
    const slot = (): Slot => {
      let done = false;
      return {
        release: () => {
          if (done) return;
          done = true;
          this.active--;
          const next = this.waiting.shift();
          if (next) next.grant();
        },
      };
    };
    if (this.active < this.cfg.maxChannels) {
      this.active++;
      return Promise.resolve(slot());
    }
    return new Promise<Slot>((resolve, reject) => {
      const entry = {
        grant: () => {
          signal?.removeEventListener("abort", onAbort);
          this.active++;
          resolve(slot());
        },
        fail: reject,
      };
      const onAbort = () => {
        const i = this.waiting.indexOf(entry);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(signal?.reason ?? new Error("aborted"));
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiting.push(entry);
    });
  }

  // ───────────── connection ─────────────

  private connection(): Promise<Client> {
    if (this.closed) return Promise.reject(new BackendError(`${this.name}: runner closed`));
    if (this.client && isUsable(this.client)) return Promise.resolve(this.client);
    if (!this.connecting) {
      const p = this.connect();
      this.connecting = p;
      p.then(
        (c) => {
          if (this.connecting === p) this.connecting = undefined;
          this.client = c;
        },
        () => {
          if (this.connecting === p) this.connecting = undefined;
        },
      );
    }
    return this.connecting;
  }

  private forget(c: Client): void {
    if (this.client === c) this.client = undefined;
    c.destroy();
  }

  private async connect(): Promise<Client> {
    const { host, port } = this.cfg;
    const auth = await this.loadAuth();
    const verify = await this.hostKeyCheck();
    const started = Date.now();
    const attempt = ++this.connects;
    return new Promise<Client>((resolve, reject) => {
      const c = new Client();
      let hostKeyFailure: HostKeyError | undefined;
      let ready = false;
      c.on("ready", () => {
        ready = true;
        // Commands are small request/response exchanges; with Nagle on, each channel open and exec
        // confirmation waited for a delayed ACK (~90 ms per command on 127.0.0.1, ~10 ms without).
        c.setNoDelay(true);
        this.log.info(attempt > 1 ? "ssh reconnected" : "ssh connected", { host, port, ms: Date.now() - started });
        resolve(c);
      });
      c.on("error", (e: Error & { level?: string; code?: string }) => {
        if (!ready) {
          reject(this.connectError(e, hostKeyFailure));
          return;
        }
        this.log.warn("ssh connection error", { host, port, error: e.message });
      });
      c.on("close", () => {
        if (this.client === c) this.client = undefined;
        if (!ready) reject(hostKeyFailure ?? this.connectError(new Error("connection closed during the handshake"), undefined));
        else if (!this.closed) this.log.warn("ssh connection closed", { host, port });
      });
      const config: ConnectConfig = {
        host,
        port,
        username: this.cfg.username,
        readyTimeout: this.cfg.connectTimeoutMs,
        keepaliveInterval: this.cfg.keepaliveIntervalMs,
        keepaliveCountMax: this.cfg.keepaliveCountMax,
        tryKeyboard: false,
        ...auth,
        hostVerifier: (key: Buffer) => {
          const failure = verify.check(key);
          if (failure) hostKeyFailure = failure;
          return !failure;
        },
        ...(verify.algorithms ? { algorithms: { serverHostKey: verify.algorithms as never } } : {}),
      };
      c.connect(config);
    });
  }

  private connectError(e: Error & { level?: string; code?: string }, hostKey: HostKeyError | undefined): Error {
    if (hostKey) return hostKey;
    const { host, port, username } = this.cfg;
    const data = { host, port };
    if (e.level === "client-authentication") {
      const methods = [this.cfg.password ? "password" : "", this.cfg.privateKey || this.cfg.privateKeyPath ? "publickey" : ""]
        .filter(Boolean)
        .join(", ");
      return new SshAuthError(`SSH authentication as ${username} on ${host}:${port} was refused (tried: ${methods})`, {
        cause: e,
        data,
      });
    }
    if (e.level === "client-timeout") {
      return new TimeoutError(`SSH handshake with ${host}:${port} timed out after ${this.cfg.connectTimeoutMs} ms`, { cause: e, data });
    }
    return new BackendError(`cannot connect to ${host}:${port} over SSH: ${maskSecrets(e.message, this.secrets)}`, {
      retryable: true,
      cause: e,
      data,
    });
  }

  private async loadAuth(): Promise<Pick<ConnectConfig, "password" | "privateKey" | "passphrase">> {
    const out: Pick<ConnectConfig, "password" | "privateKey" | "passphrase"> = {};
    if (this.cfg.password) out.password = this.cfg.password;
    let keyText: Buffer | undefined;
    let source = "privateKey";
    if (this.cfg.privateKey) keyText = Buffer.from(this.cfg.privateKey);
    else if (this.cfg.privateKeyPath) {
      source = this.cfg.privateKeyPath;
      try {
        keyText = await readFile(this.cfg.privateKeyPath);
      } catch (e) {
        throw new SshAuthError(`cannot read the private key ${source}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
          cause: e,
        });
      }
    }
    if (keyText) {
      // Parse here so a missing or wrong passphrase is a clear error rather than a failed handshake.
      const parsed = utils.parseKey(keyText, this.cfg.passphrase) as ParsedKey | ParsedKey[] | Error;
      if (parsed instanceof Error) {
        const encrypted = /encrypted|passphrase|decrypt|bad decrypt/i.test(parsed.message);
        const msg = encrypted
          ? this.cfg.passphrase
            ? `cannot decrypt the private key ${source}: wrong passphrase`
            : `the private key ${source} is encrypted and no passphrase was given`
          : `cannot parse the private key ${source}: ${parsed.message}`;
        throw new SshAuthError(msg, { data: { key: source } });
      }
      out.privateKey = keyText;
      if (this.cfg.passphrase) out.passphrase = this.cfg.passphrase;
    }
    return out;
  }

  private async hostKeyCheck(): Promise<{ check: (blob: Buffer) => HostKeyError | undefined; algorithms?: string[] }> {
    const { host, port } = this.cfg;
    if (this.cfg.hostKeyFingerprint) {
      const pinned = this.cfg.hostKeyFingerprint;
      return {
        check: (blob) => {
          const fp = fingerprintOf(blob);
          return fp === pinned ? undefined : new HostKeyError("changed", host, port, fp, "the pinned hostKeyFingerprint");
        },
      };
    }
    const file = this.cfg.knownHostsFile ?? `${homedir()}/.ssh/known_hosts`;
    let text = "";
    try {
      // Read at every connect: a test host booted with a new key only needs its known_hosts rewritten.
      text = await readFile(file, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") {
        throw new BackendError(`cannot read known_hosts file ${file}: ${(e as Error).message}`, { cause: e });
      }
    }
    const entries = parseKnownHosts(text);
    const types = knownKeyTypes(entries, host, port);
    const algorithms = types.flatMap((t) => HOSTKEY_ALGOS[t] ?? []);
    return {
      check: (blob) => {
        const v = checkKnownHosts(entries, host, port, blob);
        return v.ok ? undefined : new HostKeyError(v.reason, host, port, fingerprintOf(blob), file, { data: { knownTypes: v.knownTypes } });
      },
      ...(algorithms.length ? { algorithms } : {}),
    };
  }
}

function checkArgv(argv: readonly string[]): void {
  if (!Array.isArray(argv) || argv.length === 0 || argv.some((a) => typeof a !== "string")) {
    throw new InvalidArgumentError("a command is a non-empty array of strings");
  }
}

/** ssh2 keeps `_sock` private; a destroyed or ended socket means the connection is gone. */
function isUsable(c: Client): boolean {
  const sock = (c as unknown as { _sock?: { destroyed?: boolean; writable?: boolean } })._sock;
  return !!sock && !sock.destroyed && sock.writable !== false;
}

/** Removes the pid line the remote shell writes first to stderr, reporting the pid. */
class PidStripper {
  private buf: Buffer | undefined = Buffer.alloc(0);
  constructor(private readonly onPid: (pid: number) => void) {}
  push(chunk: Buffer): Buffer {
    if (!this.buf) return chunk;
    this.buf = Buffer.concat([this.buf, chunk]);
    const nl = this.buf.indexOf(0x0a);
    if (nl < 0) {
      // The marker line is short; anything longer without a newline cannot be it.
      if (this.buf.length > 64) return this.flush();
      return Buffer.alloc(0);
    }
    const first = this.buf.subarray(0, nl).toString("latin1");
    if (first.startsWith(PID_MARKER)) {
      const pid = Number(first.slice(PID_MARKER.length));
      if (Number.isInteger(pid) && pid > 1) this.onPid(pid);
      const rest = this.buf.subarray(nl + 1);
      this.buf = undefined;
      return rest;
    }
    return this.flush();
  }
  /** Whatever is still held back when the stream ends (a shell that failed before the marker). */
  end(): Buffer {
    return this.flush();
  }
  private flush(): Buffer {
    const b = this.buf ?? Buffer.alloc(0);
    this.buf = undefined;
    return b;
  }
}
