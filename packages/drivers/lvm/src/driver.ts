import {
  BackendError,
  ConfigError,
  GiB,
  HasDependentsError,
  InvalidArgumentError,
  NotFoundError,
  type BackendStats,
  type ConnectionInfo,
  type ConnectorProps,
  type DriverContext,
  type ExportSource,
  type Logger,
  type ModelUpdate,
  type OperationOptions,
  type SnapshotRecord,
  type Target,
  type VolumeDriver,
  type VolumeRecord,
} from "@cinderts/core";
import type { LvmConfig } from "./config.js";
import { Lvm, type LvInfo } from "./lvm.js";

export const DRIVER_VERSION = "0.1.0";
const MiB = 1024 * 1024;
/** Ownership tag on every LV this driver creates (lets inventory tell ours from the admin's). */
export const OWNER_TAG = "cinderts";

const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,100}$/;
function checkId(kind: "volume" | "snapshot", id: string): string {
  if (!ID.test(id)) throw new InvalidArgumentError(`${kind} id ${JSON.stringify(id)} cannot be used in an LV name`, { resource: { kind, id } });
  return id;
}

/** Cinder's names: `volume-<id>`; snapshots `snapshot-<id>` escaped to `_snapshot-<id>` (LVM reserves the `snapshot` prefix). */
export const names = {
  volume: (id: string) => `volume-${checkId("volume", id)}`,
  snapshot: (id: string) => `_snapshot-${checkId("snapshot", id)}`,
  cloneSnap: (id: string) => `clone-snap-${checkId("volume", id)}`,
};

const blockSizeBytes = (bs: string): number => Number(bs.slice(0, -1)) * (bs.endsWith("M") ? MiB : 1024);

/**
 * Volumes are logical volumes (thick, or thin in a thin pool); the data path is a target helper (LIO or tgt)
 * from the manifest's `target`. Every command goes through ctx.runner, locally or on a storage host over SSH.
 */
export class LvmDriver implements VolumeDriver {
  private readonly lvm: Lvm;
  private readonly log: Logger;
  private readonly vg: string;
  private readonly pool: string;
  private readonly thin: boolean;

  constructor(
    private readonly cfg: LvmConfig,
    private readonly ctx: DriverContext,
  ) {
    this.lvm = new Lvm(ctx.runner, cfg.root);
    this.log = ctx.logger.child({ driver: "lvm" });
    this.vg = cfg.volumeGroup;
    this.pool = cfg.thinPool ?? `${cfg.volumeGroup}-pool`;
    this.thin = cfg.provisioning === "thin";
  }

  private get target(): Target {
    if (!this.ctx.target) {
      throw new ConfigError("the LVM driver needs a target helper: add `target: {plugin: \"@cinderts/target-lio\" | \"@cinderts/target-tgt\", options}` to the backend");
    }
    return this.ctx.target;
  }

  /** The device the target exports (Cinder: /dev/<vg>/<lv>). */
  devicePath(lv: string): string {
    return `/dev/${this.vg}/${lv}`;
  }

  private source(volume: VolumeRecord): ExportSource {
    return { volume, path: this.devicePath(names.volume(volume.id)), sizeBytes: volume.size * GiB };
  }

  async setup(): Promise<void> {
    const version = await this.lvm.version();
    const vg = await this.lvm.vg(this.vg);
    if (!vg) throw new BackendError(`volume group ${this.vg} does not exist on ${this.ctx.runner.name}`, { backend: this.ctx.backendName });
    if (this.thin && !(await this.lvm.lv(this.vg, this.pool))) {
      // Cinder leaves 5% of the VG for pool metadata and snapshots' growth.
      const sizeMiB = Math.floor((vg.free * 0.95) / MiB);
      try {
        await this.lvm.run(["lvcreate", "-T", "-L", `${sizeMiB}m`, `${this.vg}/${this.pool}`]);
      } catch (e) {
        // Another process may have created it meanwhile (Cinder tolerates the same race).
        if (!(await this.lvm.lv(this.vg, this.pool))) throw new BackendError(`could not create thin pool ${this.vg}/${this.pool}`, { cause: e });
      }
      await this.lvm.activate(this.vg, this.pool, { ignoreSkip: true });
    }
    if (this.ctx.target) await this.ctx.target.setup();
    this.log.info("setup", { lvm: version, vg: this.vg, provisioning: this.cfg.provisioning });
  }

