import { z } from "zod";
import {
  Cinderts,
  MemoryPersistence,
  NotFoundError,
  defineConnector,
  defineDriver,
  definePersistence,
  defineRunner,
  parseManifest,
  secret,
  silentLogger,
  type AttachInfo,
  type BackendPresence,
  type BackendStats,
  type ConnectionInfo,
  type ConnectorProps,
  type HostConnector,
  type OperationOptions,
  type SnapshotRecord,
  type SupportsInventory,
  type VolumeDriver,
  type VolumeRecord,
} from "../src/index.js";

/** Backend state of the fake driver, shared across driver instances like a real array would be. */
export class FakeArray {
  volumes = new Map<string, { size: number; data: string; complete: boolean }>();
  snapshots = new Map<string, { volume: string; data: string }>();
  exports = new Set<string>();
  mappings = new Map<string, Set<string>>();
  calls: string[] = [];
  /** Makes the next call of that name fail (or hang until released). */
  failNext = new Map<string, Error>();
  hang: { op: string; release?: () => void; reached?: () => void } | undefined;

  async step(op: string): Promise<void> {
    this.calls.push(op);
    const err = this.failNext.get(op);
    if (err) {
      this.failNext.delete(op);
      throw err;
    }
    if (this.hang?.op === op) {
      const h = this.hang;
      await new Promise<void>((resolve) => {
        h.release = resolve;
        h.reached?.();
      });
    }
  }
}

export class FakeDriver implements VolumeDriver, SupportsInventory {
  constructor(readonly array: FakeArray) {}
  async setup() {}
  async getStats(): Promise<BackendStats> {
    const provisioned = [...this.array.volumes.values()].reduce((a, v) => a + v.size, 0);
    return {
      volume_backend_name: "x",
      vendor_name: "Fake",
      driver_version: "1",
      storage_protocol: "fake",
      pools: [{ pool_name: "p", total_capacity_gb: 100, free_capacity_gb: 100 - provisioned, provisioned_capacity_gb: provisioned, thin_provisioning_support: true }],
    };
  }
  async createVolume(v: VolumeRecord) {
    this.array.volumes.set(v.id, { size: v.size, data: "", complete: false });
    await this.array.step("createVolume");
    this.array.volumes.get(v.id)!.complete = true;
    return { provider_location: `fake:${v.id}` };
  }
  async deleteVolume(v: VolumeRecord) {
    await this.array.step("deleteVolume");
    this.array.volumes.delete(v.id);
  }
  async extendVolume(v: VolumeRecord, size: number) {
    await this.array.step("extendVolume");
    const vol = this.array.volumes.get(v.id);
    if (!vol) throw new NotFoundError("volume", v.id);
    vol.size = size;
  }
  async createSnapshot(s: SnapshotRecord, v: VolumeRecord) {
    await this.array.step("createSnapshot");
    this.array.snapshots.set(s.id, { volume: v.id, data: this.array.volumes.get(v.id)!.data });
  }
  async deleteSnapshot(s: SnapshotRecord) {
    await this.array.step("deleteSnapshot");
    this.array.snapshots.delete(s.id);
  }
  async createVolumeFromSnapshot(v: VolumeRecord, s: SnapshotRecord) {
    this.array.volumes.set(v.id, { size: v.size, data: this.array.snapshots.get(s.id)!.data, complete: false });
    await this.array.step("createVolumeFromSnapshot");
    this.array.volumes.get(v.id)!.complete = true;
  }
  async createClonedVolume(v: VolumeRecord, src: VolumeRecord, opts?: OperationOptions) {
    this.array.volumes.set(v.id, { size: v.size, data: this.array.volumes.get(src.id)!.data, complete: false });
    opts?.progress?.(1, 2);
    await this.array.step("createClonedVolume");
    this.array.volumes.get(v.id)!.complete = true;
  }
  async createExport(v: VolumeRecord) {
    await this.array.step("createExport");
    this.array.exports.add(v.id);
  }
  async initializeConnection(v: VolumeRecord, c: ConnectorProps): Promise<ConnectionInfo> {
    await this.array.step("initializeConnection");
    const m = this.array.mappings.get(v.id) ?? new Set();
    m.add(c.host);
    this.array.mappings.set(v.id, m);
    return { driver_volume_type: "fake", data: { volume: v.id, auth_password: "chap-secret-123" } };
  }
  async terminateConnection(v: VolumeRecord, c: ConnectorProps | undefined) {
    await this.array.step("terminateConnection");
    if (c) this.array.mappings.get(v.id)?.delete(c.host);
    else this.array.mappings.delete(v.id);
  }
  async removeExport(v: VolumeRecord) {
    await this.array.step("removeExport");
    this.array.exports.delete(v.id);
  }
  validateConnector(c: ConnectorProps) {
    if (!c.host) throw new Error("no host");
  }
  async inspectVolume(v: VolumeRecord): Promise<BackendPresence> {
    const vol = this.array.volumes.get(v.id);
    return !vol ? "absent" : vol.complete ? "present" : "incomplete";
  }
  async inspectSnapshot(s: SnapshotRecord): Promise<BackendPresence> {
    return this.array.snapshots.has(s.id) ? "present" : "absent";
  }
  async listManagedVolumes() {
    return [...this.array.volumes.entries()].map(([id, v]) => ({ id, sizeGiB: v.size }));
  }
}

