import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { processOwner, silentLogger, type Logger, type VolumeRecord } from "@cinderts/core";
import Database from "better-sqlite3";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import sqlite, { LATEST_SCHEMA_VERSION, migrations, SqliteOptions, SqlitePersistence } from "../src/index.js";
import { migrate } from "../src/migrations.js";

const root = mkdtempSync(join(tmpdir(), "cinderts-sqlite-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const dbPath = () => join(root, `t${n++}`, "state.db");
const open: SqlitePersistence[] = [];
afterEach(async () => {
  for (const p of open.splice(0)) await p.close();
});
async function openDb(path: string, extra: Partial<ConstructorParameters<typeof SqlitePersistence>[0]> = {}) {
  const p = new SqlitePersistence({ path, busyTimeoutMs: 5_000, ...extra });
  open.push(p);
  await p.init();
  return p;
}

const vol = (id: string): VolumeRecord => ({
  id, version: 0, backend: "b", name: null, created_at: "2025-01-01T00:00:00.000Z", updated_at: "2025-01-01T00:00:00.000Z",
  metadata: {}, intent: null, status_reason: null, provider_location: null, provider_id: null, provider_auth: null,
  provider_geometry: null, size: 1, status: "available", source_volume_id: null, snapshot_id: null,
});

function recordingLogger() {
  const lines: { level: string; msg: string; fields?: Record<string, unknown> }[] = [];
  const logger: Logger = {
    debug: (msg, fields) => void lines.push({ level: "debug", msg, fields }),
    info: (msg, fields) => void lines.push({ level: "info", msg, fields }),
    warn: (msg, fields) => void lines.push({ level: "warn", msg, fields }),
    error: (msg, fields) => void lines.push({ level: "error", msg, fields }),
    child: () => logger,
  };
  return { logger, lines };
}

/** A pid that certainly belonged to a process that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
  return Number(r.stdout);
}

describe("plugin and options", () => {
  it("is the sqlite persistence plugin, with the package's version", () => {
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
    expect(sqlite.kind).toBe("persistence");
    expect(sqlite.id).toBe("sqlite");
    expect(sqlite.version).toBe(pkg.version);
  });

  it("options: path required, busyTimeoutMs defaults to 5000, unknown keys refused", () => {
    expect(SqliteOptions.parse({ path: "./state.db" })).toEqual({ path: "./state.db", busyTimeoutMs: 5000 });
    expect(SqliteOptions.safeParse({}).success).toBe(false);
    expect(SqliteOptions.safeParse({ path: "" }).success).toBe(false);
    expect(SqliteOptions.safeParse({ path: "x", busyTimeoutMs: -1 }).success).toBe(false);
    const extra = SqliteOptions.safeParse({ path: "x", file: "y" });
    expect(extra.error?.issues[0]).toMatchObject({ code: "unrecognized_keys", keys: ["file"] });
  });

  it("a relative path is resolved against the manifest's directory, and missing directories are created", async () => {
    const base = join(root, "manifest-dir");
    const p = sqlite.create(SqliteOptions.parse({ path: "./state/deep/cinderts.db" }), { logger: silentLogger, baseDir: base });
    open.push(p as SqlitePersistence);
    expect((p as SqlitePersistence).file).toBe(join(base, "state", "deep", "cinderts.db"));
    await p.init();
    expect(existsSync(join(base, "state", "deep", "cinderts.db"))).toBe(true);
  });

  it("an unopenable path is a CONFIG_ERROR naming the file", async () => {
    const file = join(root, "not-a-dir");
    await new SqlitePersistence({ path: file, busyTimeoutMs: 100 }).init();
    const p = new SqlitePersistence({ path: join(file, "x.db"), busyTimeoutMs: 100 });
    await expect(p.init()).rejects.toMatchObject({ code: "CONFIG_ERROR", message: expect.stringContaining(join(file, "x.db")) });
  });

  it("using the store before init() is an INVALID_STATE error", async () => {
    const p = new SqlitePersistence({ path: dbPath(), busyTimeoutMs: 100 });
    await expect(p.get("volume", "x")).rejects.toMatchObject({ code: "INVALID_STATE" });
  });
});

describe("database file", () => {
  it("uses WAL journaling, FULL sync, and records the schema version in a table and in user_version", async () => {
    const path = dbPath();
    const p = await openDb(path);
    expect(p.schemaVersions().map((r) => r.version)).toEqual([LATEST_SCHEMA_VERSION]);
    const raw = new Database(path, { readonly: true });
    try {
      expect(raw.pragma("journal_mode", { simple: true })).toBe("wal");
      expect(raw.pragma("user_version", { simple: true })).toBe(LATEST_SCHEMA_VERSION);
      const tables = (raw.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
      expect(tables).toEqual(["connections", "kv", "locks", "schema_version", "snapshots", "volumes"]);
      const plan = raw.prepare("EXPLAIN QUERY PLAN SELECT data FROM snapshots WHERE volume_id = ? ORDER BY created_at, id").all("v") as { detail: string }[];
      expect(plan.map((r) => r.detail).join(" ")).toMatch(/USING INDEX snapshots_/);
    } finally {
      raw.close();
    }
  });

  it("the filter columns follow the record JSON on every write", async () => {
    const path = dbPath();
    const p = await openDb(path);
    await p.put("volume", { ...vol("v1"), name: "a", status: "creating" });
    await p.put("volume", { ...vol("v1"), name: "b", status: "available", backend: "other" });
    const raw = new Database(path, { readonly: true });
    try {
      expect(raw.prepare("SELECT id, backend, name, status, version, volume_id, node_id FROM volumes").all()).toEqual([
        { id: "v1", backend: "other", name: "b", status: "available", version: 2, volume_id: null, node_id: null },
      ]);
    } finally {
      raw.close();
    }
  });

  it("data survives close and reopen; a second init finds nothing to migrate", async () => {
    const path = dbPath();
    const { logger, lines } = recordingLogger();
    const a = await openDb(path, { logger });
    await a.put("volume", vol("kept"));
    await a.setKey("k", { v: 1 });
    await a.close();
    expect(lines.filter((l) => l.msg === "SQLite schema migrated")).toHaveLength(1);
    const b = await openDb(path, { logger });
    await b.init();
    expect((await b.get("volume", "kept"))?.version).toBe(1);
    expect(await b.getKey("k")).toEqual({ v: 1 });
    expect(lines.filter((l) => l.msg === "SQLite schema migrated")).toHaveLength(1);
    expect(b.schemaVersions()).toHaveLength(1);
  });

  it("an existing database gets only the steps it lacks, each recorded once", async () => {
    const path = dbPath();
    const a = await openDb(path);
    await a.put("volume", vol("old"));
    await a.close();
    const raw = new Database(path);
    try {
      const next = { version: LATEST_SCHEMA_VERSION + 1, description: "test step", sql: "CREATE TABLE extra (x TEXT) STRICT" };
      expect(migrate(raw, [...migrations, next])).toEqual([next.version]);
      expect(migrate(raw, [...migrations, next])).toEqual([]);
      expect((raw.prepare("SELECT version FROM schema_version ORDER BY version").all() as { version: number }[]).map((r) => r.version)).toEqual([
        ...migrations.map((m) => m.version),
        next.version,
      ]);
      expect(raw.pragma("user_version", { simple: true })).toBe(next.version);
      expect((raw.prepare("SELECT count(*) AS n FROM volumes").get() as { n: number }).n).toBe(1);
    } finally {
      raw.close();
    }
  });

  it("a failing step rolls back the whole migration", async () => {
    const raw = new Database(join(root, `raw-${n++}.db`));
    try {
      const bad = { version: LATEST_SCHEMA_VERSION + 1, description: "broken", sql: "CREATE TABLE volumes (x TEXT)" };
      expect(() => migrate(raw, [...migrations, bad])).toThrow(/already exists/);
      expect(raw.prepare("SELECT name FROM sqlite_master WHERE name IN ('volumes', 'schema_version')").all()).toEqual([]);
    } finally {
      raw.close();
    }
  });

  it("refuses a database whose schema is newer than this code, without touching it", async () => {
    const path = dbPath();
    const a = await openDb(path);
    await a.close();
    const raw = new Database(path);
    raw.prepare("INSERT INTO schema_version (version, description, applied_at) VALUES (99, 'future', 'now')").run();
    raw.close();
    const b = new SqlitePersistence({ path });
    await expect(b.init()).rejects.toMatchObject({ code: "CONFIG_ERROR", message: expect.stringMatching(/schema version 99 .*upgrade cinderts/) });
  });

  it("a write blocked past busyTimeoutMs by another connection's transaction is a retryable BUSY error", async () => {
    const path = dbPath();
    const p = await openDb(path, { busyTimeoutMs: 100 });
    const other = new Database(path);
    try {
      other.prepare("BEGIN IMMEDIATE").run();
      const e = await p.put("volume", vol("blocked")).catch((x: unknown) => x);
      expect(e).toMatchObject({ code: "BUSY", retryable: true });
      other.prepare("ROLLBACK").run();
      expect((await p.put("volume", vol("blocked"))).version).toBe(1);
    } finally {
      other.close();
    }
  });

  it("setKey of undefined removes the key; a value with no JSON form is INVALID_ARGUMENT", async () => {
    const p = await openDb(dbPath());
    await p.setKey("k", 1);
    await p.setKey("k", undefined);
    expect(await p.listKeys()).toEqual([]);
    await expect(p.setKey("big", 1n)).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
  });

  it("a record without its key fields is INVALID_ARGUMENT and stores nothing", async () => {
    const p = await openDb(dbPath());
    await expect(p.put("volume", { ...vol("bad"), status: undefined } as unknown as VolumeRecord)).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    expect(await p.get("volume", "bad")).toBeUndefined();
  });
});

describe("lock table", () => {
  it("two stores on one file in one process exclude each other through the table", async () => {
    const path = dbPath();
    const a = await openDb(path);
    const b = await openDb(path);
    const la = await a.locks.acquire("volume:1");
    expect(a.locks.holder("volume:1")?.owner).toBe(processOwner());
    await expect(b.locks.acquire("volume:1", { timeoutMs: 200 })).rejects.toMatchObject({ code: "LOCK_TIMEOUT" });
    const waiting = b.locks.acquire("volume:1", { timeoutMs: 5_000 });
    await new Promise((r) => setTimeout(r, 50));
    await la.release();
    const lb = await waiting;
    await expect(a.locks.acquire("volume:1", { timeoutMs: 100 })).rejects.toMatchObject({ code: "LOCK_TIMEOUT" });
    await lb.release();
    let inside = 0;
    let max = 0;
    await Promise.all(
      Array.from({ length: 10 }, async (_, i) => {
        const l = await (i % 2 ? a : b).locks.acquire("volume:2", { timeoutMs: 30_000 });
        max = Math.max(max, ++inside);
        await new Promise((r) => setTimeout(r, 3));
        inside--;
        await l.release();
      }),
    );
    expect(max).toBe(1);
  });

  it("a row left by a dead process on this host is taken over, with a warning", async () => {
    const path = dbPath();
    const { logger, lines } = recordingLogger();
    const p = await openDb(path, { logger });
    const dead = `${hostname()}:${deadPid()}`;
    const raw = new Database(path);
    raw.prepare("INSERT INTO locks (key, owner, token, acquired_at) VALUES ('volume:x', ?, 't-dead', '2025-01-01T00:00:00.000Z')").run(dead);
    raw.close();
    const l = await p.locks.acquire("volume:x", { timeoutMs: 1_000 });
    expect(p.locks.holder("volume:x")?.owner).toBe(processOwner());
    expect(lines.filter((x) => x.level === "warn")).toEqual([
      { level: "warn", msg: "took over a lock left by a dead process", fields: { key: "volume:x", previousOwner: dead, heldSince: "2025-01-01T00:00:00.000Z" } },
    ]);
    await l.release();
  });

  it("a row of another host is never taken over (its liveness cannot be known here)", async () => {
    const path = dbPath();
    const p = await openDb(path);
    const raw = new Database(path);
    raw.prepare("INSERT INTO locks (key, owner, token, acquired_at) VALUES ('volume:y', 'some-other-host:1', 't', '2025-01-01T00:00:00.000Z')").run();
    raw.close();
    await expect(p.locks.acquire("volume:y", { timeoutMs: 200 })).rejects.toMatchObject({
      code: "LOCK_TIMEOUT",
      details: { data: { key: "volume:y", holder: "some-other-host:1", heldSince: "2025-01-01T00:00:00.000Z" } },
    });
  });

  it("release deletes the row only while this holder still owns it", async () => {
    const path = dbPath();
    const p = await openDb(path);
    const l = await p.locks.acquire("volume:z");
    const raw = new Database(path);
    raw.prepare("UPDATE locks SET owner = 'elsewhere:1', token = 'theirs' WHERE key = 'volume:z'").run();
    await l.release();
    expect(raw.prepare("SELECT owner FROM locks WHERE key = 'volume:z'").get()).toEqual({ owner: "elsewhere:1" });
    raw.close();
  });

  it("close() releases every lock the store still holds", async () => {
    const path = dbPath();
    const a = await openDb(path);
    await a.locks.acquire("volume:a");
    await a.locks.acquire("snapshot:b");
    await a.close();
    const b = await openDb(path);
    expect(b.locks.holder("volume:a")).toBeUndefined();
    expect(b.locks.holder("snapshot:b")).toBeUndefined();
  });

  it("an abort signal stops a waiting acquire and frees its place", async () => {
    const p = await openDb(dbPath());
    const held = await p.locks.acquire("volume:s");
    const ac = new AbortController();
    const waiting = p.locks.acquire("volume:s", { timeoutMs: 10_000, signal: ac.signal });
    setTimeout(() => ac.abort(new Error("stop")), 50);
    await expect(waiting).rejects.toThrow("stop");
    await held.release();
    const again = await p.locks.acquire("volume:s", { timeoutMs: 1_000 });
    await again.release();
  });
});
