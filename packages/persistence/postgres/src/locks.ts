import { createHash } from "node:crypto";
import { InProcessLockManager, LockTimeoutError, type Lock, type LockManager, type Logger } from "@cinderts/core";
import pg from "pg";
import type { PostgresConfig } from "./config.js";
import { poolSettings, wrapPgError } from "./persistence.js";

/** A lock key as the signed 64-bit integer PostgreSQL advisory locks take (first 8 bytes of its SHA-256). */
export function advisoryKey(key: string): string {
  return createHash("sha256").update(key).digest().readBigInt64BE(0).toString();
}

/**
 * Cross-host locks: a session-level advisory lock held on a connection of its own for as long as the lock is
 * held. If this process dies, PostgreSQL ends the session and frees the lock, so a crash never leaves a lock
 * behind. Waiters of one process queue in-process first, so one process uses at most one connection per key.
 */
export class PostgresLockManager implements LockManager {
  private readonly pool: pg.Pool;
  private readonly local = new InProcessLockManager();
  /** Connections holding a lock now: closed with the manager so pool.end() never waits on a forgotten lock. */
  private readonly held = new Set<pg.PoolClient>();
  private closed = false;

  constructor(
    private readonly config: PostgresConfig,
    private readonly logger: Logger,
    private readonly target: string,
  ) {
    this.pool = new pg.Pool({ ...poolSettings(config, config.lock_connections), idleTimeoutMillis: 10_000 });
    this.pool.on("error", (e) => this.logger.warn("idle lock connection failed", { error: e.message }));
  }

  async acquire(key: string, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<Lock> {
    const timeoutMs = opts.timeoutMs ?? this.config.lock_timeout_ms;
    const deadline = Date.now() + timeoutMs;
    const local = await this.local.acquire(key, { timeoutMs, signal: opts.signal });
    let client: pg.PoolClient | undefined;
    try {
      const left = () => Math.max(1, deadline - Date.now());
      client = await this.connect(left(), key, timeoutMs);
      const k = advisoryKey(key);
      await this.waitForLock(client, k, left(), key, timeoutMs, opts.signal);
      const held = client;
      this.held.add(held);
      let released = false;
      return {
        key,
        release: async () => {
          if (released) return;
          released = true;
          this.held.delete(held);
          try {
            await held.query("select pg_advisory_unlock($1::bigint)", [k]);
            held.release();
          } catch (e) {
            // Closing the session frees every advisory lock it holds: the safe fallback.
            held.release(e instanceof Error ? e : new Error(String(e)));
            this.logger.warn("advisory unlock failed; connection closed instead", { key, error: (e as Error).message });
          } finally {
            await local.release();
          }
        },
      };
    } catch (e) {
      client?.release(true);
      await local.release();
      throw e;
    }
  }

  private async connect(waitMs: number, key: string, timeoutMs: number): Promise<pg.PoolClient> {
    let timer: NodeJS.Timeout | undefined;
    const pending = this.pool.connect();
    try {
      return await Promise.race([
        pending,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new LockTimeoutError(key, timeoutMs, { data: { reason: "no free lock connection" } })), waitMs);
        }),
      ]);
    } catch (e) {
      // A connection that arrives after we gave up goes straight back.
      pending.then((c) => c.release(), () => undefined);
      if (e instanceof LockTimeoutError) throw e;
      throw wrapPgError(e, "connect for a lock", this.target);
    } finally {
      clearTimeout(timer);
    }
  }

  /** pg_advisory_lock bounded by lock_timeout (the server cancels the wait), abortable through pg_cancel_backend. */
  private async waitForLock(
    client: pg.PoolClient,
    k: string,
    waitMs: number,
    key: string,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<void> {
    signal?.throwIfAborted();
    const pid = (client as unknown as { processID?: number }).processID;
    const onAbort = () => {
      if (pid) void this.pool.query("select pg_cancel_backend($1)", [pid]).catch(() => undefined);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      await client.query(`set lock_timeout = ${Math.ceil(waitMs)}`);
      await client.query("select pg_advisory_lock($1::bigint)", [k]);
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === "55P03") throw new LockTimeoutError(key, timeoutMs);
      if (code === "57014" && signal?.aborted) throw signal.reason;
      throw wrapPgError(e, `lock ${key}`, this.target);
    } finally {
      signal?.removeEventListener("abort", onAbort);
      await client.query("set lock_timeout = 0").catch(() => undefined);
    }
  }

  /**
   * Is a session anywhere holding this key? Probed with pg_try_advisory_lock from a connection of our own
   * (released at once when we got it). Used for owner liveness across hosts.
   */
  async isHeldElsewhere(key: string): Promise<boolean> {
    const k = advisoryKey(key);
    const client = await this.connect(this.config.connect_timeout_ms, key, this.config.connect_timeout_ms);
    try {
      const { rows } = await client.query<{ got: boolean }>("select pg_try_advisory_lock($1::bigint) as got", [k]);
      if (rows[0]?.got) await client.query("select pg_advisory_unlock($1::bigint)", [k]);
      return !rows[0]?.got;
    } finally {
      client.release();
    }
  }

  /**
   * Take the key if nobody holds it, and keep it on a connection of its own until released; undefined when it
   * is held already (e.g. by another store of this same process, which signals the same thing).
   */
  async holdIfFree(key: string): Promise<Lock | undefined> {
    const k = advisoryKey(key);
    const client = await this.connect(this.config.connect_timeout_ms, key, this.config.connect_timeout_ms);
    let got = false;
    try {
      got = (await client.query<{ got: boolean }>("select pg_try_advisory_lock($1::bigint) as got", [k])).rows[0]?.got === true;
    } finally {
      if (!got) client.release();
    }
    if (!got) return undefined;
    this.held.add(client);
    let released = false;
    return {
      key,
      release: async () => {
        if (released) return;
        released = true;
        this.held.delete(client);
        await client.query("select pg_advisory_unlock($1::bigint)", [k]).then(
          () => client.release(),
          (e: unknown) => client.release(e instanceof Error ? e : new Error(String(e))),
        );
      },
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const c of this.held) c.release(new Error("lock manager closed"));
    this.held.clear();
    await this.pool.end();
  }
}