export function fakeDriverPlugin(array: FakeArray) {
  return defineDriver({
    id: "fake",
    version: "1.0.0",
    description: "test double",
    vendor: "Fake",
    capabilities: { clone: true },
    configSchema: z.object({ pool: z.string().default("p"), password: secret().optional() }).strict(),
    create: () => new FakeDriver(array),
  });
}

export class FakeConnector implements HostConnector {
  protocols = ["fake"];
  attached = new Set<string>();
  async getConnectorProperties() {
    return { initiator: "iqn.fake:host" };
  }
  async connectVolume(ci: ConnectionInfo): Promise<AttachInfo> {
    const path = `/dev/fake/${String(ci.data.volume)}`;
    this.attached.add(path);
    return { connector: "fake", method: "fake", path, host: "h", handle: {} };
  }
  async disconnectVolume(_ci: ConnectionInfo, a: AttachInfo) {
    this.attached.delete(a.path);
  }
  async extendVolume() {
    return 0;
  }
}

export const fakeRunner = defineRunner({
  id: "fake-runner",
  version: "1",
  description: "runs nothing",
  configSchema: z.object({}).strict(),
  create: () => ({ name: "fake", run: async () => ({ stdout: "", stderr: "", exitCode: 0 }) }),
});

export async function openFake(opts: { persistence?: MemoryPersistence; array?: FakeArray; connector?: FakeConnector } = {}) {
  const array = opts.array ?? new FakeArray();
  const persistence = opts.persistence ?? new MemoryPersistence();
  const connector = opts.connector ?? new FakeConnector();
  const loaded = parseManifest({
    persistence: {
      plugin: definePersistence({ id: "mem", version: "1", description: "", configSchema: z.object({}).strict(), create: () => persistence }),
      options: {},
    },
    backends: [{ name: "b1", driver: fakeDriverPlugin(array), options: { password: "hunter2" }, runner: { plugin: fakeRunner, options: {} } }],
    runner: { plugin: fakeRunner, options: {} },
    connectors: [
      {
        plugin: defineConnector({ id: "fake-conn", version: "1", description: "", protocols: ["fake"], configSchema: z.object({}).strict(), create: () => connector }),
        options: {},
      },
    ],
  });
  const ct = await Cinderts.open(loaded, { logger: silentLogger });
  return { ct, array, persistence, connector, backend: ct.backend("b1") };
}
