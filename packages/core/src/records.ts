import { z } from "zod";
import { InvalidStateError } from "./errors.js";

/**
 * Persisted records. Plain JSON data, one shape for every persistence plugin; `version` is the
 * optimistic-concurrency counter that Persistence.put checks.
 */

export const VolumeStatuses = [
  "creating",
  "available",
  "reserved",
  "attaching",
  "in-use",
  "detaching",
  "extending",
  "deleting",
  "deleted",
  "error",
  "error_deleting",
  "error_extending",
] as const;
export type VolumeStatus = (typeof VolumeStatuses)[number];

export const SnapshotStatuses = ["creating", "available", "deleting", "deleted", "error", "error_deleting"] as const;
export type SnapshotStatus = (typeof SnapshotStatuses)[number];

export const ConnectionStatuses = ["connecting", "connected", "attaching", "attached", "detaching", "disconnecting", "error"] as const;
export type ConnectionStatus = (typeof ConnectionStatuses)[number];

/*
 * The record schemas are built on first use (z.lazy): constructing zod schemas was a third of importing core, and
 * most processes only read records that their own persistence wrote, without parsing them.
 */

/** What an in-flight operation was about to do: written before the backend is touched, cleared after. */
const intentObject = () =>
  z.object({
    op: z.string(),
    started_at: z.string(),
    /** host:pid of the process that recorded it, so reconcile can tell a crash from a live operation. */
    owner: z.string(),
    /** Operation arguments needed to finish or undo it (new size, source id …). Never secrets. */
    args: z.record(z.string(), z.unknown()).optional(),
  });
export const IntentSchema = z.lazy(intentObject);
export type Intent = z.infer<typeof IntentSchema>;

const common = () => ({
  id: z.string(),
  version: z.number().int().nonnegative().default(0),
  backend: z.string(),
  name: z.string().nullable().default(null),
  created_at: z.string(),
  updated_at: z.string(),
  metadata: z.record(z.string(), z.string()).default({}),
  intent: IntentSchema.nullable().default(null),
  /** Why the object is in an error status, for humans. */
  status_reason: z.string().nullable().default(null),
});

/** Driver-owned fields, as in Cinder: persisted verbatim and handed back to the driver. */
const provider = () => ({
  provider_location: z.string().nullable().default(null),
  provider_id: z.string().nullable().default(null),
  /** e.g. "CHAP user secret": a secret, redacted in dumps unless asked for. */
  provider_auth: z.string().nullable().default(null),
  provider_geometry: z.string().nullable().default(null),
});

export const VolumeRecordSchema = z.lazy(() =>
  z.object({
    ...common(),
    ...provider(),
    size: z.number().int().positive(),
    status: z.enum(VolumeStatuses),
    source_volume_id: z.string().nullable().default(null),
    snapshot_id: z.string().nullable().default(null),
  }),
);
export type VolumeRecord = z.infer<typeof VolumeRecordSchema>;

export const SnapshotRecordSchema = z.lazy(() =>
  z.object({
    ...common(),
    ...provider(),
    volume_id: z.string(),
    volume_size: z.number().int().positive(),
    status: z.enum(SnapshotStatuses),
  }),
);
export type SnapshotRecord = z.infer<typeof SnapshotRecordSchema>;

/** Host properties of the consumer of a connection (os-brick's get_connector_properties). */
export const ConnectorPropsSchema = z.lazy(() =>
  z
    .object({
      host: z.string().min(1),
      ip: z.string().optional(),
      initiator: z.string().optional(),
      nqn: z.string().optional(),
      wwpns: z.array(z.string()).optional(),
      wwnns: z.array(z.string()).optional(),
      uuid: z.string().optional(),
      multipath: z.boolean().default(false),
      enforce_multipath: z.boolean().optional(),
      platform: z.string().optional(),
      os_type: z.string().optional(),
      do_local_attach: z.boolean().optional(),
    })
    .loose(),
);
export type ConnectorProps = z.infer<typeof ConnectorPropsSchema>;

/** Cinder's connection info: what a host connector needs to attach the volume. */
export const ConnectionInfoSchema = z.lazy(() =>
  z.object({
    driver_volume_type: z.string(),
    data: z.record(z.string(), z.unknown()),
  }),
);
export type ConnectionInfo = z.infer<typeof ConnectionInfoSchema>;

