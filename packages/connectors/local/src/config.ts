import { z } from "@cinderts/core";

/** Options of @cinderts/connector-local, as written under `connectors[].options` in a manifest. */
export const ConnectorLocalOptions = z
  .object({
    loop: z
      .boolean()
      .default(false)
      .describe("attach file volumes as loop devices (losetup; needs root or the runner's root helper) instead of handing out the file path"),
  })
  .strict();
export type ConnectorLocalOptions = z.output<typeof ConnectorLocalOptions>;
