import { z } from "@cinderts/core";
import { IscsiTargetOptions } from "@cinderts/target-iscsi";

const absPath = z.string().regex(/^\/[A-Za-z0-9._\/+-]*$/, "must be an absolute path of A-Z a-z 0-9 . _ / + -");

export const TgtConfig = z
  .object({
    ...IscsiTargetOptions,
    controlPort: z
      .number()
      .int()
      .min(0)
      .max(65535)
      .optional()
      .describe("tgtd control port (tgtd/tgtadm -C); unset = the system tgtd"),
    confDir: absPath
      .nullable()
      .default("/etc/tgt/conf.d")
      .describe(
        "Directory of per-volume targets.conf fragments (mode 0600, they hold the CHAP secret) so that tgtd restores the targets " +
          "on restart (Debian's /etc/tgt/targets.conf includes /etc/tgt/conf.d/*.conf); null = do not persist",
      ),
    aclByInitiator: z
      .boolean()
      .default(true)
      .describe("Allow only the connecting initiator's IQN (bound on initializeConnection); false = any initiator that knows the CHAP secret"),
    bsType: z.enum(["rdwr", "aio"]).optional().describe("tgt backing-store type (default rdwr)"),
  })
  .strict();
export type TgtConfig = z.output<typeof TgtConfig>;

export const pathSchema = absPath;
