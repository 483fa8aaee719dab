import { z } from "@cinderts/core";

/** LVM names: letters, digits and + _ . - (LVM's own rule), not starting with '-'. */
const lvmName = z.string().regex(/^[A-Za-z0-9+_.][A-Za-z0-9+_.-]{0,126}$/, "must be an LVM name (A-Z a-z 0-9 + _ . -, not starting with -)");

export const LvmConfig = z
  .object({
    volumeGroup: lvmName.default("cinder-volumes").describe("Volume group holding the volumes (must exist)"),
    provisioning: z.enum(["thick", "thin"]).default("thick").describe("thick LVs, or thin LVs in a thin pool (Cinder lvm_type)"),
    thinPool: lvmName.optional().describe("Thin pool LV name (default <volumeGroup>-pool); created by setup with 95% of the free space if missing"),
    volumeClear: z.enum(["zero", "none"]).default("zero").describe("Wipe thick volumes and snapshots with zeros before removal (never for thin)"),
    volumeClearSizeMiB: z.number().int().min(0).default(0).describe("MiB to wipe; 0 = the whole LV"),
    copyBlockSize: z.enum(["64K", "128K", "256K", "512K", "1M", "2M", "4M", "8M", "16M"]).default("1M").describe("dd block size for copies and wipes (Cinder volume_dd_blocksize)"),
    snapshotChunkSize: z
      .enum(["4K", "8K", "16K", "32K", "64K", "128K", "256K", "512K"])
      .default("64K")
      .describe(
        "COW chunk size of thick snapshots (ignored when thin). LVM's 4K default makes every 1M read of a snapshot 256 exception lookups: a clone from it ran 10x slower than from the origin; 64K reads at origin speed while a first write to the origin still copies only 64K",
      ),
    copyChunkMiB: z
      .number()
      .int()
      .min(16)
      .default(256)
      .describe("Block copies run as one dd per chunk of this many MiB, which is how progress is reported"),
    reservedPercentage: z.number().min(0).max(100).default(0),
    maxOverSubscriptionRatio: z.number().positive().default(20),
    root: z.boolean().default(true).describe("Run LVM commands through the runner's root helper"),
  })
  .strict();
export type LvmConfig = z.output<typeof LvmConfig>;
