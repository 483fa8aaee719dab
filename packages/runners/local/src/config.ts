import { z } from "@cinderts/core";

const arg = z
  .string()
  .min(1, "must not be empty")
  .refine((s) => !s.includes("\0"), "must not contain NUL bytes");

/** Options of @cinderts/runner-local, as written under `runner.options` in a manifest. */
export const RunnerLocalOptions = z
  .object({
    rootHelper: z
      .array(arg)
      .min(1, "give at least the helper command, e.g. [\"sudo\", \"-n\", \"--\"]")
      .optional()
      .describe(
        "argv prefix for commands that need root when this process is not root, e.g. [\"sudo\", \"-n\", \"--\"]; unused when already root",
      ),
    defaultTimeoutMs: z
      .number()
      .int()
      .nonnegative()
      .default(300_000)
      .describe("kill a command after this long unless the call gives its own timeout; 0 = no limit"),
  })
  .strict();
export type RunnerLocalOptions = z.output<typeof RunnerLocalOptions>;
export type RunnerLocalInput = z.input<typeof RunnerLocalOptions>;