/** What a host connector did to attach, persisted so detach works after a restart. */
export const AttachInfoSchema = z.lazy(() =>
  z.object({
    /** Which connector plugin and method (e.g. "loop", "file", "qemu-storage-daemon", "kernel"). */
    connector: z.string(),
    method: z.string(),
    path: z.string(),
    host: z.string(),
    /** Connector-private handle: pids, sockets, sessions. Never secrets. */
    handle: z.record(z.string(), z.unknown()).default({}),
  }),
);
export type AttachInfo = z.infer<typeof AttachInfoSchema>;

export const ConnectionRecordSchema = z.lazy(() =>
  z.object({
    id: z.string(),
    version: z.number().int().nonnegative().default(0),
    backend: z.string(),
    volume_id: z.string(),
    status: z.enum(ConnectionStatuses),
    protocol: z.string(),
    connector: ConnectorPropsSchema,
    conn_info: ConnectionInfoSchema.nullable().default(null),
    attach_info: AttachInfoSchema.nullable().default(null),
    /** Node id of the host that holds the attach (local hostname by default). */
    node_id: z.string().nullable().default(null),
    created_at: z.string(),
    updated_at: z.string(),
    intent: IntentSchema.nullable().default(null),
    status_reason: z.string().nullable().default(null),
  }),
);
export type ConnectionRecord = z.infer<typeof ConnectionRecordSchema>;

export type RecordKind = "volume" | "snapshot" | "connection";
export interface RecordOf {
  volume: VolumeRecord;
  snapshot: SnapshotRecord;
  connection: ConnectionRecord;
}
export const recordSchemas = {
  volume: VolumeRecordSchema,
  snapshot: SnapshotRecordSchema,
  connection: ConnectionRecordSchema,
} as const;

/**
 * Legal status transitions (cinderlib's lifecycle). Anything else is a bug or a race, and is refused
 * rather than silently written.
 */
const volumeTransitions: Record<VolumeStatus, readonly VolumeStatus[]> = {
  creating: ["available", "error", "deleting"],
  available: ["reserved", "attaching", "in-use", "extending", "deleting", "error", "available"],
  reserved: ["attaching", "in-use", "available", "error"],
  attaching: ["in-use", "available", "error"],
  "in-use": ["detaching", "available", "extending", "in-use", "deleting", "error"],
  detaching: ["available", "in-use", "error"],
  extending: ["available", "in-use", "error_extending", "error"],
  deleting: ["deleted", "error_deleting", "error"],
  deleted: [],
  error: ["deleting", "available", "error"],
  error_deleting: ["deleting", "error_deleting", "available"],
  error_extending: ["extending", "deleting", "available", "in-use"],
};

const snapshotTransitions: Record<SnapshotStatus, readonly SnapshotStatus[]> = {
  creating: ["available", "error", "deleting"],
  available: ["deleting", "error", "available"],
  deleting: ["deleted", "error_deleting", "error"],
  deleted: [],
  error: ["deleting", "available", "error"],
  error_deleting: ["deleting", "error_deleting"],
};

export function canTransition(kind: "volume", from: VolumeStatus, to: VolumeStatus): boolean;
export function canTransition(kind: "snapshot", from: SnapshotStatus, to: SnapshotStatus): boolean;
export function canTransition(kind: "volume" | "snapshot", from: string, to: string): boolean {
  const table = (kind === "volume" ? volumeTransitions : snapshotTransitions) as Record<string, readonly string[]>;
  return table[from]?.includes(to) ?? false;
}

export function assertTransition(kind: "volume", id: string, from: VolumeStatus, to: VolumeStatus): void;
export function assertTransition(kind: "snapshot", id: string, from: SnapshotStatus, to: SnapshotStatus): void;
export function assertTransition(kind: "volume" | "snapshot", id: string, from: string, to: string): void {
  if (!canTransition(kind as "volume", from as VolumeStatus, to as VolumeStatus)) {
    throw new InvalidStateError(`${kind} ${id} is ${from}; it cannot become ${to}`, { resource: { kind, id } });
  }
}
