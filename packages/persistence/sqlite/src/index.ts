import { definePersistence } from "@cinderts/core";
import { SqliteOptions } from "./config.js";
import { SqlitePersistence } from "./persistence.js";

export { SqliteOptions } from "./config.js";
export { SqlitePersistence, type SqlitePersistenceInit } from "./persistence.js";
export { SqliteLockManager, type LockRow } from "./locks.js";
export { migrations, LATEST_SCHEMA_VERSION, type Migration } from "./migrations.js";

/** The embedded default: metadata and cross-process locks in one SQLite file beside the volumes. */
export default definePersistence({
  id: "sqlite",
  version: "0.1.0",
  description: "Volumes, snapshots, connections, key-values and cross-process locks in one SQLite file (WAL)",
  configSchema: SqliteOptions,
  create: (options, ctx) => new SqlitePersistence({ ...options, baseDir: ctx.baseDir, logger: ctx.logger }),
});
