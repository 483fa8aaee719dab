import { describe, expect, it } from "vitest";
import { z } from "zod";
import { InProcessLockManager, createJsonLogger, parseConfig, parseInput, redact, secret, withLocks, isStorageError } from "../src/index.js";

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

describe("parser compilation", () => {
  // zod compiles an object schema's parser with `new Function` on first use; count those constructions.
  function countingCompiles<T>(fn: () => T): { result: T; compiles: number } {
    const original = globalThis.Function;
    let compiles = 0;
    globalThis.Function = new Proxy(original, {
      construct(target, args) {
        compiles++;
        return Reflect.construct(target, args);
      },
    });
    try {
      return { result: fn(), compiles };
    } finally {
      globalThis.Function = original;
    }
  }

  it("interprets a schema's first parses and compiles it once it is hot", () => {
    const schema = z.object({ id: z.string(), size: z.number() }).strict();
    const cold = countingCompiles(() => {
      for (let i = 0; i < 16; i++) parseInput(schema, { id: `v${i}`, size: i }, "volume");
    });
    expect(cold.compiles).toBe(0);
    const hot = countingCompiles(() => [parseInput(schema, { id: "v", size: 1 }, "volume"), parseInput(schema, { id: "w", size: 2 }, "volume")]);
    expect(hot.result).toEqual([{ id: "v", size: 1 }, { id: "w", size: 2 }]);
    expect(hot.compiles).toBe(1);
  });

  it("never compiles configuration, which is parsed once", () => {
    const schema = z.object({ path: z.string() }).strict();
    const { compiles } = countingCompiles(() => {
      for (let i = 0; i < 40; i++) parseConfig(schema, { path: "/x" }, { what: "options" });
    });
    expect(compiles).toBe(0);
  });
});
