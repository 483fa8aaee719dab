import { definePersistence } from "@cinderts/core";
import { PostgresConfig } from "./config.js";
import { PostgresPersistence } from "./persistence.js";

export { PostgresConfig } from "./config.js";
export { PostgresPersistence } from "./persistence.js";
export { PostgresLockManager, advisoryKey } from "./locks.js";
export { migrations } from "./migrations.js";

export default definePersistence({
  id: "postgres",
  version: "0.1.0",
  description: "PostgreSQL: metadata shared by several hosts, cross-host advisory locks",
  configSchema: PostgresConfig,
  create: (config, ctx) => new PostgresPersistence(config, ctx.logger),
});
