import { hostname } from "node:os";
import { randomUUID } from "node:crypto";
import { open } from "node:fs/promises";
import { InProcessLockManager, InvalidArgumentError, nowIso, silentLogger, type DriverContext, type KeyValueStore, type SnapshotRecord, type Target, type VolumeRecord } from "@cinderts/core";
import { createLocalRunner } from "@cinderts/runner-local";
import { FileDriverOptions, type FileDriverInput } from "../src/config.js";
import { FileDriver } from "../src/driver.js";

export function memoryKv(): KeyValueStore {
  const m = new Map<string, unknown>();
  return {
    get: async (k) => m.get(k),
    set: async (k, v) => void m.set(k, v),
    delete: async (k) => void m.delete(k),
    list: async (p = "") => [...m.keys()].filter((k) => k.startsWith(p)),
  };
}

export function driverContext(extra: Partial<DriverContext> = {}): DriverContext {
  return {
    logger: silentLogger,
    runner: createLocalRunner(),
    locks: new InProcessLockManager(),
    stateDir: "/nonexistent-state-dir",
    kv: memoryKv(),
    backendName: "files",
    nodeId: hostname(),
    baseDir: process.cwd(),
    ...extra,
  };
}

export async function makeDriver(options: FileDriverInput, ctx: Partial<DriverContext> = {}, setup = true): Promise<FileDriver> {
  const d = new FileDriver(FileDriverOptions.parse(options), driverContext(ctx), "0.0.0-test");
  if (setup) await d.setup();
  return d;
}

export function volumeRecord(size = 1, extra: Partial<VolumeRecord> = {}): VolumeRecord {
  const now = nowIso();
  return {
    id: randomUUID(),
    version: 1,
    backend: "files",
    name: null,
    size,
    status: "creating",
    source_volume_id: null,
    snapshot_id: null,
    created_at: now,
    updated_at: now,
    metadata: {},
    intent: null,
    status_reason: null,
    provider_location: null,
    provider_id: null,
    provider_auth: null,
    provider_geometry: null,
    ...extra,
  };
}

export function snapshotRecord(volume: VolumeRecord, extra: Partial<SnapshotRecord> = {}): SnapshotRecord {
  const now = nowIso();
  return {
    id: randomUUID(),
    version: 1,
    backend: "files",
    name: null,
    volume_id: volume.id,
    volume_size: volume.size,
    status: "creating",
    created_at: now,
    updated_at: now,
    metadata: {},
    intent: null,
    status_reason: null,
    provider_location: null,
    provider_id: null,
    provider_auth: null,
    provider_geometry: null,
    ...extra,
  };
}

export async function writeAt(path: string, offset: number, data: Buffer): Promise<void> {
  const fh = await open(path, "r+");
  try {
    await fh.write(data, 0, data.length, offset);
  } finally {
    await fh.close();
  }
}

export async function readAt(path: string, offset: number, length: number): Promise<Buffer> {
  const fh = await open(path, "r");
  try {
    const b = Buffer.alloc(length);
    const { bytesRead } = await fh.read(b, 0, length, offset);
    return b.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** A Target that records every call with its ExportSource: the delegation contract, nothing else. */
export function recordingTarget(): Target & { calls: { op: string; path: string; sizeBytes: number; volumeId: string; connectorHost?: string }[] } {
  const calls: { op: string; path: string; sizeBytes: number; volumeId: string; connectorHost?: string }[] = [];
  const rec = (op: string, s: { path: string; sizeBytes: number; volume: VolumeRecord }, c?: { host: string }) =>
    calls.push({ op, path: s.path, sizeBytes: s.sizeBytes, volumeId: s.volume.id, ...(c ? { connectorHost: c.host } : {}) });
  return {
    protocol: "iSCSI",
    calls,
    async setup() {
      calls.push({ op: "setup", path: "", sizeBytes: 0, volumeId: "" });
    },
    async createExport(s, c) {
      rec("createExport", s, c);
      return { provider_location: "127.0.0.1:3260,1 iqn.test:vol 1" };
    },
    async initializeConnection(s, c) {
      rec("initializeConnection", s, c);
      return { driver_volume_type: "iscsi", data: { target_iqn: "iqn.test:vol", target_lun: 1 } };
    },
    async terminateConnection(s, c) {
      rec("terminateConnection", s, c);
    },
    async removeExport(s) {
      rec("removeExport", s);
    },
    async extendExport(s) {
      rec("extendExport", s);
    },
    validateConnector(c) {
      if (!c.initiator) throw new InvalidArgumentError("iSCSI needs the initiator IQN", { issues: [{ path: "initiator", message: "required" }] });
    },
  };
}
