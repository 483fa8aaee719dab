import { describe, expect, it } from "vitest";
import { z } from "zod";
import { InProcessLockManager, createJsonLogger, redact, secret, withLocks, isStorageError } from "../src/index.js";

describe("redaction", () => {
  it("masks schema-marked secrets and secret-looking keys at any depth, leaving the input untouched", () => {
    const schema = z.object({ user: z.string(), chap: secret().optional(), nested: z.any() });
    const input = { user: "admin", chap: "abc123", nested: { auth_password: "p1", list: [{ token: "t" }], keep: "ok" } };
    const out = redact(input, schema);
    expect(out).toEqual({ user: "admin", chap: "***", nested: { auth_password: "***", list: [{ token: "***" }], keep: "ok" } });
    expect(input.chap).toBe("abc123");
  });

  it("never writes a secret to a log line", () => {
    const lines: string[] = [];
    const log = createJsonLogger({ level: "debug", write: (l) => lines.push(l) });
    log.child({ backend: "b" }).info("connect", { conn_info: { data: { auth_password: "hunter2", target_iqn: "iqn.x" } } });
    expect(lines[0]).not.toContain("hunter2");
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: "info", msg: "connect", backend: "b", conn_info: { data: { target_iqn: "iqn.x" } } });
  });
});

describe("in-process locks", () => {
  it("serializes holders of one key, times out, and keeps keys independent", async () => {
    const locks = new InProcessLockManager();
    let inside = 0;
    let maxInside = 0;
    await Promise.all(
      Array.from({ length: 10 }, () =>
        withLocks(locks, ["volume:a"], async () => {
          inside++;
          maxInside = Math.max(maxInside, inside);
          await new Promise((r) => setTimeout(r, 2));
          inside--;
        }),
      ),
    );
    expect(maxInside).toBe(1);
    const held = await locks.acquire("volume:a");
    const e = await locks.acquire("volume:a", { timeoutMs: 20 }).catch((x: unknown) => x);
    expect(isStorageError(e) && e.code).toBe("LOCK_TIMEOUT");
    const other = await locks.acquire("volume:b", { timeoutMs: 20 });
    await other.release();
    await held.release();
    // After a timed-out waiter, the key is still usable.
    const again = await locks.acquire("volume:a", { timeoutMs: 100 });
    await again.release();
  });
});

describe("process owners", async () => {
  const { processOwner, ownerIsAlive } = await import("../src/index.js");
  it("tells a live owner from a dead one and from a reused pid", () => {
    const me = processOwner();
    expect(ownerIsAlive(me)).toBe(true);
    const [host, , stamp] = me.split(":");
    expect(ownerIsAlive(`${host}:999999999:${stamp ?? "x"}`)).toBe(false);
    // pid 1 is alive but started at another time than the recorded one: a reused pid, so the owner is dead.
    expect(ownerIsAlive(`${host}:1:00000000.1`)).toBe(process.platform !== "linux");
    expect(ownerIsAlive(`another-host:1:x`)).toBe(true);
  });
});
