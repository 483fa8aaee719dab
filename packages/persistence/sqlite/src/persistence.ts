import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import {
  ConfigError,
  InvalidArgumentError,
  InvalidStateError,
  nextVersion,
  silentLogger,
  type Logger,
  type Persistence,
  type PutOptions,
  type RecordFilter,
  type RecordKind,
  type RecordOf,
} from "@cinderts/core";
import type Database from "better-sqlite3";
import type { SqliteOptions } from "./config.js";
import { openDatabase } from "./database.js";
import { isBusy, wrapSqliteError } from "./errors.js";
import { SqliteLockManager } from "./locks.js";
import { migrate } from "./migrations.js";

const TABLE: Record<RecordKind, string> = { volume: "volumes", snapshot: "snapshots", connection: "connections" };

/** The filter columns, copied out of the record JSON on every write. */
interface Row {
  id: string;
  backend: string;
  volume_id: string | null;
  name: string | null;
  status: string;
  node_id: string | null;
  version: number;
  created_at: string;
  data: string;
}

const str = (v: unknown): string | null => (typeof v === "string" ? v : null);

function rowOf(kind: RecordKind, rec: Record<string, unknown>, version: number, data: string): Row {
  for (const f of ["id", "backend", "status", "created_at"] as const) {
    if (typeof rec[f] !== "string") {
      throw new InvalidArgumentError(`${kind} record needs a string ${f}`, { data: { field: f } });
    }
  }
  return {
    id: rec.id as string,
    backend: rec.backend as string,
    volume_id: str(rec.volume_id),
    name: str(rec.name),
    status: rec.status as string,
    node_id: str(rec.node_id),
    version,
    created_at: rec.created_at as string,
    data,
  };
}

export interface SqlitePersistenceInit extends Omit<SqliteOptions, "busyTimeoutMs"> {
  /** Default 5000. */
  busyTimeoutMs?: number;
  /** Directory a relative `path` is resolved against (the manifest's directory). */
  baseDir?: string;
  logger?: Logger;
}

/**
 * Metadata in one SQLite file: the embedded default. WAL lets readers run while a writer commits;
 * busy_timeout makes a writer wait for another process's short transaction instead of failing; every
 * conditional write is one IMMEDIATE transaction, so a check and its write cannot be split by another
 * process. Calls into better-sqlite3 are synchronous and each is a handful of statements on indexed keys.
 */
export class SqlitePersistence implements Persistence {
  /** Absolute database path (or ":memory:"). */
  readonly file: string;
  readonly locks: SqliteLockManager;
  private db: Database.Database | undefined;
  private readonly busyTimeoutMs: number;
  private readonly logger: Logger;
  /** Prepared once per SQL text: compiling a statement costs more than running these small ones. */
  private readonly statements = new Map<string, Database.Statement>();

  constructor(init: SqlitePersistenceInit) {
    this.file = init.path === ":memory:" ? init.path : resolve(init.baseDir ?? process.cwd(), init.path);
    this.busyTimeoutMs = init.busyTimeoutMs ?? 5_000;
    this.logger = init.logger ?? silentLogger;
    this.locks = new SqliteLockManager(() => this.db, this.logger);
  }

  async init(): Promise<void> {
    if (this.db) return;
    let db: Database.Database;
    try {
      if (this.file !== ":memory:") mkdirSync(dirname(this.file), { recursive: true });
      db = openDatabase(this.file, { timeout: this.busyTimeoutMs });
    } catch (e) {
      throw new ConfigError(`cannot open SQLite database ${this.file}: ${(e as Error).message}`, {
        cause: e,
        file: this.file,
      });
    }
    try {
      await this.retryBusy("enable WAL", () => {
        const mode = db.pragma("journal_mode = WAL", { simple: true });
        if (mode !== "wal" && this.file !== ":memory:") {
          this.logger.warn("SQLite WAL mode unavailable on this filesystem; readers will wait for writers", { file: this.file, mode });
        }
      });
      // FULL: an intent recorded before touching the backend must survive a power loss, or reconcile
      // could not find what an interrupted operation left behind.
      db.pragma("synchronous = FULL");
      await this.retryBusy("migrate the schema", () => {
        const applied = migrate(db);
        if (applied.length) this.logger.info("SQLite schema migrated", { file: this.file, applied });
      });
    } catch (e) {
      db.close();
      throw wrapSqliteError(e, "opening the metadata database", this.file);
    }
    this.db = db;
  }

  async close(): Promise<void> {
    if (!this.db) return;
    await this.locks.close();
    const db = this.db;
    this.db = undefined;
    this.statements.clear();
    db.close();
  }

  async get<K extends RecordKind>(kind: K, id: string): Promise<RecordOf[K] | undefined> {
    const row = this.run(`read ${kind} ${id}`, () =>
      this.stmt(`SELECT data FROM ${TABLE[kind]} WHERE id = ?`).get(id) as { data: string } | undefined,
    );
    return row ? (JSON.parse(row.data) as RecordOf[K]) : undefined;
  }