  async getStats(): Promise<BackendStats> {
    const vg = await this.lvm.vg(this.vg);
    if (!vg) throw new BackendError(`volume group ${this.vg} is gone`);
    const lvs = await this.lvm.lvs(this.vg);
    const gb = (b: number) => Math.round((b / GiB) * 100) / 100;
    let total = vg.size;
    let free = vg.free;
    let provisioned = vg.size - vg.free;
    if (this.thin) {
      const pool = lvs.find((l) => l.name === this.pool);
      if (pool) {
        total = pool.size;
        free = pool.size - (pool.size * (pool.dataPercent ?? 0)) / 100;
        provisioned = lvs.filter((l) => l.pool === this.pool).reduce((s, l) => s + l.size, 0);
      }
    }
    const name = this.ctx.backendName;
    return {
      volume_backend_name: name,
      vendor_name: "Open Source",
      driver_version: DRIVER_VERSION,
      storage_protocol: "iSCSI",
      shared_targets: false,
      sparse_copy_volume: this.thin,
      pools: [
        {
          pool_name: name,
          total_capacity_gb: gb(total),
          free_capacity_gb: gb(free),
          provisioned_capacity_gb: gb(provisioned),
          reserved_percentage: this.cfg.reservedPercentage,
          max_over_subscription_ratio: this.cfg.maxOverSubscriptionRatio,
          location_info: `LVMVolumeDriver:${this.ctx.runner.name}:${this.vg}:${this.thin ? "thin" : "default"}:0`,
          QoS_support: false,
          thin_provisioning_support: this.thin,
          thick_provisioning_support: !this.thin,
          total_volumes: lvs.filter((l) => l.name !== this.pool && !l.attr.startsWith("t")).length,
          multiattach: true,
          backend_state: "up",
        },
      ],
    };
  }

  private async createLv(lv: string, sizeGiB: number): Promise<void> {
    const argv = this.thin
      ? ["lvcreate", "-T", "-V", `${sizeGiB}g`, "-n", lv, "--addtag", OWNER_TAG, `${this.vg}/${this.pool}`]
      : ["lvcreate", "-n", lv, "--addtag", OWNER_TAG, "-L", `${sizeGiB}g`, this.vg];
    try {
      await this.lvm.run(argv);
    } catch (e) {
      // A retry after a crash between lvcreate and the record update finds the LV already there.
      const existing = await this.lvm.lv(this.vg, lv);
      if (!existing || existing.size !== sizeGiB * GiB) throw e;
    }
  }

  async createVolume(volume: VolumeRecord): Promise<ModelUpdate | void> {
    await this.createLv(names.volume(volume.id), volume.size);
  }

  /** Thick origins with COW snapshots cannot go (their snapshots would go with them). */
  private async dependentsOf(lv: string): Promise<LvInfo[]> {
    return (await this.lvm.lvs(this.vg)).filter((l) => l.origin === lv && l.attr.startsWith("s"));
  }

  async deleteVolume(volume: VolumeRecord): Promise<void> {
    const lv = names.volume(volume.id);
    const info = await this.lvm.lv(this.vg, lv);
    if (!info) return;
    if (/^[oO]/.test(info.attr)) {
      const deps = await this.dependentsOf(lv);
      throw new HasDependentsError(
        `volume ${volume.id} has snapshots`,
        deps.map((d) => ({ kind: "snapshot" as const, id: d.name.replace(/^_snapshot-/, "") })),
        { resource: { kind: "volume", id: volume.id } },
      );
    }
    if (!this.thin && this.cfg.volumeClear === "zero") await this.wipe(this.devicePath(lv), info.size);
    await this.lvm.remove(this.vg, lv);
  }

  /** Zero a thick LV before it is freed, so the next LV never shows a previous tenant's data. */
  private async wipe(device: string, sizeBytes: number): Promise<void> {
    const limit = this.cfg.volumeClearSizeMiB > 0 ? Math.min(sizeBytes, this.cfg.volumeClearSizeMiB * MiB) : sizeBytes;
    await this.copy("/dev/zero", device, limit);
  }

