import { z } from "zod";
import { ConnectorPropsSchema } from "./records.js";
import { displayName, sizeGiB } from "./validation.js";

/** Input schemas of every public operation: parsed before anything is changed. */

export const ResourceIdSchema = z
  .string({ error: "must be an id" })
  .min(1, "must not be empty")
  .max(128, "must be at most 128 characters")
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, "must be an id (letters, digits, _ . -)");

const metadata = z
  .record(z.string().min(1).max(255), z.string().max(1024))
  .refine((m) => Object.keys(m).length <= 64, "at most 64 metadata keys");

export const CreateVolumeInput = z
  .object({
    size: sizeGiB,
    name: displayName.optional(),
    snapshot_id: ResourceIdSchema.optional(),
    source_volume_id: ResourceIdSchema.optional(),
    metadata: metadata.optional(),
    /** Choose the id (restores, idempotent retries); a new UUID otherwise. */
    id: ResourceIdSchema.optional(),
  })
  .strict()
  .refine((v) => !(v.snapshot_id && v.source_volume_id), {
    message: "give either a snapshot or a source volume, not both",
    path: ["snapshot_id"],
  });
export type CreateVolumeInput = z.input<typeof CreateVolumeInput>;

export const ExtendVolumeInput = z.object({ id: ResourceIdSchema, size: sizeGiB }).strict();

export const DeleteInput = z.object({ id: ResourceIdSchema, force: z.boolean().default(false) }).strict();

export const CreateSnapshotInput = z
  .object({
    volume_id: ResourceIdSchema,
    name: displayName.optional(),
    metadata: metadata.optional(),
    id: ResourceIdSchema.optional(),
  })
  .strict();
export type CreateSnapshotInput = z.input<typeof CreateSnapshotInput>;

export const ConnectInput = z
  .object({
    volume_id: ResourceIdSchema,
    connector: ConnectorPropsSchema,
    node_id: ResourceIdSchema.optional(),
  })
  .strict();

export const StatsInput = z.object({ refresh: z.boolean().default(false) }).strict();
