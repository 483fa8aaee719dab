import {
  AttachInfoSchema,
  ConnectionStatuses,
  ConnectorPropsSchema,
  ResourceIdSchema,
  SnapshotStatuses,
  VolumeStatuses,
  displayName,
  safeIdentifier,
  sizeGiB,
} from "@cinderts/core";
import { z } from "@cinderts/core";

/** Request and response bodies of the API. The OpenAPI document is generated from these. */

const metadata = z.record(z.string().min(1).max(255), z.string().max(1024));
const boolQuery = z
  .enum(["true", "false", "1", "0"], { error: "must be true or false" })
  .transform((v) => v === "true" || v === "1");

export const IdParams = z.object({ id: ResourceIdSchema }).strict();
export const NameParams = z.object({ name: safeIdentifier }).strict();

// ───────── backends and drivers ─────────

export const BackendView = z
  .object({
    name: z.string(),
    driver: z.string(),
    driver_id: z.string(),
    driver_version: z.string(),
    vendor: z.string().optional(),
    capabilities: z.record(z.string(), z.unknown()),
    options: z.unknown().describe("driver options, secrets redacted"),
  })
  .meta({ id: "Backend" });

export const PoolStatsView = z
  .object({
    pool_name: z.string(),
    total_capacity_gb: z.union([z.number(), z.enum(["unknown", "infinite"])]),
    free_capacity_gb: z.union([z.number(), z.enum(["unknown", "infinite"])]),
    provisioned_capacity_gb: z.number().optional(),
    allocated_capacity_gb: z.number().optional(),
    thin_provisioning_support: z.boolean(),
  })
  .loose();
export const StatsView = z
  .object({
    volume_backend_name: z.string(),
    vendor_name: z.string(),
    driver_version: z.string(),
    storage_protocol: z.string(),
    pools: z.array(PoolStatsView),
  })
  .loose()
  .meta({ id: "BackendStats" });
export const StatsQuery = z.object({ refresh: boolQuery.optional() }).strict();

export const DriverView = z
  .object({
    package: z.string(),
    id: z.string().optional(),
    version: z.string().optional(),
    vendor: z.string().optional(),
    description: z.string().optional(),
    capabilities: z.record(z.string(), z.unknown()).optional(),
    backends: z.array(z.string()),
    options_schema: z.unknown().optional(),
    error: z.string().optional(),
  })
  .meta({ id: "Driver" });

// ───────── volumes ─────────

export const VolumeView = z
  .object({
    id: z.string(),
    name: z.string().nullable(),
    backend: z.string(),
    size: z.number().int(),
    status: z.enum(VolumeStatuses),
    source_volume_id: z.string().nullable(),
    snapshot_id: z.string().nullable(),
    created_at: z.string(),
    updated_at: z.string(),
    metadata: z.record(z.string(), z.string()),
    status_reason: z.string().optional(),
  })
  .meta({ id: "Volume" });

export const CreateVolumeBody = z
  .object({
    size: sizeGiB,
    backend: safeIdentifier.optional().describe("default: the source's backend, else the only backend, else `default`"),
    name: displayName.optional(),
    snapshot_id: ResourceIdSchema.optional().describe("create from this snapshot (202: poll the volume)"),
    source_volume_id: ResourceIdSchema.optional().describe("clone this volume (202: poll the volume)"),
    metadata: metadata.optional(),
  })
  .strict()
  .refine((v) => !(v.snapshot_id && v.source_volume_id), {
    message: "give either snapshot_id or source_volume_id, not both",
    path: ["snapshot_id"],
  })
  .meta({ id: "CreateVolume" });

export const ListVolumesQuery = z
  .object({ backend: safeIdentifier.optional(), include_deleted: boolQuery.optional() })
  .strict();
export const ExtendBody = z.object({ size: sizeGiB }).strict().meta({ id: "ExtendVolume" });
export const DeleteQuery = z.object({ force: boolQuery.optional() }).strict();

// ───────── snapshots ─────────

export const SnapshotView = z
  .object({
    id: z.string(),
    name: z.string().nullable(),
    backend: z.string(),
    volume_id: z.string(),
    volume_size: z.number().int(),
    status: z.enum(SnapshotStatuses),
    created_at: z.string(),
    metadata: z.record(z.string(), z.string()),
    status_reason: z.string().optional(),
  })
  .meta({ id: "Snapshot" });
export const CreateSnapshotBody = z
  .object({ volume_id: ResourceIdSchema, name: displayName.optional(), metadata: metadata.optional() })
  .strict()
  .meta({ id: "CreateSnapshot" });
