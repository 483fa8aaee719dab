import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { ConfigError, isStorageError, parseConfig, redact, silentLogger } from "@cinderts/core";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import plugin, { PostgresConfig, PostgresPersistence, advisoryKey, migrations } from "../src/index.js";
import { dropSchema, makePersistence, pgEnv, scratchSchema } from "./helpers.js";

describe("options", () => {
  it("are strict, need a location, and validate the schema name", () => {
    const bad = (o: unknown) => {
      try {
        parseConfig(PostgresConfig, o, { path: "persistence.options", what: "postgres options" });
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as ConfigError).message;
      }
      throw new Error("accepted");
    };
    expect(bad({ url: "postgres://x@h/db", colour: "red" })).toMatch(/colour/);
    expect(bad({})).toMatch(/persistence\.options\.url: give url, or host/);
    expect(bad({ host: "127.0.0.1", schema: 'x"; drop table y; --' })).toMatch(/persistence\.options\.schema/);
    expect(bad({ host: "127.0.0.1", pool_size: 0 })).toMatch(/pool_size/);
    const ok = PostgresConfig.parse({ host: "127.0.0.1", database: "d", password: "hunter2" });
    expect(ok).toMatchObject({ schema: "cinderts", pool_size: 10, lock_connections: 64, ssl: false });
  });

  it("password and url are secrets: redacted by the schema", () => {
    const r = redact({ url: "postgres://u:pw@h/db", password: "pw", host: "h" }, PostgresConfig);
    expect(r).toEqual({ url: "***", password: "***", host: "h" });
  });

  it("the default export is a persistence plugin named postgres", () => {
    expect(plugin.kind).toBe("persistence");
    expect(plugin.id).toBe("postgres");
  });

  it("advisory keys are stable signed 64-bit integers and differ per key", () => {
    const a = advisoryKey("volume:1");
    expect(a).toBe(advisoryKey("volume:1"));
    expect(a).not.toBe(advisoryKey("volume:2"));
    const n = BigInt(a);
    expect(n >= -(2n ** 63n) && n < 2n ** 63n).toBe(true);
  });
});