  async find<K extends RecordKind>(kind: K, filter: RecordFilter = {}): Promise<RecordOf[K][]> {
    const where: string[] = [];
    const params: Record<string, string> = {};
    for (const col of ["backend", "volume_id", "name", "node_id"] as const) {
      const v = filter[col];
      if (v !== undefined) {
        where.push(`${col} = @${col}`);
        params[col] = v;
      }
    }
    if (filter.status !== undefined) {
      const list = typeof filter.status === "string" ? [filter.status] : filter.status;
      if (list.length === 0) return [];
      // One JSON parameter instead of one per item: no limit on the list length, one cached statement.
      where.push("status IN (SELECT value FROM json_each(@status))");
      params.status = JSON.stringify(list);
    }
    if (filter.ids !== undefined) {
      if (filter.ids.length === 0) return [];
      where.push("id IN (SELECT value FROM json_each(@ids))");
      params.ids = JSON.stringify(filter.ids);
    }
    const sql = `SELECT data FROM ${TABLE[kind]}${where.length ? ` WHERE ${where.join(" AND ")}` : ""} ORDER BY created_at, id`;
    const rows = this.run(`find ${kind}`, () => this.stmt(sql).all(params) as { data: string }[]);
    return rows.map((r) => JSON.parse(r.data) as RecordOf[K]);
  }

  async put<K extends RecordKind>(kind: K, record: RecordOf[K], opts: PutOptions = {}): Promise<RecordOf[K]> {
    const table = TABLE[kind];
    const data = this.run(`write ${kind} ${record.id}`, (db) =>
      db
        .transaction(() => {
          const cur = this.stmt(`SELECT version FROM ${table} WHERE id = ?`).get(record.id) as { version: number } | undefined;
          const version = nextVersion(kind, record.id, cur?.version, opts);
          const json = JSON.stringify({ ...record, version });
          this.stmt(
            `INSERT INTO ${table} (id, backend, volume_id, name, status, node_id, version, created_at, data)
             VALUES (@id, @backend, @volume_id, @name, @status, @node_id, @version, @created_at, @data)
             ON CONFLICT (id) DO UPDATE SET backend = excluded.backend, volume_id = excluded.volume_id,
               name = excluded.name, status = excluded.status, node_id = excluded.node_id,
               version = excluded.version, created_at = excluded.created_at, data = excluded.data`,
          ).run(rowOf(kind, record as unknown as Record<string, unknown>, version, json));
          return json;
        })
        .immediate(),
    );
    return JSON.parse(data) as RecordOf[K];
  }

  async delete(kind: RecordKind, id: string): Promise<void> {
    this.run(`delete ${kind} ${id}`, () => this.stmt(`DELETE FROM ${TABLE[kind]} WHERE id = ?`).run(id));
  }

  async getKey(key: string): Promise<unknown> {
    const row = this.run(`read key ${key}`, () => this.stmt("SELECT value FROM kv WHERE key = ?").get(key) as { value: string } | undefined);
    return row ? JSON.parse(row.value) : undefined;
  }

  /** Setting `undefined` removes the key: it has no JSON form, and reading it back gives undefined either way. */
  async setKey(key: string, value: unknown): Promise<void> {
    let json: string | undefined;
    try {
      json = JSON.stringify(value);
    } catch (e) {
      throw new InvalidArgumentError(`value of key ${key} is not JSON: ${(e as Error).message}`, { cause: e });
    }
    if (json === undefined) return this.deleteKey(key);
    this.run(`write key ${key}`, () =>
      this.stmt("INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(key, json),
    );
  }

  async deleteKey(key: string): Promise<void> {
    this.run(`delete key ${key}`, () => this.stmt("DELETE FROM kv WHERE key = ?").run(key));
  }

  async listKeys(prefix = ""): Promise<string[]> {
    // Keys sharing a prefix are one contiguous range of the primary-key index starting at the prefix:
    // walk it and stop at the first key past it (no LIKE, so % and _ in keys are plain characters).
    const keys = this.run("list keys", () => {
      const out: string[] = [];
      for (const row of this.stmt("SELECT key FROM kv WHERE key >= ? ORDER BY key").iterate(prefix) as IterableIterator<{ key: string }>) {
        if (!row.key.startsWith(prefix)) break;
        out.push(row.key);
      }
      return out;
    });
    // JavaScript's order (UTF-16), the same as every other persistence's, rather than SQLite's UTF-8 bytes.
    return keys.sort();
  }

  /** Applied schema versions, oldest first (for `cinderts` diagnostics and tests). */
  schemaVersions(): { version: number; description: string; applied_at: string }[] {
    return this.run("read schema_version", () =>
      this.stmt("SELECT version, description, applied_at FROM schema_version ORDER BY version").all() as {
        version: number;
        description: string;
        applied_at: string;
      }[],
    );
  }

  private stmt(sql: string): Database.Statement {
    let st = this.statements.get(sql);
    if (!st) {
      st = this.db!.prepare(sql);
      this.statements.set(sql, st);
    }
    return st;
  }

  private run<T>(what: string, fn: (db: Database.Database) => T): T {
    const db = this.db;
    if (!db) throw new InvalidStateError(`SQLite persistence ${this.file} is not open: call init() first`);
    try {
      return fn(db);
    } catch (e) {
      throw wrapSqliteError(e, what, this.file);
    }
  }

  /** Opening races other processes for the first write lock; their transactions are short, so retry. */
  private async retryBusy(what: string, fn: () => void): Promise<void> {
    const deadline = Date.now() + Math.max(this.busyTimeoutMs, 1_000);
    for (let delay = 10; ; delay = Math.min(delay * 2, 200)) {
      try {
        return fn();
      } catch (e) {
        if (!isBusy(e) || Date.now() > deadline) throw e;
        this.logger.debug(`SQLite busy during ${what}; retrying`, { file: this.file });
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }
}
