import { createHash } from "node:crypto";
import { InvalidArgumentError, type LockManager, type Persistence } from "@cinderts/core";
import { HttpError, type Reply, type RequestContext, type Route } from "./http.js";

const KEY = /^[\x21-\x7e]{1,255}$/;
const PREFIX = "server:idempotency:";

interface Stored {
  fingerprint: string;
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  created_at: number;
}

/**
 * Idempotency-Key: a retried POST returns the first result instead of acting twice. Results live in the
 * persistence's key-values, so a retry that lands on another instance gets them too; the key is locked with
 * the persistence's (cross-host) locks while the first request runs, so two concurrent retries act once.
 * Keys are per token: two clients cannot see each other's results.
 */
export class IdempotencyStore {
  constructor(
    private readonly persistence: Persistence,
    private readonly locks: LockManager,
    private readonly ttlMs: number,
  ) {}

  async run(route: Route, ctx: RequestContext, key: string, rawBody: unknown, exec: () => Promise<Reply>): Promise<Reply> {
    if (!KEY.test(key)) {
      throw new InvalidArgumentError("Idempotency-Key must be 1-255 visible ASCII characters", {
        issues: [{ path: "headers.idempotency-key", message: "must be 1-255 visible ASCII characters" }],
      });
    }
    const who = ctx.principal?.name ?? "";
    const id = createHash("sha256").update(`${who}\0${key}`).digest("hex");
    const fingerprint = createHash("sha256")
      .update(`${route.method} ${route.path} ${JSON.stringify(ctx.params)} ${JSON.stringify(ctx.query)} ${JSON.stringify(rawBody ?? null)}`)
      .digest("hex");
    const lock = await this.locks.acquire(`idempotency:${id}`, { timeoutMs: 60_000 });
    try {
      const prior = (await this.persistence.getKey(PREFIX + id)) as Stored | undefined;
      if (prior && Date.now() - prior.created_at < this.ttlMs) {
        if (prior.fingerprint !== fingerprint) {
          throw new HttpError(422, "INVALID_ARGUMENT", "this Idempotency-Key was used with a different request", {
            data: { issues: [{ path: "headers.idempotency-key", message: "already used for a different request" }] },
          });
        }
        return { status: prior.status, body: prior.body, headers: { ...prior.headers, "Idempotent-Replayed": "true" } };
      }
      const reply = await exec();
      // Server errors are not results: a retry should try again.
      if (reply.status < 500) {
        const stored: Stored = { fingerprint, status: reply.status, body: reply.body, headers: reply.headers, created_at: Date.now() };
        await this.persistence.setKey(PREFIX + id, stored);
      }
      return reply;
    } finally {
      await lock.release();
    }
  }

  /** Drop expired keys (called now and then; a missed sweep only costs space). */
  async sweep(): Promise<number> {
    let n = 0;
    for (const k of await this.persistence.listKeys(PREFIX)) {
      const v = (await this.persistence.getKey(k)) as Stored | undefined;
      if (!v || Date.now() - v.created_at >= this.ttlMs) {
        await this.persistence.deleteKey(k);
        n++;
      }
    }
    return n;
  }
}
