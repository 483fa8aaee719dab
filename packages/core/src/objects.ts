import type { ConnectionRecord, SnapshotRecord, VolumeRecord } from "./records.js";

/**
 * Public views: the JSON a user sees (CLI --json, server responses). Driver-private fields
 * (provider_*) and intents stay in records and dumps.
 */
export function volumeView(v: VolumeRecord) {
  return {
    id: v.id,
    name: v.name,
    backend: v.backend,
    size: v.size,
    status: v.status,
    source_volume_id: v.source_volume_id,
    snapshot_id: v.snapshot_id,
    created_at: v.created_at,
    updated_at: v.updated_at,
    metadata: v.metadata,
    ...(v.status_reason ? { status_reason: v.status_reason } : {}),
  };
}
export type VolumeView = ReturnType<typeof volumeView>;

export function snapshotView(s: SnapshotRecord) {
  return {
    id: s.id,
    name: s.name,
    backend: s.backend,
    volume_id: s.volume_id,
    volume_size: s.volume_size,
    status: s.status,
    created_at: s.created_at,
    metadata: s.metadata,
    ...(s.status_reason ? { status_reason: s.status_reason } : {}),
  };
}
export type SnapshotView = ReturnType<typeof snapshotView>;

/** conn_info is redacted (CHAP secrets) unless the caller asks for secrets. */
export function connectionView(c: ConnectionRecord, opts: { redact: (x: unknown) => unknown }) {
  return {
    id: c.id,
    backend: c.backend,
    volume_id: c.volume_id,
    status: c.status,
    protocol: c.protocol,
    connector: opts.redact(c.connector),
    conn_info: opts.redact(c.conn_info),
    node_id: c.node_id,
    attached: c.attach_info !== null,
    ...(c.attach_info ? { path: c.attach_info.path, attach_method: c.attach_info.method } : {}),
    created_at: c.created_at,
  };
}
export type ConnectionView = ReturnType<typeof connectionView>;
