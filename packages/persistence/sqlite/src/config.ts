import { z } from "@cinderts/core";

/** Options of @cinderts/persistence-sqlite, as written under `persistence.options` in a manifest. */
export const SqliteOptions = z
  .object({
    path: z
      .string()
      .min(1)
      .describe("Database file; a relative path is resolved against the manifest's directory. Its directory is created if missing."),
    busyTimeoutMs: z
      .number()
      .int()
      .min(0)
      .max(600_000)
      .default(5_000)
      .describe("How long one statement waits for another process's write transaction before failing with BUSY"),
  })
  .strict();
export type SqliteOptions = z.output<typeof SqliteOptions>;
