import {
  InProcessLockManager,
  InvalidStateError,
  LockTimeoutError,
  newId,
  ownerIsAlive,
  processOwner,
  type Lock,
  type LockManager,
  type Logger,
} from "@cinderts/core";
import type Database from "better-sqlite3";
import { isBusy } from "./errors.js";

/** The row of a held lock. `owner` is host:pid (core's processOwner); `token` tells apart holders in one process. */
export interface LockRow {
  key: string;
  owner: string;
  token: string;
  acquired_at: string;
}

type Attempt = { ok: true; stolenFrom?: LockRow } | { ok: false; holder?: LockRow };

const DEFAULT_TIMEOUT_MS = 10 * 60_000;
const FIRST_POLL_MS = 5;
const MAX_POLL_MS = 250;

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Cross-process locks in the `locks` table of the SQLite database, so that two CLI invocations on one
 * state serialize operations on the same volume.
 *
 * Waiters of one process queue in memory first and only the head of that queue polls the table, so a
 * busy process does not hammer the database against itself. Taking a row is an insert in an IMMEDIATE
 * transaction; a row whose owner is a dead process on this host is taken over, because a CLI killed with
 * SIGKILL never releases and must not block the next one forever. There is no lease expiry: a live holder
 * keeps its lock however long its operation takes (clones of large volumes).
 */
export class SqliteLockManager implements LockManager {
  private readonly local = new InProcessLockManager();
  /** token → key of the rows this manager holds, released on close. */
  private readonly held = new Map<string, string>();
  private readonly owner = processOwner();

  constructor(
    private readonly db: () => Database.Database | undefined,
    private readonly logger: Logger,
  ) {}

  async acquire(key: string, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<Lock> {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const deadline = Date.now() + timeoutMs;
    const local = await this.local.acquire(key, { timeoutMs, signal: opts.signal });
    const token = newId();
    try {
      let delay = FIRST_POLL_MS;
      for (;;) {
        const attempt = this.tryTake(key, token);
        if (attempt.ok) {
          if (attempt.stolenFrom) {
            this.logger.warn("took over a lock left by a dead process", {
              key,
              previousOwner: attempt.stolenFrom.owner,
              heldSince: attempt.stolenFrom.acquired_at,
            });
          }
          break;
        }
        opts.signal?.throwIfAborted();
        const left = deadline - Date.now();
        if (left <= 0) {
          throw new LockTimeoutError(key, timeoutMs, {
            data: attempt.holder ? { holder: attempt.holder.owner, heldSince: attempt.holder.acquired_at } : {},
          });
        }
        // Jitter keeps processes that started together from polling in lockstep.
        await sleep(Math.min(left, delay * (0.5 + Math.random())), opts.signal);
        delay = Math.min(delay * 2, MAX_POLL_MS);
      }
    } catch (e) {
      await local.release();
      throw e;
    }
    this.held.set(token, key);
    let released = false;
    return {
      key,
      release: async () => {
        if (released) return;
        released = true;
        try {
          await this.deleteRow(key, token);
        } finally {
          this.held.delete(token);
          await local.release();
        }
      },
    };
  }

  /** Releases every lock this manager still holds (the host calls it on shutdown). */
  async close(): Promise<void> {
    for (const [token, key] of [...this.held]) {
      await this.deleteRow(key, token).catch((e: unknown) => this.logger.warn("could not release lock on close", { key, error: String(e) }));
      this.held.delete(token);
    }
  }

  /** The current holder of a key, for diagnostics (`cinderts` can say who holds a volume). */
  holder(key: string): LockRow | undefined {
    return this.open().prepare("SELECT key, owner, token, acquired_at FROM locks WHERE key = ?").get(key) as LockRow | undefined;
  }

  private open(): Database.Database {
    const db = this.db();
    if (!db) throw new InvalidStateError("the SQLite persistence is closed or not yet open: locks need init() first");
    return db;
  }

  /** One short IMMEDIATE transaction: read the row, then insert or take over. */
  private tryTake(key: string, token: string): Attempt {
    const db = this.open();
    const tx = db.transaction((): Attempt => {
      const row = db.prepare("SELECT key, owner, token, acquired_at FROM locks WHERE key = ?").get(key) as LockRow | undefined;
      const now = new Date().toISOString();
      if (!row) {
        db.prepare("INSERT INTO locks (key, owner, token, acquired_at) VALUES (?, ?, ?, ?)").run(key, this.owner, token, now);
        return { ok: true };
      }
      // ownerIsAlive answers only for this host (another host's owner counts as alive) and treats our own
      // pid as alive, so a row of another manager in this process is waited for, never taken.
      if (!ownerIsAlive(row.owner)) {
        db.prepare("UPDATE locks SET owner = ?, token = ?, acquired_at = ? WHERE key = ? AND token = ?").run(this.owner, token, now, key, row.token);
        return { ok: true, stolenFrom: row };
      }
      return { ok: false, holder: row };
    });
    try {
      return tx.immediate();
    } catch (e) {
      // Another process held the write lock past busy_timeout: just another reason to poll again.
      if (isBusy(e)) return { ok: false };
      throw e;
    }
  }

  /** Deletes the row only while it is still ours; retries through BUSY, since a row left behind blocks others. */
  private async deleteRow(key: string, token: string): Promise<void> {
    let delay = FIRST_POLL_MS;
    for (let attempt = 0; ; attempt++) {
      const db = this.db();
      if (!db) return; // closed: close() of the persistence released our rows before closing the database
      try {
        db.prepare("DELETE FROM locks WHERE key = ? AND token = ?").run(key, token);
        return;
      } catch (e) {
        if (!isBusy(e) || attempt >= 20) throw e;
        await sleep(delay);
        delay = Math.min(delay * 2, MAX_POLL_MS);
      }
    }
  }
}
