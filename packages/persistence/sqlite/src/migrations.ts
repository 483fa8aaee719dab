import { ConfigError } from "@cinderts/core";
import type Database from "better-sqlite3";

/** One schema step. Steps are append-only: a released step is never edited, a fix is a new step. */
export interface Migration {
  version: number;
  description: string;
  sql: string;
}

// Every record table has the same filter columns so that one query builder serves all kinds; a column a
// kind lacks (volume_id of a volume) stays NULL and so never matches, as in core's matchesFilter.
const recordTable = (table: string) => `
  CREATE TABLE ${table} (
    id         TEXT PRIMARY KEY NOT NULL,
    backend    TEXT NOT NULL,
    volume_id  TEXT,
    name       TEXT,
    status     TEXT NOT NULL,
    node_id    TEXT,
    version    INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    data       TEXT NOT NULL
  ) STRICT;
  CREATE INDEX ${table}_backend   ON ${table} (backend);
  CREATE INDEX ${table}_volume_id ON ${table} (volume_id);
  CREATE INDEX ${table}_name      ON ${table} (name);
  CREATE INDEX ${table}_status    ON ${table} (status);
  CREATE INDEX ${table}_node_id   ON ${table} (node_id);
  CREATE INDEX ${table}_created   ON ${table} (created_at, id);
`;

export const migrations: readonly Migration[] = [
  {
    version: 1,
    description: "record tables, key-values, locks",
    sql: `
      ${recordTable("volumes")}
      ${recordTable("snapshots")}
      ${recordTable("connections")}
      CREATE TABLE kv (
        key   TEXT PRIMARY KEY NOT NULL,
        value TEXT NOT NULL
      ) STRICT;
      CREATE TABLE locks (
        key         TEXT PRIMARY KEY NOT NULL,
        owner       TEXT NOT NULL,
        token       TEXT NOT NULL,
        acquired_at TEXT NOT NULL
      ) STRICT;
    `,
  },
];

export const LATEST_SCHEMA_VERSION = migrations[migrations.length - 1]!.version;

/**
 * Brings the schema up to date. Runs in one IMMEDIATE transaction: the write lock is taken before the
 * current version is read, so when several processes open a new database at once exactly one applies each
 * step and the others, once they get the lock, find nothing left to do.
 * Returns the versions applied by this call. A database newer than this code is refused, not touched.
 */
export function migrate(db: Database.Database, steps: readonly Migration[] = migrations): number[] {
  // Fast path for every open after the first: a plain read, so a CLI start never waits for another
  // process's write lock. Only a database that is behind takes the IMMEDIATE transaction (and re-reads there).
  const latestStep = steps[steps.length - 1]?.version ?? 0;
  const hasTable = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").get();
  if (hasTable && (db.prepare("SELECT COALESCE(MAX(version), 0) AS v FROM schema_version").get() as { v: number }).v === latestStep) {
    return [];
  }
  const run = db.transaction(() => {
    db.exec(`CREATE TABLE IF NOT EXISTS schema_version (
      version     INTEGER PRIMARY KEY NOT NULL,
      description TEXT NOT NULL,
      applied_at  TEXT NOT NULL
    ) STRICT`);
    const current = (db.prepare("SELECT COALESCE(MAX(version), 0) AS v FROM schema_version").get() as { v: number }).v;
    const latest = steps[steps.length - 1]?.version ?? 0;
    if (current > latest) {
      throw new ConfigError(
        `database schema version ${current} is newer than this @cinderts/persistence-sqlite supports (${latest}): upgrade cinderts`,
        { data: { found: current, supported: latest } },
      );
    }
    const applied: number[] = [];
    const record = db.prepare("INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)");
    for (const step of steps) {
      if (step.version <= current) continue;
      db.exec(step.sql);
      record.run(step.version, step.description, new Date().toISOString());
      applied.push(step.version);
    }
    // user_version mirrors the table so that `sqlite3 state.db 'PRAGMA user_version'` tells the version too.
    if (applied.length) db.pragma(`user_version = ${latest}`);
    return applied;
  });
  return run.immediate();
}
