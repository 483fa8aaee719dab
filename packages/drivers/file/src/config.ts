import { z } from "@cinderts/core";

/** Options of @cinderts/driver-file, as written under `backends[].options` in a manifest. */
export const FileDriverOptions = z
  .object({
    path: z
      .string()
      .min(1, "must not be empty")
      .refine((s) => !s.includes("\0"), "must not contain NUL bytes")
      .describe("directory holding this backend's volume and snapshot files (created if missing; one directory per backend)"),
    reflink: z
      .enum(["auto", "always", "never"])
      .default("auto")
      .describe(
        "clones and snapshots share blocks (FICLONE) where the filesystem supports it: auto = when possible, always = refuse to start without it, never = always copy",
      ),
    copyMethod: z
      .enum(["cp", "node"])
      .default("cp")
      .describe(
        "how a non-reflink copy runs: cp = `cp --sparse=always` (skips holes with SEEK_DATA, the fastest), node = in-process chunked copy that skips all-zero blocks",
      ),
    copyChunkMiB: z
      .number()
      .int()
      .min(1)
      .max(256)
      .default(1)
      .describe("read size of the node copy method, in MiB"),
  })
  .strict();
export type FileDriverOptions = z.output<typeof FileDriverOptions>;
export type FileDriverInput = z.input<typeof FileDriverOptions>;