  /**
   * dd in chunks of copyChunkMiB so progress can be reported between them; O_DIRECT on block devices (never
   * iflag=direct for /dev/zero); sparse writes only into fresh thin LVs, whose unwritten blocks read as zeros.
   */
  async copy(src: string, dst: string, sizeBytes: number, opts: OperationOptions = {}): Promise<void> {
    const bs = blockSizeBytes(this.cfg.copyBlockSize);
    const chunkBlocks = Math.max(1, Math.floor((this.cfg.copyChunkMiB * MiB) / bs));
    const totalBlocks = Math.ceil(sizeBytes / bs);
    const fromZero = src === "/dev/zero";
    const conv = ["notrunc", ...(this.thin && !fromZero ? ["sparse"] : [])].join(",");
    for (let done = 0; done < totalBlocks; done += chunkBlocks) {
      opts.signal?.throwIfAborted();
      const count = Math.min(chunkBlocks, totalBlocks - done);
      await this.ctx.runner.run([
        "dd",
        `if=${src}`,
        `of=${dst}`,
        `bs=${this.cfg.copyBlockSize}`,
        `count=${count}`,
        `skip=${fromZero ? 0 : done}`,
        `seek=${done}`,
        ...(fromZero ? [] : ["iflag=direct"]),
        "oflag=direct",
        `conv=${conv}`,
        "status=none",
      ], { root: this.cfg.root });
      opts.progress?.(Math.min(sizeBytes, (done + count) * bs), sizeBytes);
    }
  }

  async extendVolume(volume: VolumeRecord, newSizeGiB: number): Promise<void> {
    const lv = names.volume(volume.id);
    const info = await this.lvm.lv(this.vg, lv);
    if (!info) throw new NotFoundError("volume", volume.id, { backend: this.ctx.backendName });
    // A thick origin with snapshots must be inactive to be extended (Cinder does the same).
    const deactivate = /^[oO]/.test(info.attr) && info.attr[4] === "a";
    if (deactivate) await this.lvm.run(["lvchange", "-a", "n", `${this.vg}/${lv}`]);
    try {
      if (info.size < newSizeGiB * GiB) await this.lvm.run(["lvextend", "-L", `${newSizeGiB}g`, `${this.vg}/${lv}`]);
    } finally {
      if (deactivate) await this.lvm.activate(this.vg, lv);
    }
    if (this.ctx.target) await this.ctx.target.extendExport({ ...this.source(volume), sizeBytes: newSizeGiB * GiB });
  }

  async createSnapshot(snapshot: SnapshotRecord, volume: VolumeRecord): Promise<ModelUpdate | void> {
    const src = names.volume(volume.id);
    const origin = await this.lvm.lv(this.vg, src);
    if (!origin) throw new NotFoundError("volume", volume.id, { backend: this.ctx.backendName });
    await this.snapshotLv(names.snapshot(snapshot.id), src, origin.size);
  }

  private async snapshotLv(name: string, origin: string, originBytes: number): Promise<void> {
    const argv = ["lvcreate", "--name", name, "--snapshot", "--addtag", OWNER_TAG, `${this.vg}/${origin}`];
    // COW snapshots need space for every block that may change: the origin's size (Cinder's choice).
    if (!this.thin) argv.push("-L", `${Math.ceil(originBytes / MiB)}m`, "--chunksize", this.cfg.snapshotChunkSize.toLowerCase());
    try {
      await this.lvm.run(argv);
    } catch (e) {
      if (!(await this.lvm.lv(this.vg, name))) throw e;
    }
  }

  async deleteSnapshot(snapshot: SnapshotRecord, _volume: VolumeRecord): Promise<void> {
    const lv = names.snapshot(snapshot.id);
    const info = await this.lvm.lv(this.vg, lv);
    if (!info) return;
    await this.removeCowSnapshot(lv, info);
  }

