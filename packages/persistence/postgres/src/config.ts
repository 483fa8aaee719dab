import { secret } from "@cinderts/core";
import { z } from "@cinderts/core";

/** A PostgreSQL identifier we put into SQL ourselves (schema name): plain lower-case only, so no quoting tricks. */
const identifier = z
  .string()
  .regex(/^[a-z_][a-z0-9_]{0,62}$/, "must be a lower-case SQL identifier (a-z 0-9 _, at most 63 characters)");

export const PostgresConfig = z
  .object({
    /** postgres://user:password@host:port/db — a secret, since it usually carries the password. */
    url: secret().optional(),
    host: z.string().min(1).optional().describe("server host (default 127.0.0.1 unless url is given)"),
    port: z.number().int().min(1).max(65535).optional().describe("server port (default 5432)"),
    user: z.string().min(1).optional().describe("role to connect as"),
    password: secret().optional(),
    database: z.string().min(1).optional().describe("database name"),
    ssl: z.boolean().default(false).describe("connect with TLS (verifying the server certificate)"),
    schema: identifier.default("cinderts").describe("schema holding cinderts' tables (created when missing)"),
    pool_size: z.number().int().min(1).max(1000).default(10).describe("connections for queries"),
    lock_connections: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .default(64)
      .describe("at most this many locks held at once by this process (each holds one connection)"),
    connect_timeout_ms: z.number().int().positive().default(10_000).describe("give up connecting after this long"),
    lock_timeout_ms: z
      .number()
      .int()
      .positive()
      .default(10 * 60_000)
      .describe("default wait for a lock when the caller gives none"),
  })
  .strict()
  .refine((c) => c.url !== undefined || c.database !== undefined || c.host !== undefined, {
    message: "give url, or host/port/user/password/database",
    path: ["url"],
  });
export type PostgresConfig = z.output<typeof PostgresConfig>;
