import { LockTimeoutError } from "./errors.js";
import type { Lock, LockManager } from "./interfaces.js";

/** FIFO mutexes inside one process. Persistence plugins provide cross-process managers. */
export class InProcessLockManager implements LockManager {
  private readonly tails = new Map<string, Promise<void>>();

  async acquire(key: string, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<Lock> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = previous.then(() => mine);
    this.tails.set(key, tail);
    const timeoutMs = opts.timeoutMs ?? 10 * 60_000;
    let timer: NodeJS.Timeout | undefined;
    let timedOut = false;
    try {
      await Promise.race([
        previous,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            timedOut = true;
            reject(new LockTimeoutError(key, timeoutMs));
          }, timeoutMs);
          opts.signal?.addEventListener("abort", () => reject(opts.signal?.reason), { once: true });
        }),
      ]);
    } catch (e) {
      // Our slot stays in the queue; free it as soon as the holder before us is done.
      void previous.then(release);
      if (timedOut) throw e;
      throw e;
    } finally {
      clearTimeout(timer);
    }
    let released = false;
    return {
      key,
      release: async () => {
        if (released) return;
        released = true;
        if (this.tails.get(key) === tail) this.tails.delete(key);
        release();
      },
    };
  }
}

/** Run fn holding every lock in keys; keys are sorted so that two callers never deadlock. */
export async function withLocks<T>(
  locks: LockManager,
  keys: readonly string[],
  fn: () => Promise<T>,
  opts: { timeoutMs?: number } = {},
): Promise<T> {
  const unique = [...new Set(keys)].sort();
  const held: Lock[] = [];
  try {
    for (const k of unique) held.push(await locks.acquire(k, opts));
    return await fn();
  } finally {
    for (const l of held.reverse()) await l.release();
  }
}