  /**
   * Remove a thick snapshot, wiping what its COW store holds first (volumeClear): the origin's old blocks, i.e.
   * user data, on extents the VG hands out again. dm-snapshot allocates exception chunks one after the other, so
   * only the used prefix (LVM's data_percent of the COW size, plus a margin for its rounding and the metadata
   * chunks) can hold data: a snapshot of an idle volume costs a 1 MiB wipe, not a wipe of its full size.
   */
  private async removeCowSnapshot(lv: string, info: LvInfo): Promise<void> {
    if (!this.thin && this.cfg.volumeClear === "zero") {
      // The COW device holds the changed blocks; LVM names it <vg>-<lv>-cow with '-' doubled inside names.
      const cow = `/dev/mapper/${this.vg.replace(/-/g, "--")}-${lv.replace(/-/g, "--")}-cow`;
      const used = info.dataPercent === undefined ? info.size : Math.min(info.size, Math.ceil((info.size * (info.dataPercent + 0.01)) / 100) + MiB);
      await this.lvm.activate(this.vg, lv, { ignoreSkip: true }).catch(() => undefined);
      await this.wipe(cow, used).catch((e) => this.log.warn("could not wipe snapshot COW", { lv, error: e }));
    }
    await this.lvm.remove(this.vg, lv);
  }

  /** Thin: a thin snapshot of the source (instant, shares blocks). Thick: new LV + dd, with progress. */
  private async copyFrom(srcLv: string, srcBytes: number, volume: VolumeRecord, opts: OperationOptions): Promise<void> {
    const dst = names.volume(volume.id);
    if (this.thin) {
      await this.snapshotLv(dst, srcLv, srcBytes);
      // Thin snapshots carry the activation-skip flag: clear it so the new volume activates like any other.
      // (-K and -k cannot be combined in one lvchange: LVM 2.03 refuses it.)
      await this.lvm.activate(this.vg, dst, { clearSkip: true });
      const info = await this.lvm.lv(this.vg, dst);
      if (info && info.size < volume.size * GiB) await this.lvm.run(["lvextend", "-L", `${volume.size}g`, `${this.vg}/${dst}`]);
      opts.progress?.(srcBytes, srcBytes);
      return;
    }
    await this.createLv(dst, volume.size);
    try {
      await this.lvm.activate(this.vg, srcLv, { ignoreSkip: true });
      await this.copy(this.devicePath(srcLv), this.devicePath(dst), srcBytes, opts);
    } catch (e) {
      await this.lvm.remove(this.vg, dst).catch(() => undefined);
      throw e;
    }
  }

  async createVolumeFromSnapshot(volume: VolumeRecord, snapshot: SnapshotRecord, opts: OperationOptions = {}): Promise<ModelUpdate | void> {
    const snap = names.snapshot(snapshot.id);
    const info = await this.lvm.lv(this.vg, snap);
    if (!info) throw new NotFoundError("snapshot", snapshot.id, { backend: this.ctx.backendName });
    await this.copyFrom(snap, snapshot.volume_size * GiB, volume, opts);
  }

  async createClonedVolume(volume: VolumeRecord, source: VolumeRecord, opts: OperationOptions = {}): Promise<ModelUpdate | void> {
    const src = names.volume(source.id);
    const info = await this.lvm.lv(this.vg, src);
    if (!info) throw new NotFoundError("volume", source.id, { backend: this.ctx.backendName });
    if (this.thin) return this.copyFrom(src, info.size, volume, opts);
    // Thick: copy from a temporary COW snapshot so the source stays usable (and consistent) meanwhile.
    const temp = names.cloneSnap(volume.id);
    await this.snapshotLv(temp, src, info.size);
    try {
      await this.copyFrom(temp, info.size, volume, opts);
    } finally {
      // Writes to the source during the copy put its old blocks in the temporary COW: wiped like any snapshot's.
      const tempInfo = await this.lvm.lv(this.vg, temp);
      if (tempInfo) await this.removeCowSnapshot(temp, tempInfo);
    }
  }

  async createExport(volume: VolumeRecord, connector: ConnectorProps): Promise<ModelUpdate | void> {
    const lv = names.volume(volume.id);
    await this.lvm.activate(this.vg, lv, { ignoreSkip: true });
    return this.target.createExport(this.source(volume), connector);
  }

  initializeConnection(volume: VolumeRecord, connector: ConnectorProps): Promise<ConnectionInfo> {
    return this.target.initializeConnection(this.source(volume), connector);
  }

  terminateConnection(volume: VolumeRecord, connector: ConnectorProps | undefined): Promise<void> {
    return this.target.terminateConnection(this.source(volume), connector);
  }

  removeExport(volume: VolumeRecord): Promise<void> {
    return this.target.removeExport(this.source(volume));
  }

  validateConnector(connector: ConnectorProps): void {
    this.target.validateConnector(connector);
  }

  async close(): Promise<void> {
    await this.ctx.target?.close?.();
  }
}