export const ListSnapshotsQuery = z.object({ volume_id: ResourceIdSchema.optional(), include_deleted: boolQuery.optional() }).strict();

// ───────── connections ─────────

export const ConnectorProps = ConnectorPropsSchema.meta({ id: "ConnectorProperties" });

export const ConnectionView = z
  .object({
    id: z.string(),
    backend: z.string(),
    volume_id: z.string(),
    status: z.enum(ConnectionStatuses),
    protocol: z.string(),
    connector: z.unknown(),
    conn_info: z.unknown().describe("Cinder connection info; secrets redacted unless include_secrets (admin)"),
    node_id: z.string().nullable(),
    attached: z.boolean(),
    path: z.string().optional(),
    attach_method: z.string().optional(),
    attach_info: AttachInfoSchema.nullable().optional().describe("only with include_secrets: what the consumer's connector did"),
    created_at: z.string(),
  })
  .meta({ id: "Connection" });

export const ConnectBody = z
  .object({
    volume_id: ResourceIdSchema,
    connector: ConnectorPropsSchema.optional().describe("the consumer's properties; default: those the node registered"),
    node_id: ResourceIdSchema.optional().describe("the consumer node (registered with PUT /v1/nodes/{id})"),
  })
  .strict()
  .refine((b) => b.connector !== undefined || b.node_id !== undefined, {
    message: "give connector, or node_id of a registered node",
    path: ["connector"],
  })
  .meta({ id: "Connect" });
export const ListConnectionsQuery = z
  .object({ volume_id: ResourceIdSchema.optional(), node_id: ResourceIdSchema.optional() })
  .strict();
export const SecretsQuery = z.object({ include_secrets: boolQuery.optional() }).strict();
export const AttachmentBody = z.object({ attach_info: AttachInfoSchema }).strict().meta({ id: "Attachment" });
export const DetachQuery = z.object({ force: boolQuery.optional() }).strict();

export const ValidateConnectorBody = z
  .object({ backend: safeIdentifier, connector: z.unknown() })
  .strict()
  .meta({ id: "ValidateConnector" });
export const ValidateConnectorView = z.object({ valid: z.literal(true), connector: ConnectorPropsSchema });

// ───────── nodes ─────────

export const NodeBody = z.object({ connector: ConnectorPropsSchema }).strict().meta({ id: "RegisterNode" });
export const NodeView = z
  .object({ id: z.string(), connector: z.unknown(), registered_at: z.string(), updated_at: z.string() })
  .meta({ id: "Node" });

// ───────── state, reconcile ─────────

export const DumpQuery = z.object({ backend: safeIdentifier.optional(), include_secrets: boolQuery.optional() }).strict();
export const LoadBody = z
  .object({ dump: z.unknown().describe("a state dump (GET /v1/state?include_secrets=true)"), persist: z.boolean().default(false) })
  .strict()
  .meta({ id: "LoadState" });
export const LoadView = z.object({
  written: z.object({ volumes: z.number(), snapshots: z.number(), connections: z.number() }),
  counts: z.object({ volumes: z.number(), snapshots: z.number(), connections: z.number() }),
});
export const ReconcileBody = z
  .object({
    backend: safeIdentifier.optional(),
    delete_orphans: z.boolean().optional(),
    stale_after_ms: z.number().int().positive().optional().describe("treat intents of other hosts older than this as dead"),
  })
  .strict()
  .meta({ id: "Reconcile" });
export const ReconcileView = z
  .object({
    actions: z.array(z.object({ kind: z.string(), id: z.string(), backend: z.string(), action: z.string() })),
    orphans: z.array(z.object({ backend: z.string(), id: z.string(), deleted: z.boolean() })),
    missing: z.array(z.object({ backend: z.string(), kind: z.string(), id: z.string() })),
    skipped: z.array(z.object({ kind: z.string(), id: z.string(), reason: z.string() })),
  })
  .meta({ id: "ReconcileReport" });

// ───────── errors ─────────

export const Problem = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    code: z.string().describe("stable error code (NOT_FOUND, INVALID_ARGUMENT …)"),
    instance: z.string().describe("request id"),
    issues: z.array(z.object({ path: z.string(), message: z.string() })).optional().describe("each bad field"),
    resource: z.object({ kind: z.string(), id: z.string() }).optional(),
    data: z.record(z.string(), z.unknown()).optional(),
  })
  .meta({ id: "Problem" });
