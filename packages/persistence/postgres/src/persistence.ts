import {
  BackendError,
  ConflictError,
  isStorageError,
  processOwner,
  type Lock,
  type Logger,
  type Persistence,
  type PutOptions,
  type RecordFilter,
  type RecordKind,
  type RecordOf,
} from "@cinderts/core";
import pg from "pg";
import type { PostgresConfig } from "./config.js";
import { PostgresLockManager } from "./locks.js";
import { migrations } from "./migrations.js";

/** Columns that filters and indexes use, per record kind; the whole record lives in `data`. */
const TABLES = {
  volume: { table: "volumes", columns: ["backend", "name", "status", "created_at"] },
  snapshot: { table: "snapshots", columns: ["backend", "volume_id", "name", "status", "created_at"] },
  connection: { table: "connections", columns: ["backend", "volume_id", "node_id", "status", "created_at"] },
} as const satisfies Record<RecordKind, { table: string; columns: readonly string[] }>;

/** The lock a live process holds under its intent owner name (host:pid). */
export const ownerKey = (owner: string): string => `owner:${owner}`;

/** Constant advisory-lock key of the migration step ("cinderts" in ASCII, as a bigint). */
const MIGRATION_LOCK = "7158870408389587827";

/** The connection settings pg understands, built from the options; never logged (carries the password). */
export function poolSettings(c: PostgresConfig, max: number): pg.PoolConfig {
  return {
    ...(c.url ? { connectionString: c.url } : {}),
    ...(c.host !== undefined ? { host: c.host } : c.url ? {} : { host: "127.0.0.1" }),
    ...(c.port !== undefined ? { port: c.port } : {}),
    ...(c.user !== undefined ? { user: c.user } : {}),
    ...(c.password !== undefined ? { password: c.password } : {}),
    ...(c.database !== undefined ? { database: c.database } : {}),
    ...(c.ssl ? { ssl: { rejectUnauthorized: true } } : {}),
    max,
    connectionTimeoutMillis: c.connect_timeout_ms,
    idleTimeoutMillis: 30_000,
    application_name: "cinderts",
  };
}

/** Where the server is, for messages: never the password. */
export function describeTarget(c: PostgresConfig): string {
  if (c.url) {
    try {
      const u = new URL(c.url);
      return `${u.hostname}:${u.port || 5432}/${u.pathname.slice(1)}`;
    } catch {
      return "the configured url";
    }
  }
  return `${c.host ?? "127.0.0.1"}:${c.port ?? 5432}/${c.database ?? ""}`;
}

