import { z } from "@cinderts/core";

const absPath = z.string().regex(/^\/[^\u0000-\u001f\u007f,]*$/, "must be an absolute path without control characters or commas");

export const RbdConnectorConfig = z
  .object({
    method: z
      .enum(["auto", "krbd", "nbd", "qemu-storage-daemon"])
      .default("auto")
      .describe(
        "how to attach: kernel rbd (`rbd device map`), rbd-nbd, or qemu-storage-daemon exporting the image as a regular file through FUSE (no kernel module); auto picks the first available in that order",
      ),
    keyring: absPath
      .optional()
      .describe("keyring file on this host, used when the connection info carries no keyring (default /etc/ceph/<cluster>.client.<user>.keyring)"),
    qemuStorageDaemon: z.string().default("qemu-storage-daemon").describe("qemu-storage-daemon binary (Debian: qemu-system-common + qemu-block-extra)"),
    detachTimeoutSec: z.number().positive().default(30).describe("how long to wait for an attach process to exit on detach"),
    commandTimeoutSec: z.number().positive().default(120).describe("timeout of one map/unmap/start command"),
  })
  .strict();

export type RbdConnectorConfigParsed = z.output<typeof RbdConnectorConfig>;
