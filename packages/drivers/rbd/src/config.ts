import { z } from "@cinderts/core";

/** Ceph object names that reach a command line: pool, cluster, client id. */
const cephName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/, "must be 1-128 of A-Z a-z 0-9 _ . - and start with a letter or digit");

/** An absolute path handed to rbd/ceph (never through a shell, but still no control characters or option lookalikes). */
const absPath = z
  .string()
  .regex(/^\/[^\u0000-\u001f\u007f]*$/, "must be an absolute path without control characters");

export const RbdConfig = z
  .object({
    pool: cephName.describe("RADOS pool holding the volumes (Cinder rbd_pool)"),
    cluster: cephName.default("ceph").describe("Ceph cluster name (--cluster; Cinder rbd_cluster_name)"),
    conf: absPath.optional().describe("ceph.conf path (--conf; Cinder rbd_ceph_conf); librados' default search list when absent"),
    user: cephName.default("admin").describe("cephx client id without 'client.' (--id; Cinder rbd_user)"),
    keyring: absPath.optional().describe("keyring file of that client, when ceph.conf does not name it"),
    secretUuid: z
      .string()
      .regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i)
      .optional()
      .describe("libvirt secret uuid returned as secret_uuid (Cinder rbd_secret_uuid); default the cluster fsid"),
    connectionKeyring: z
      .boolean()
      .default(false)
      .describe(
        "put the keyring file's contents into connection info (cinderlib's rbd_keyring_conf) for hosts without /etc/ceph; it is a secret and redacted in dumps",
      ),
    flattenVolumeFromSnapshot: z
      .boolean()
      .default(false)
      .describe("flatten volumes created from snapshots so they do not depend on the snapshot (Cinder rbd_flatten_volume_from_snapshot)"),
    maxCloneDepth: z
      .number()
      .int()
      .min(0)
      .default(5)
      .describe("ancestors a new COW clone may have before it is flattened; 0 = clones are full copies (Cinder rbd_max_clone_depth)"),
    chunkSizeMiB: z
      .number()
      .int()
      .positive()
      .refine((n) => (n & (n - 1)) === 0, "must be a power of two")
      .default(4)
      .describe("RBD object size in MiB (Cinder rbd_store_chunk_size)"),
    connectTimeoutSec: z
      .number()
      .int()
      .min(-1)
      .default(-1)
      .describe("if >= 0: monitor/OSD op and mount timeout in seconds for every Ceph call (Cinder rados_connect_timeout)"),
    snapshotsWithDependents: z
      .enum(["flatten", "refuse"])
      .default("flatten")
      .describe("deleting a snapshot that has clones: flatten the clones, or refuse with HasDependentsError naming them"),
    concurrentFlattens: z
      .number()
      .int()
      .positive()
      .default(3)
      .describe("flattens running at once (Cinder rbd_concurrent_flatten_operations)"),
    busyRetries: z
      .number()
      .int()
      .min(0)
      .default(3)
      .describe("retries of a delete that finds the image busy (watchers) before BusyError (Cinder rados_connection_retries)"),
    busyRetryIntervalSec: z
      .number()
      .min(0)
      .default(5)
      .describe("seconds between those retries (Cinder rados_connection_interval)"),
    reservedPercentage: z.number().min(0).max(100).default(0).describe("reported as reserved_percentage"),
    maxOverSubscriptionRatio: z.number().positive().default(20).describe("reported as max_over_subscription_ratio"),
    transport: z
      .enum(["auto", "native", "cli"])
      .default("auto")
      .describe(
        "how to reach Ceph: `native` = librbd in-process through @cinderts/driver-rbd-native, `cli` = rbd/ceph commands through the runner, `auto` = native when installed and the runner is local, else cli",
      ),
    commandTimeoutSec: z.number().positive().default(300).describe("timeout of one rbd/ceph command (cli transport)"),
  })
  .strict();

export type RbdConfigInput = z.input<typeof RbdConfig>;
export type RbdConfigParsed = z.output<typeof RbdConfig>;
