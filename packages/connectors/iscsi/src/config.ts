import { z } from "@cinderts/core";

const absPath = z.string().regex(/^\/[A-Za-z0-9._\/+-]*$/, "must be an absolute path of A-Z a-z 0-9 . _ / + -");

export const IscsiConnectorConfig = z
  .object({
    method: z
      .enum(["auto", "kernel", "userspace"])
      .default("auto")
      .describe(
        "kernel = open-iscsi (iscsiadm) gives /dev/sdX; userspace = qemu-storage-daemon's iscsi driver exported through FUSE onto a " +
          "regular file (hosts whose kernel has no iSCSI); auto = kernel when the iscsi_tcp transport is available",
      ),
    initiatorName: z
      .string()
      .regex(/^iqn\.\d{4}-\d{2}\.[A-Za-z0-9.-]+(?::[A-Za-z0-9.:_-]+)?$/)
      .optional()
      .describe("Override the initiator IQN (default: /etc/iscsi/initiatorname.iscsi, else a stable generated one in the state dir)"),
    multipath: z.boolean().default(false).describe("Log in to every portal and use the dm-multipath device when multipathd runs"),
    root: z.boolean().default(true).describe("Run iscsiadm/qemu-storage-daemon through the runner's root helper"),
    deviceTimeoutMs: z.number().int().positive().default(60_000).describe("How long to wait for the SCSI disk after login"),
    stateDir: absPath.optional().describe("Where user-space attaches keep their FUSE file, pid file and QMP socket (default: the plugin state dir)"),
  })
  .strict();
export type IscsiConnectorConfig = z.output<typeof IscsiConnectorConfig>;
