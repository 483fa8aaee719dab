import { z } from "zod";
import type { Cinderts } from "./cinderts.js";
import { InvalidArgumentError } from "./errors.js";
import {
  ConnectionRecordSchema,
  SnapshotRecordSchema,
  VolumeRecordSchema,
  type ConnectionRecord,
  type SnapshotRecord,
  type VolumeRecord,
} from "./records.js";
import { nowIso } from "./util.js";
import { REDACTED, parseInput, redact } from "./validation.js";

export const STATE_FORMAT = "cinderts-state";
/** Bumped when the dump's shape changes; load accepts every version up to this one. */
export const STATE_VERSION = 1;

// Built on first use, like the record schemas: only dump and load need them.
const backendDumpObject = () =>
  z.object({
    name: z.string(),
    driver: z.string(),
    driver_id: z.string(),
    driver_version: z.string(),
    vendor: z.string().optional(),
    capabilities: z.record(z.string(), z.unknown()).optional(),
    options: z.unknown(),
  });

export const StateDumpSchema = z.lazy(() =>
  z.object({
    format: z.literal(STATE_FORMAT),
    version: z.number().int().min(1).max(STATE_VERSION),
    created_at: z.string(),
    /** True when secrets are present; false when they were replaced by "***". */
    secrets: z.boolean(),
    backends: z.array(backendDumpObject()),
    volumes: z.array(VolumeRecordSchema),
    snapshots: z.array(SnapshotRecordSchema),
    connections: z.array(ConnectionRecordSchema),
  }),
);
export type StateDump = z.infer<typeof StateDumpSchema>;

/** The serialized form of one object (volume, snapshot, connection), loadable on its own. */
export const ObjectDumpSchema = z.lazy(() =>
  z.discriminatedUnion("kind", [
    z.object({ format: z.literal(STATE_FORMAT), version: z.number().int(), kind: z.literal("volume"), record: VolumeRecordSchema }),
    z.object({ format: z.literal(STATE_FORMAT), version: z.number().int(), kind: z.literal("snapshot"), record: SnapshotRecordSchema }),
    z.object({
      format: z.literal(STATE_FORMAT),
      version: z.number().int(),
      kind: z.literal("connection"),
      record: ConnectionRecordSchema,
    }),
  ]),
);
export type ObjectDump = z.infer<typeof ObjectDumpSchema>;

function redactVolume<T extends VolumeRecord | SnapshotRecord>(r: T): T {
  return r.provider_auth ? { ...r, provider_auth: REDACTED } : r;
}
function redactConnection(c: ConnectionRecord): ConnectionRecord {
  return redact(c);
}

export function dumpObject(kind: "volume", rec: VolumeRecord, opts?: { includeSecrets?: boolean }): ObjectDump;
export function dumpObject(kind: "snapshot", rec: SnapshotRecord, opts?: { includeSecrets?: boolean }): ObjectDump;
export function dumpObject(kind: "connection", rec: ConnectionRecord, opts?: { includeSecrets?: boolean }): ObjectDump;
export function dumpObject(
  kind: "volume" | "snapshot" | "connection",
  rec: VolumeRecord | SnapshotRecord | ConnectionRecord,
  opts: { includeSecrets?: boolean } = {},
): ObjectDump {
  const record =
    opts.includeSecrets
      ? rec
      : kind === "connection"
        ? redactConnection(rec as ConnectionRecord)
        : redactVolume(rec as VolumeRecord);
  return { format: STATE_FORMAT, version: STATE_VERSION, kind, record } as ObjectDump;
}

export function loadObject(json: unknown): ObjectDump {
  return parseInput(ObjectDumpSchema, json, "object dump");
}

export async function dumpState(ct: Cinderts, opts: { backend?: string; includeSecrets?: boolean } = {}): Promise<StateDump> {
  const filter = opts.backend ? { backend: opts.backend } : {};
  const secrets = opts.includeSecrets ?? false;
  const backends = [...ct.backends.values()].filter((b) => !opts.backend || b.name === opts.backend);
  const [volumes, snapshots, connections] = await Promise.all([
    ct.persistence.find("volume", filter),
    ct.persistence.find("snapshot", filter),
    ct.persistence.find("connection", filter),
  ]);
  return {
    format: STATE_FORMAT,
    version: STATE_VERSION,
    created_at: nowIso(),
    secrets,
    backends: backends.map((b) => b.describe({ includeSecrets: secrets })),
    volumes: secrets ? volumes : volumes.map(redactVolume),
    snapshots: secrets ? snapshots : snapshots.map(redactVolume),
    connections: secrets ? connections : connections.map(redactConnection),
  };
}

export interface LoadOptions {
  /** Write the records into persistence (upsert). Without it, load only parses and checks. */
  persist?: boolean;
  /** Refuse records of backends this manifest does not configure (default true). */
  requireBackends?: boolean;
}

export interface LoadResult {
  dump: StateDump;
  written: { volumes: number; snapshots: number; connections: number };
}

/**
 * Load a dump. A redacted dump can be inspected but not persisted: writing "***" over a CHAP secret
 * would break the export, so that is refused.
 */
export async function loadState(ct: Cinderts, json: unknown, opts: LoadOptions = {}): Promise<LoadResult> {
  const dump = parseInput(StateDumpSchema, json, "state dump");
  if (opts.requireBackends ?? true) {
    const unknown = new Set(
      [...dump.volumes, ...dump.snapshots, ...dump.connections].map((r) => r.backend).filter((n) => !ct.backends.has(n)),
    );
    if (unknown.size) {
      throw new InvalidArgumentError(`the dump has records of backends not in this manifest: ${[...unknown].join(", ")}`, {
        issues: [...unknown].map((n) => ({ path: "backend", message: `unknown backend ${n}` })),
      });
    }
  }
  const written = { volumes: 0, snapshots: 0, connections: 0 };
  if (!opts.persist) return { dump, written };
  if (!dump.secrets && [...dump.volumes, ...dump.snapshots].some((r) => r.provider_auth === REDACTED)) {
    throw new InvalidArgumentError("this dump has redacted secrets; dump again with secrets to restore it", {
      issues: [{ path: "secrets", message: "must be true to persist records with provider_auth" }],
    });
  }
  const p = ct.persistence;
  // Preserve versions monotonically: a load never moves a record's version backwards.
  const put = async <K extends "volume" | "snapshot" | "connection">(kind: K, rec: VolumeRecord | SnapshotRecord | ConnectionRecord) => {
    const existing = await p.get(kind, rec.id);
    await p.put(kind, { ...rec, version: existing?.version ?? 0 } as never, existing ? { expectVersion: existing.version } : { expectVersion: 0 });
  };
  for (const v of dump.volumes) {
    await put("volume", v);
    written.volumes++;
  }
  for (const s of dump.snapshots) {
    await put("snapshot", s);
    written.snapshots++;
  }
  for (const c of dump.connections) {
    await put("connection", c);
    written.connections++;
  }
  return { dump, written };
}