describe.skipIf(!pgEnv)("PostgreSQL (testbed)", () => {
  const schemas: string[] = [];
  const fresh = (tag: string) => {
    const s = scratchSchema(tag);
    schemas.push(s);
    return s;
  };
  afterAll(async () => {
    for (const s of schemas) await dropSchema(s);
  });

  it("6 instances initialising one new schema at once apply each migration exactly once", async () => {
    const schema = fresh("migrate");
    const stores = Array.from({ length: 6 }, () => makePersistence(schema, { pool_size: 2 }));
    try {
      await Promise.all(stores.map((s) => s.init()));
      const latest = migrations.at(-1)!.version;
      for (const s of stores) expect(await s.schemaVersion()).toBe(latest);
      const c = new pg.Client({ connectionString: pgEnv!.CINDERTS_PG_URL });
      await c.connect();
      const { rows } = await c.query(`select version, count(*)::int as n from "${schema}".schema_migrations group by version order by version`);
      await c.end();
      expect(rows).toEqual(migrations.map((m) => ({ version: m.version, n: 1 })));
      // A second init is a no-op.
      await stores[0]!.init();
      expect(await stores[0]!.schemaVersion()).toBe(latest);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  it("a lock held by one instance (another host) blocks the other until released", async () => {
    const schema = fresh("locks");
    const a = makePersistence(schema);
    const b = makePersistence(schema);
    await a.init();
    await b.init();
    try {
      const held = await a.locks.acquire("volume:shared");
      const e = await b.locks.acquire("volume:shared", { timeoutMs: 300 }).catch((x: unknown) => x);
      expect(isStorageError(e) && e.code).toBe("LOCK_TIMEOUT");
      const other = await b.locks.acquire("volume:other", { timeoutMs: 2000 });
      await other.release();
      const waiting = b.locks.acquire("volume:shared", { timeoutMs: 5000 });
      await new Promise((r) => setTimeout(r, 100));
      await held.release();
      const got = await waiting;
      await got.release();
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("a process killed with SIGKILL while holding a lock does not keep it", async () => {
    const schema = fresh("kill");
    const p = makePersistence(schema);
    await p.init();
    const key = "volume:killed-holder";
    // The child locks the same advisory key as our LockManager would, on its own session, then waits forever.
    const pgEntry = fileURLToPath(import.meta.resolve("pg"));
    const child = spawn(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        `import pg from ${JSON.stringify(pgEntry)};
         const c = new pg.Client({ connectionString: process.env.CINDERTS_PG_URL });
         await c.connect();
         await c.query("select pg_advisory_lock($1::bigint)", [process.env.LOCK_KEY]);
         console.log("held");
         setInterval(() => {}, 1000);`,
      ],
      { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, LOCK_KEY: advisoryKey(key) } },
    );
    try {
      const [line] = (await Promise.race([
        once(child.stdout!, "data"),
        once(child, "exit").then(() => Promise.reject(new Error("lock holder exited early"))),
      ])) as [Buffer];
      expect(line.toString().trim()).toBe("held");
      const e = await p.locks.acquire(key, { timeoutMs: 200 }).catch((x: unknown) => x);
      expect(isStorageError(e) && e.code).toBe("LOCK_TIMEOUT");
      child.kill("SIGKILL");
      await once(child, "exit");
      const lock = await p.locks.acquire(key, { timeoutMs: 10_000 });
      await lock.release();
    } finally {
      child.kill("SIGKILL");
      await p.close();
    }
  });

  it("an aborted wait gives up at once and leaves the lock usable", async () => {
    const schema = fresh("abort");
    const p = makePersistence(schema);
    const q = makePersistence(schema);
    await p.init();
    await q.init();
    try {
      const held = await p.locks.acquire("snapshot:x");
      const ac = new AbortController();
      const waiting = q.locks.acquire("snapshot:x", { timeoutMs: 60_000, signal: ac.signal }).catch((x: unknown) => x);
      await new Promise((r) => setTimeout(r, 100));
      const t0 = Date.now();
      ac.abort(new Error("caller gave up"));
      const e = await waiting;
      expect((e as Error).message).toBe("caller gave up");
      expect(Date.now() - t0).toBeLessThan(5000);
      await held.release();
      const again = await q.locks.acquire("snapshot:x", { timeoutMs: 5000 });
      await again.release();
    } finally {
      await p.close();
      await q.close();
    }
  });

  it("conditional puts from two instances: exactly one of two racing writers wins", async () => {
    const schema = fresh("race");
    const a = makePersistence(schema);
    const b = makePersistence(schema);
    await a.init();
    await b.init();
    try {
      const now = new Date().toISOString();
      const base = {
        id: "vol-race", version: 0, backend: "be", name: null, size: 1, status: "available" as const,
        source_volume_id: null, snapshot_id: null, created_at: now, updated_at: now, metadata: {}, intent: null,
        status_reason: null, provider_location: null, provider_id: null, provider_auth: null, provider_geometry: null,
      };
      const first = await a.put("volume", base, { expectVersion: 0 });
      const results = await Promise.allSettled([
        a.put("volume", { ...first, size: 2 }, { expectVersion: first.version }),
        b.put("volume", { ...first, size: 3 }, { expectVersion: first.version }),
      ]);
      expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
      const final = await b.get("volume", "vol-race");
      expect(final!.version).toBe(2);
      expect([2, 3]).toContain(final!.size);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("a wrong password is a BackendError that never shows the password", async () => {
    const u = new URL(pgEnv!.CINDERTS_PG_URL);
    u.password = "not-the-Password-42";
    const p = new PostgresPersistence(PostgresConfig.parse({ url: u.href, schema: "unused" }), silentLogger);
    try {
      const e = await p.init().catch((x: unknown) => x);
      expect(isStorageError(e) && e.code).toBe("BACKEND_ERROR");
      expect((e as Error).message).toMatch(/password authentication failed/);
      expect(JSON.stringify(e)).not.toContain("not-the-Password-42");
      expect((e as Error).message).not.toContain("not-the-Password-42");
    } finally {
      await p.close();
    }
  });

  it("setKeyIfAbsent: of several instances racing on one key exactly one stores it", async () => {
    const schema = fresh("kvrace");
    const stores = [makePersistence(schema), makePersistence(schema), makePersistence(schema)];
    await Promise.all(stores.map((s) => s.init()));
    try {
      const results = await Promise.all(stores.flatMap((s, i) => [s.setKeyIfAbsent("idem:k", { by: i }), s.setKeyIfAbsent("idem:k", { by: i })]));
      expect(results.filter(Boolean)).toHaveLength(1);
      const winner = results.indexOf(true);
      expect(await stores[2]!.getKey("idem:k")).toEqual({ by: Math.floor(winner / 2) });
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });
});

describe.skipIf(!pgEnv)("intent owner liveness across hosts", () => {
  const schema = scratchSchema("owner");
  afterAll(() => dropSchema(schema));

  it("a live process (any host) is alive while it runs and dead once killed; unknown owners are dead", async () => {
    const p = makePersistence(schema);
    await p.init();
    try {
      const { processOwner } = await import("@cinderts/core");
      expect(await p.ownerAlive(processOwner())).toBe(true);
      // Another "host": a process that holds the owner lock of a name that is not this machine's.
      const owner = `other-host.example:${4242}`;
      const pgEntry = fileURLToPath(import.meta.resolve("pg"));
      const child = spawn(
        process.execPath,
        [
          "--input-type=module",
          "-e",
          `import pg from ${JSON.stringify(pgEntry)};
           const c = new pg.Client({ connectionString: process.env.CINDERTS_PG_URL });
           await c.connect();
           await c.query("select pg_advisory_lock($1::bigint)", [process.env.OWNER_KEY]);
           console.log("held");
           setInterval(() => {}, 1000);`,
        ],
        { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, OWNER_KEY: advisoryKey(`owner:${owner}`) } },
      );
      try {
        await once(child.stdout!, "data");
        expect(await p.ownerAlive(owner)).toBe(true);
        child.kill("SIGKILL");
        await once(child, "exit");
        // The server notices the closed socket at once; poll briefly for the session to end.
        let alive = true;
        for (let i = 0; i < 50 && alive; i++) {
          alive = await p.ownerAlive(owner);
          if (alive) await new Promise((r) => setTimeout(r, 100));
        }
        expect(alive).toBe(false);
      } finally {
        child.kill("SIGKILL");
      }
      expect(await p.ownerAlive("never-seen-host:1")).toBe(false);
      // A second store in this process does not block on, nor take over, the process's owner lock.
      const q = makePersistence(schema);
      await q.init();
      await q.close();
      expect(await p.ownerAlive(processOwner())).toBe(true);
      // And another process's view of us (not the short cut for our own name): our owner lock is held.
      const r = makePersistence(schema);
      await r.init();
      expect(await r.locks.isHeldElsewhere(`owner:${processOwner()}`)).toBe(true);
      await r.close();
    } finally {
      await p.close();
    }
  });
});
