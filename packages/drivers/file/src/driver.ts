import { constants } from "node:fs";
import { access, chmod, link, mkdir, open, readdir, rm, stat, statfs, truncate, unlink } from "node:fs/promises";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import {
  AlreadyExistsError,
  BackendError,
  ConfigError,
  GiB,
  InvalidArgumentError,
  NotFoundError,
  UnsupportedError,
  isStorageError,
  type BackendPresence,
  type BackendStats,
  type ConnectionInfo,
  type ConnectorProps,
  type DriverContext,
  type ExportSource,
  type ModelUpdate,
  type OperationOptions,
  type SnapshotRecord,
  type SupportsInventory,
  type SupportsLocalPath,
  type VolumeDriver,
  type VolumeRecord,
} from "@cinderts/core";
import type { FileDriverOptions } from "./config.js";
import { isNoReflink, probeReflink, reflinkCopy, sparseCopyInProcess, sparseCopyWithCp } from "./copy.js";
import { parseManaged, partialFile, snapshotFile, volumeFile } from "./names.js";

const VOLUME_MODE = 0o600;
/** Snapshots are never written after they are taken; the mode says so to anyone looking. */
const SNAPSHOT_MODE = 0o400;

const round2 = (n: number) => Math.round(n * 100) / 100;

async function statOrUndefined(path: string) {
  try {
    return await stat(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
}

/** How a copy was made, for the log line and metadata. */
export type CopyMode = "reflink" | "copy";

/**
 * Volumes as sparse raw image files `volume-<id>` in one directory. Snapshots are read-only copies
 * `snapshot-<id>`; clones and volumes from snapshots are reflinks where the filesystem supports FICLONE
 * (btrfs, xfs with reflink=1) and sparse-aware copies elsewhere. Every copy is written to a `.partial-`
 * name and published with link(2) at the end, which also refuses to overwrite an existing volume.
 */
export class FileDriver implements VolumeDriver, SupportsInventory, SupportsLocalPath {
  readonly dir: string;
  /** Known after setup(): whether this directory's filesystem does FICLONE. */
  reflinkSupported: boolean | undefined;

  constructor(
    readonly options: FileDriverOptions,
    private readonly ctx: DriverContext,
    private readonly version: string,
  ) {
    // Relative paths are relative to the manifest's directory (as `path: ./volumes` in a manifest means).
    this.dir = resolve(ctx.baseDir ?? process.cwd(), options.path);
  }

  // ───────────── paths ─────────────

  volumePath(id: string): string {
    return join(this.dir, volumeFile(id));
  }
  snapshotPath(id: string): string {
    return join(this.dir, snapshotFile(id));
  }
  localPath(volume: VolumeRecord): string {
    return this.volumePath(volume.id);
  }

  // ───────────── setup and stats ─────────────

  async setup(): Promise<void> {
    try {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      const st = await stat(this.dir);
      if (!st.isDirectory()) throw new ConfigError(`path ${this.dir} is not a directory`);
      await access(this.dir, constants.R_OK | constants.W_OK | constants.X_OK);
    } catch (e) {
      if (isStorageError(e)) throw e;
      throw new ConfigError(`path ${this.dir} cannot hold volumes: ${(e as Error).message}`, { cause: e });
    }
    if (this.options.copyMethod === "cp" && this.ctx.runner.name !== "local") {
      throw new ConfigError(
        `driver-file copies local files with cp, but this backend's runner is ${this.ctx.runner.name}; use the local runner (or copyMethod: node)`,
      );
    }
    this.reflinkSupported = this.options.reflink === "never" ? false : await probeReflink(this.dir);
    if (this.options.reflink === "always" && !this.reflinkSupported) {
      throw new ConfigError(
        `reflink: always, but the filesystem of ${this.dir} does not support reflinks (FICLONE); use btrfs or xfs with reflink=1, or set reflink: auto`,
      );
    }
    this.ctx.logger.info("file backend ready", { path: this.dir, reflink: this.reflinkSupported, copyMethod: this.options.copyMethod });
    await this.ctx.target?.setup();
  }

  async getStats(): Promise<BackendStats> {
    const fs = await statfs(this.dir).catch((e: unknown) => {
      throw new BackendError(`cannot read the filesystem of ${this.dir}: ${(e as Error).message}`, { cause: e });
    });
    let provisioned = 0;
    let allocated = 0;
    for (const name of await readdir(this.dir)) {
      const m = parseManaged(name);
      if (!m) continue;
      const st = await statOrUndefined(join(this.dir, name));
      if (!st) continue;
      allocated += st.blocks * 512;
      if (m.kind === "volume" && !m.partial) provisioned += st.size;
    }
    const backend = this.ctx.backendName;
    return {
      volume_backend_name: backend,
      vendor_name: "cinderts",
      driver_version: this.version,
      storage_protocol: this.ctx.target ? this.ctx.target.protocol : "file",
      pools: [
        {
          pool_name: backend,
          total_capacity_gb: round2((fs.blocks * fs.bsize) / GiB),
          free_capacity_gb: round2((fs.bavail * fs.bsize) / GiB),
          provisioned_capacity_gb: round2(provisioned / GiB),
          allocated_capacity_gb: round2(allocated / GiB),
          thin_provisioning_support: true,
          thick_provisioning_support: false,
          reserved_percentage: 0,
          multiattach: false,
          reflink_support: this.reflinkSupported ?? null,
        },
      ],
    };
  }

  // ───────────── volumes ─────────────

  async createVolume(volume: VolumeRecord): Promise<ModelUpdate | void> {
    const final = this.volumePath(volume.id);
    let fh;
    try {
      // "wx": never opens an existing volume. A crash before the truncate leaves a file shorter than the
      // record, which inspectVolume reports as incomplete, so no partial name is needed here.
      fh = await open(final, "wx", VOLUME_MODE);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EEXIST") throw new AlreadyExistsError("volume", volume.id, { backend: this.ctx.backendName, data: { path: final } });
      throw this.fsError(e, `create volume ${volume.id}`);
    }
    try {
      // A sparse file: no block is allocated until written.
      await fh.truncate(volume.size * GiB);
      await fh.close();
    } catch (e) {
      await fh.close().catch(() => undefined);
      await rm(final, { force: true });
      throw this.fsError(e, `create volume ${volume.id}`);
    }
  }

  async deleteVolume(volume: VolumeRecord): Promise<void> {
    const final = this.volumePath(volume.id);
    try {
      await rm(final, { force: true });
      await rm(join(this.dir, partialFile(volumeFile(volume.id))), { force: true });
    } catch (e) {
      throw this.fsError(e, `delete volume ${volume.id}`);
    }
  }

  async extendVolume(volume: VolumeRecord, newSizeGiB: number): Promise<void> {
    const path = this.volumePath(volume.id);
    const st = await statOrUndefined(path);
    if (!st) throw new NotFoundError("volume", volume.id, { backend: this.ctx.backendName, data: { path } });
    const bytes = newSizeGiB * GiB;
    try {
      // Never shrink: a retried extend after a crash finds the file already grown.
      if (st.size < bytes) await truncate(path, bytes);
    } catch (e) {
      throw this.fsError(e, `extend volume ${volume.id}`);
    }
    if (this.ctx.target) await this.ctx.target.extendExport(this.exportSource({ ...volume, size: newSizeGiB }));
  }

  async createClonedVolume(volume: VolumeRecord, source: VolumeRecord, opts: OperationOptions = {}): Promise<ModelUpdate | void> {
    const src = this.volumePath(source.id);
    if (!(await statOrUndefined(src))) throw new NotFoundError("volume", source.id, { backend: this.ctx.backendName, data: { path: src } });
    await this.copyTo(src, this.volumePath(volume.id), "volume", volume.id, volume.size * GiB, VOLUME_MODE, opts);
  }

  async createVolumeFromSnapshot(volume: VolumeRecord, snapshot: SnapshotRecord, opts: OperationOptions = {}): Promise<ModelUpdate | void> {
    const src = this.snapshotPath(snapshot.id);
    if (!(await statOrUndefined(src))) {
      throw new NotFoundError("snapshot", snapshot.id, { backend: this.ctx.backendName, data: { path: src } });
    }
    await this.copyTo(src, this.volumePath(volume.id), "volume", volume.id, volume.size * GiB, VOLUME_MODE, opts);
  }

  // ───────────── snapshots ─────────────

  async createSnapshot(snapshot: SnapshotRecord, volume: VolumeRecord): Promise<ModelUpdate | void> {
    const src = this.volumePath(volume.id);
    if (!(await statOrUndefined(src))) throw new NotFoundError("volume", volume.id, { backend: this.ctx.backendName, data: { path: src } });
    await this.copyTo(src, this.snapshotPath(snapshot.id), "snapshot", snapshot.id, 0, SNAPSHOT_MODE, {});
  }

  async deleteSnapshot(snapshot: SnapshotRecord): Promise<void> {
    try {
      await rm(this.snapshotPath(snapshot.id), { force: true });
      await rm(join(this.dir, partialFile(snapshotFile(snapshot.id))), { force: true });
    } catch (e) {
      throw this.fsError(e, `delete snapshot ${snapshot.id}`);
    }
  }

  // ───────────── exports and connections ─────────────

  private exportSource(volume: VolumeRecord): ExportSource {
    return { volume, path: this.volumePath(volume.id), sizeBytes: volume.size * GiB };
  }

  async createExport(volume: VolumeRecord, connector: ConnectorProps): Promise<ModelUpdate | void> {
    await this.mustExist(volume);
    if (this.ctx.target) return this.ctx.target.createExport(this.exportSource(volume), connector);
  }

  async initializeConnection(volume: VolumeRecord, connector: ConnectorProps): Promise<ConnectionInfo> {
    await this.mustExist(volume);
    if (this.ctx.target) return this.ctx.target.initializeConnection(this.exportSource(volume), connector);
    return {
      driver_volume_type: "file",
      data: { path: this.volumePath(volume.id), format: "raw", volume_id: volume.id, host: this.hostName() },
    };
  }

  async terminateConnection(volume: VolumeRecord, connector: ConnectorProps | undefined): Promise<void> {
    if (this.ctx.target) await this.ctx.target.terminateConnection(this.exportSource(volume), connector);
  }

  async removeExport(volume: VolumeRecord): Promise<void> {
    if (this.ctx.target) await this.ctx.target.removeExport(this.exportSource(volume));
  }

  validateConnector(connector: ConnectorProps): void {
    if (this.ctx.target) {
      this.ctx.target.validateConnector(connector);
      return;
    }
    const here = this.localHostNames();
    if (!here.includes(connector.host)) {
      throw new InvalidArgumentError(
        `backend ${this.ctx.backendName} serves volumes as local files on host ${this.hostName()}; host ${JSON.stringify(connector.host)} cannot open them (attach on ${this.hostName()}, or configure an iSCSI target for this backend)`,
        { issues: [{ path: "host", message: `must be this host (${here.join(" or ")}) for file connections` }] },
      );
    }
  }

  private hostName(): string {
    return (this.ctx as DriverContext & { nodeId?: string }).nodeId ?? hostname();
  }

  /** Names under which a connector may call this host: the hostname, and the node id when core passes it. */
  private localHostNames(): string[] {
    const nodeId = (this.ctx as DriverContext & { nodeId?: string }).nodeId;
    return [...new Set([hostname(), ...(nodeId ? [nodeId] : [])])];
  }

  // ───────────── inventory (reconcile) ─────────────

  async inspectVolume(volume: VolumeRecord): Promise<BackendPresence> {
    const st = await statOrUndefined(this.volumePath(volume.id));
    if (st?.isFile() && st.size >= volume.size * GiB) return "present";
    if (st || (await statOrUndefined(join(this.dir, partialFile(volumeFile(volume.id)))))) return "incomplete";
    return "absent";
  }

  async inspectSnapshot(snapshot: SnapshotRecord): Promise<BackendPresence> {
    const st = await statOrUndefined(this.snapshotPath(snapshot.id));
    if (st?.isFile() && st.size >= snapshot.volume_size * GiB) return "present";
    if (st || (await statOrUndefined(join(this.dir, partialFile(snapshotFile(snapshot.id)))))) return "incomplete";
    return "absent";
  }

  /** `volume-*` files, and partial copies a crash left (their id, without a size). */
  async listManagedVolumes(): Promise<{ id: string; sizeGiB?: number }[]> {
    const found = new Map<string, { id: string; sizeGiB?: number }>();
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw this.fsError(e, "list volumes");
    }
    for (const name of names) {
      const m = parseManaged(name);
      if (!m || m.kind !== "volume") continue;
      if (m.partial) {
        if (!found.has(m.id)) found.set(m.id, { id: m.id });
        continue;
      }
      const st = await statOrUndefined(join(this.dir, name));
      if (st) found.set(m.id, { id: m.id, sizeGiB: Math.max(1, Math.ceil(st.size / GiB)) });
    }
    return [...found.values()];
  }

  // ───────────── internals ─────────────

  /**
   * Copies src to the final name of a volume or snapshot: reflink when possible (and allowed), else a
   * sparse-aware copy, into a `.partial-` file that is grown to `sizeBytes` (when larger), given its mode
   * and then published.
   */
  async copyTo(
    src: string,
    final: string,
    kind: "volume" | "snapshot",
    id: string,
    sizeBytes: number,
    mode: number,
    opts: OperationOptions,
  ): Promise<CopyMode> {
    await this.refuseExisting(final, kind, id);
    const tmp = join(this.dir, partialFile(kind === "volume" ? volumeFile(id) : snapshotFile(id)));
    const started = performance.now();
    let how: CopyMode = "copy";
    try {
      await rm(tmp, { force: true });
      how = await this.copyData(src, tmp, opts);
      if (sizeBytes > 0 && (await stat(tmp)).size < sizeBytes) await truncate(tmp, sizeBytes);
      await chmod(tmp, mode);
      await this.publish(tmp, final, kind, id);
    } catch (e) {
      await rm(tmp, { force: true }).catch(() => undefined);
      throw this.fsError(e, `copy to ${kind} ${id}`);
    }
    this.ctx.logger.debug("copied", { kind, id, how, ms: Math.round(performance.now() - started) });
    return how;
  }

  private async copyData(src: string, dst: string, opts: OperationOptions): Promise<CopyMode> {
    if (this.options.reflink !== "never" && this.reflinkSupported !== false) {
      try {
        await reflinkCopy(src, dst);
        const size = (await stat(src)).size;
        opts.progress?.(size, size);
        return "reflink";
      } catch (e) {
        if (!isNoReflink(e)) throw e;
        if (this.options.reflink === "always") {
          throw new UnsupportedError(`reflink: always, but ${src} could not be reflinked: ${(e as Error).message}`, { cause: e });
        }
        await rm(dst, { force: true });
      }
    }
    if (this.options.copyMethod === "node") {
      await sparseCopyInProcess(src, dst, this.options.copyChunkMiB * 1024 * 1024, opts);
    } else {
      await sparseCopyWithCp(this.ctx.runner, src, dst, opts);
    }
    return "copy";
  }

  /**
   * link(2) fails with EEXIST instead of replacing, so publishing can never clobber a volume that appeared
   * meanwhile; the partial name is removed afterwards (a crash in between leaves a harmless leftover).
   */
  private async publish(tmp: string, final: string, kind: "volume" | "snapshot", id: string): Promise<void> {
    try {
      await link(tmp, final);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EEXIST") throw new AlreadyExistsError(kind, id, { backend: this.ctx.backendName, data: { path: final } });
      throw e;
    }
    await unlink(tmp);
  }

  private async refuseExisting(final: string, kind: "volume" | "snapshot", id: string): Promise<void> {
    if (await statOrUndefined(final)) throw new AlreadyExistsError(kind, id, { backend: this.ctx.backendName, data: { path: final } });
  }

  private async mustExist(volume: VolumeRecord): Promise<void> {
    const path = this.volumePath(volume.id);
    if (!(await statOrUndefined(path))) throw new NotFoundError("volume", volume.id, { backend: this.ctx.backendName, data: { path } });
  }

  private fsError(e: unknown, what: string): Error {
    if (isStorageError(e)) return e;
    const err = e as NodeJS.ErrnoException;
    if (err?.name === "AbortError") return err;
    const hint = err?.code === "ENOSPC" ? ` (no space left in ${this.dir})` : "";
    return new BackendError(`${what} failed: ${err?.message ?? String(e)}${hint}`, {
      backend: this.ctx.backendName,
      cause: e,
      data: err?.code ? { errno: err.code } : undefined,
    });
  }
}