/** Wrap a pg error into the core hierarchy with what we were doing; the message never carries the password. */
export function wrapPgError(e: unknown, what: string, target: string): Error {
  if (isStorageError(e)) return e;
  const err = e as { message?: string; code?: string };
  const transient = ["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "57P01", "57P03", "53300", "08006", "08001"].includes(err.code ?? "");
  return new BackendError(`PostgreSQL at ${target}: ${what} failed: ${err.message ?? String(e)}`, {
    cause: e,
    retryable: transient,
    data: err.code ? { pg_code: err.code } : undefined,
  });
}

/**
 * Persistence on PostgreSQL: one table per record kind (jsonb record + indexed filter columns + version),
 * a key-value table, and cross-host locks (advisory locks) — the shared state of several cinderts hosts.
 */
export class PostgresPersistence implements Persistence {
  readonly locks: PostgresLockManager;
  private readonly pool: pg.Pool;
  private readonly s: string;
  private readonly target: string;
  private closed = false;
  /** Held for this process's life: other hosts tell a live intent owner from a dead one by it. */
  private ownerLock: Lock | undefined;

  constructor(
    private readonly config: PostgresConfig,
    private readonly logger: Logger,
  ) {
    this.s = `"${config.schema}"`;
    this.target = describeTarget(config);
    this.pool = new pg.Pool(poolSettings(config, config.pool_size));
    // An idle client losing its server must not crash the process; the next query reconnects.
    this.pool.on("error", (e) => this.logger.warn("idle PostgreSQL connection failed", { error: e.message }));
    this.locks = new PostgresLockManager(config, logger, this.target);
  }

  private async q<R extends pg.QueryResultRow>(what: string, sql: string, params: unknown[] = []): Promise<pg.QueryResult<R>> {
    try {
      return await this.pool.query<R>(sql, params);
    } catch (e) {
      throw wrapPgError(e, what, this.target);
    }
  }

  async init(): Promise<void> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (e) {
      throw wrapPgError(e, "connect", this.target);
    }
    try {
      await client.query("begin");
      // Transaction-scoped: released by commit/rollback, and by the server if this process dies.
      await client.query("select pg_advisory_xact_lock($1::bigint)", [MIGRATION_LOCK]);
      await client.query(`create schema if not exists ${this.s}`);
      await client.query(
        `create table if not exists ${this.s}.schema_migrations (version integer primary key, name text not null, applied_at timestamptz not null default now())`,
      );
      const { rows } = await client.query<{ v: number | null }>(`select max(version) as v from ${this.s}.schema_migrations`);
      const current = rows[0]?.v ?? 0;
      for (const m of migrations) {
        if (m.version <= current) continue;
        await client.query(m.sql(this.s));
        await client.query(`insert into ${this.s}.schema_migrations (version, name) values ($1, $2)`, [m.version, m.name]);
        this.logger.info("applied migration", { version: m.version, name: m.name });
      }
      await client.query("commit");
    } catch (e) {
      await client.query("rollback").catch(() => undefined);
      throw wrapPgError(e, "schema migration", this.target);
    } finally {
      client.release();
    }
    this.ownerLock ??= await this.locks.holdIfFree(ownerKey(processOwner()));
  }

  /**
   * Is the process that wrote an intent (owner "host:pid") still alive — on any host? Every process on this
   * store holds an advisory lock named after itself for its whole life, and PostgreSQL frees it when the
   * process (or its host) dies, so this answers for other hosts too, where a pid check cannot.
   */
  async ownerAlive(owner: string): Promise<boolean> {
    if (owner === processOwner()) return true;
    return this.locks.isHeldElsewhere(ownerKey(owner));
  }

  /** Applied migration versions (for tests and `status` output). */
  async schemaVersion(): Promise<number> {
    const { rows } = await this.q<{ v: number | null }>("read schema version", `select max(version) as v from ${this.s}.schema_migrations`);
    return rows[0]?.v ?? 0;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.ownerLock?.release().catch(() => undefined);
    await this.locks.close();
    await this.pool.end();
  }

  async get<K extends RecordKind>(kind: K, id: string): Promise<RecordOf[K] | undefined> {
    const { rows } = await this.q<{ data: RecordOf[K]; version: number }>(
      `get ${kind}`,
      `select data, version from ${this.s}.${TABLES[kind].table} where id = $1`,
      [id],
    );
    const r = rows[0];
    return r ? { ...r.data, version: r.version } : undefined;
  }

  async find<K extends RecordKind>(kind: K, filter: RecordFilter = {}): Promise<RecordOf[K][]> {
    const { table, columns } = TABLES[kind];
    const where: string[] = [];
    const params: unknown[] = [];
    const has = (c: string) => (columns as readonly string[]).includes(c);
    const eq = (col: "backend" | "volume_id" | "name" | "node_id", v: string | undefined) => {
      if (v === undefined) return true;
      // A record kind without the field never matches it (as matchesFilter in core).
      if (!has(col)) return false;
      params.push(v);
      where.push(`${col} = $${params.length}`);
      return true;
    };
    if (!eq("backend", filter.backend) || !eq("volume_id", filter.volume_id) || !eq("name", filter.name) || !eq("node_id", filter.node_id)) {
      return [];
    }
    if (filter.ids !== undefined) {
      if (filter.ids.length === 0) return [];
      params.push([...filter.ids]);
      where.push(`id = any($${params.length}::text[])`);
    }
    if (filter.status !== undefined) {
      const list = typeof filter.status === "string" ? [filter.status] : [...filter.status];
      if (list.length === 0) return [];
      params.push(list);
      where.push(`status = any($${params.length}::text[])`);
    }
    const { rows } = await this.q<{ data: RecordOf[K]; version: number }>(
      `find ${kind}`,
      `select data, version from ${this.s}.${table}${where.length ? ` where ${where.join(" and ")}` : ""} order by created_at, id collate "C"`,
      params,
    );
    return rows.map((r) => ({ ...r.data, version: r.version }));
  }

  async put<K extends RecordKind>(kind: K, record: RecordOf[K], opts: PutOptions = {}): Promise<RecordOf[K]> {
    const { table, columns } = TABLES[kind];
    const rec = record as unknown as Record<string, unknown>;
    const { version: _ignored, ...data } = rec;
    const colValues = columns.map((c) => (rec[c] ?? null) as unknown);
    const params = [record.id, JSON.stringify(data), ...colValues];
    const cols = ["id", "data", ...columns];
    const placeholders = cols.map((c, i) => (c === "data" ? `$${i + 1}::jsonb` : `$${i + 1}`));
    const setList = cols.slice(1).map((c, i) => `${c} = $${i + 2}${c === "data" ? "::jsonb" : ""}`);
    let sql: string;
    if (opts.expectVersion === 0) {
      sql = `insert into ${this.s}.${table} (${cols.join(", ")}, version) values (${placeholders.join(", ")}, 1)
             on conflict (id) do nothing returning version`;
    } else if (opts.expectVersion !== undefined) {
      params.push(opts.expectVersion);
      sql = `update ${this.s}.${table} set ${setList.join(", ")}, version = version + 1
             where id = $1 and version = $${params.length} returning version`;
    } else {
      sql = `insert into ${this.s}.${table} as t (${cols.join(", ")}, version) values (${placeholders.join(", ")}, 1)
             on conflict (id) do update set ${cols
               .slice(1)
               .map((c) => `${c} = excluded.${c}`)
               .join(", ")}, version = t.version + 1 returning version`;
    }
    const { rows } = await this.q<{ version: number }>(`put ${kind}`, sql, params);
    const stored = rows[0];
    if (!stored) {
      const current = (await this.q<{ version: number }>(`get ${kind}`, `select version from ${this.s}.${table} where id = $1`, [record.id]))
        .rows[0]?.version;
      throw new ConflictError(
        current === undefined
          ? `${kind} ${record.id} does not exist (expected version ${opts.expectVersion})`
          : `${kind} ${record.id} changed concurrently (version ${current}, expected ${opts.expectVersion})`,
        { resource: { kind, id: record.id } },
      );
    }
    return { ...(data as unknown as RecordOf[K]), version: stored.version };
  }

  async delete(kind: RecordKind, id: string): Promise<void> {
    await this.q(`delete ${kind}`, `delete from ${this.s}.${TABLES[kind].table} where id = $1`, [id]);
  }

  async getKey(key: string): Promise<unknown> {
    // SQL NULL (a stored undefined) reads as undefined; JSON null stays null.
    const { rows } = await this.q<{ value: unknown; absent: boolean }>(
      "get key",
      `select value, value is null as absent from ${this.s}.kv where key = $1`,
      [key],
    );
    const r = rows[0];
    return !r || r.absent ? undefined : r.value;
  }

  async setKey(key: string, value: unknown): Promise<void> {
    const json = value === undefined ? null : JSON.stringify(value);
    await this.q(
      "set key",
      `insert into ${this.s}.kv (key, value) values ($1, $2::jsonb) on conflict (key) do update set value = excluded.value, updated_at = now()`,
      [key, json],
    );
  }

  /**
   * Set a key only if it is absent; returns true when this call stored it. Lets several instances agree on
   * one first writer (idempotency keys) without a lock.
   */
  async setKeyIfAbsent(key: string, value: unknown): Promise<boolean> {
    const { rowCount } = await this.q(
      "set key",
      `insert into ${this.s}.kv (key, value) values ($1, $2::jsonb) on conflict (key) do nothing`,
      [key, JSON.stringify(value ?? null)],
    );
    return rowCount === 1;
  }

  async deleteKey(key: string): Promise<void> {
    await this.q("delete key", `delete from ${this.s}.kv where key = $1`, [key]);
  }

  async listKeys(prefix = ""): Promise<string[]> {
    const { rows } = await this.q<{ key: string }>(
      "list keys",
      `select key from ${this.s}.kv where starts_with(key, $1) order by key`,
      [prefix],
    );
    return rows.map((r) => r.key);
  }
}
