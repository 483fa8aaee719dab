import {
  AlreadyExistsError,
  BackendError,
  BusyError,
  ConfigError,
  GiB,
  HasDependentsError,
  InvalidArgumentError,
  NotFoundError,
  TimeoutError,
  isStorageError,
  type BackendPresence,
  type BackendStats,
  type ConnectionInfo,
  type ConnectorProps,
  type DriverContext,
  type ModelUpdate,
  type PoolStats,
  type ResourceKind,
  type ResourceRef,
  type SnapshotRecord,
  type SupportsInventory,
  type VolumeDriver,
  type VolumeRecord,
} from "@cinderts/core";
import {
  EBUSY,
  EEXIST,
  EINVAL,
  ENOENT,
  ENOTEMPTY,
  ETIMEDOUT,
  RbdCallError,
  isErrno,
  type ChildRef,
  type ClusterInfo,
  type ImageInfo,
  type ParentRef,
  type RbdClient,
} from "./client.js";
import type { RbdConfigParsed } from "./config.js";
import { CLONE_SNAP_SUFFIX, DELETED_SUFFIX, OWNER_KEY, cloneSnapName, snapshotName, volumeIdOf, volumeImage } from "./names.js";
import { ImageShapes, type ImageShape } from "./shapes.js";

export const DRIVER_VERSION = "0.1.0";

/** Monitors rarely move; `ceph mon dump` is ~0.7 s as a command, so connection info reuses it for a while. */
const CLUSTER_INFO_TTL_MS = 30_000;

const roundGiB = (bytes: number): number => Math.round((bytes / GiB) * 100) / 100;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Run `fn` over `items` with at most `limit` running at once. */
async function eachLimited<T>(items: readonly T[], limit: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  const errors: unknown[] = [];
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (e) {
        errors.push(e);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (errors.length) throw errors[0];
}

export type ClientFactory = (cfg: RbdConfigParsed, ctx: DriverContext) => Promise<RbdClient>;

/**
 * Ceph RBD volumes with the behaviour of Cinder's RBD driver (see the package README): thin images named
 * `volume-<id>`, protected snapshots, COW clones with a depth limit, `.deleted` hidden parents.
 */
export class RbdDriver implements VolumeDriver, SupportsInventory {
  private client?: RbdClient;
  private cluster?: { info: ClusterInfo; at: number };
  private keyringText?: string;
  private readonly order: number;
  private readonly pool: string;
  /** Images of this pool by name; see shapes.ts for why a remembered shape is safe to use. */
  private readonly shapes = new ImageShapes();

  constructor(
    private readonly cfg: RbdConfigParsed,
    private readonly ctx: DriverContext,
    private readonly makeClient: ClientFactory,
  ) {
    this.order = Math.log2(cfg.chunkSizeMiB * 1024 * 1024);
    this.pool = cfg.pool;
  }

  /** Which transport talks to Ceph ("cli" or "native"); known after setup(). */
  get transport(): string | undefined {
    return this.client?.transport;
  }

  private get c(): RbdClient {
    if (!this.client) throw new BackendError("RBD driver used before setup()", { backend: this.ctx.backendName });
    return this.client;
  }

  // ───────────────────────────── errors ─────────────────────────────

  private fail(e: unknown, what: string, resource?: ResourceRef): never {
    if (isStorageError(e)) throw e;
    const details = { backend: this.ctx.backendName, driver: "rbd", cause: e, ...(resource ? { resource } : {}) };
    if (e instanceof RbdCallError) {
      switch (e.errno) {
        case ENOENT:
          throw new NotFoundError(resource?.kind ?? "image", resource?.id ?? what, details);
        case EEXIST:
          throw new AlreadyExistsError(resource?.kind ?? "image", resource?.id ?? what, details);
        case EBUSY:
          throw new BusyError(`${what}: ${resource ? `${resource.kind} ${resource.id} ` : ""}is busy`, details);
        case ETIMEDOUT:
          throw new TimeoutError(`${what}: Ceph did not answer in time`, details);
      }
      throw new BackendError(`${what} failed: ${e.message}`, details);
    }
    throw new BackendError(`${what} failed: ${e instanceof Error ? e.message : String(e)}`, details);
  }

  private async call<T>(what: string, resource: ResourceRef | undefined, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      this.fail(e, what, resource);
    }
  }

  // ───────────────────────────── setup ─────────────────────────────

  async setup(): Promise<void> {
    this.client ??= await this.makeClient(this.cfg, this.ctx);
    if (this.cfg.connectionKeyring) {
      const path = this.cfg.keyring ?? `/etc/ceph/${this.cfg.cluster}.client.${this.cfg.user}.keyring`;
      try {
        const r = await this.ctx.runner.run(["cat", "--", path], { timeoutMs: 30_000 });
        this.keyringText = r.stdout;
      } catch (e) {
        throw new ConfigError(`connectionKeyring is set but the keyring ${path} cannot be read`, { cause: e, backend: this.ctx.backendName });
      }
      if (!this.keyringText.trim()) throw new ConfigError(`No keyring data found in ${path}`, { backend: this.ctx.backendName });
    }
    try {
      await this.c.listNames(this.pool);
    } catch (e) {
      if (isErrno(e, ENOENT)) {
        throw new ConfigError(`pool ${this.pool} does not exist in Ceph cluster ${this.cfg.cluster}`, { cause: e, backend: this.ctx.backendName });
      }
      this.fail(e, "Error connecting to ceph cluster", { kind: "backend", id: this.ctx.backendName });
    }
    this.ctx.logger.debug("rbd driver ready", { transport: this.c.transport, pool: this.pool });
  }

  async close(): Promise<void> {
    await this.client?.close();
    this.client = undefined;
  }

  private async clusterInfo(refresh = false): Promise<ClusterInfo> {
    if (!refresh && this.cluster && Date.now() - this.cluster.at < CLUSTER_INFO_TTL_MS) return this.cluster.info;
    const info = await this.call("mon dump", { kind: "backend", id: this.ctx.backendName }, () => this.c.clusterInfo());
    this.cluster = { info, at: Date.now() };
    return info;
  }

  // ───────────────────────────── stats ─────────────────────────────

  async getStats(opts: { refresh?: boolean } = {}): Promise<BackendStats> {
    let total: number | "unknown" = "unknown";
    let free: number | "unknown" = "unknown";
    let provisioned: number | undefined;
    let state = "down";
    let fsid = "";
    try {
      const [u, images, cl] = await Promise.all([
        this.c.poolUsage(this.pool),
        this.c.list(this.pool),
        this.clusterInfo(opts.refresh ?? false),
      ]);
      // Cinder's _update_volume_stats: a quota caps both; total is "dynamic" (free + used) by default.
      let freeBytes = u.maxAvail;
      if (u.quotaMaxBytes > 0) freeBytes = Math.max(Math.min(u.quotaMaxBytes - u.used, u.maxAvail), 0);
      free = roundGiB(freeBytes);
      total = roundGiB(freeBytes + u.used);
      provisioned = Math.ceil(images.reduce((s, i) => s + i.size, 0) / GiB);
      fsid = cl.fsid;
      state = "up";
    } catch (e) {
      this.ctx.logger.warn("could not read pool stats", { error: e instanceof Error ? e.message : String(e) });
    }
    const pool: PoolStats = {
      pool_name: this.pool,
      total_capacity_gb: total,
      free_capacity_gb: free,
      ...(provisioned !== undefined ? { provisioned_capacity_gb: provisioned } : {}),
      thin_provisioning_support: true,
      thick_provisioning_support: false,
      max_over_subscription_ratio: this.cfg.maxOverSubscriptionRatio,
      reserved_percentage: this.cfg.reservedPercentage,
      multiattach: true,
      location_info: `${this.cfg.cluster}:${this.cfg.conf ?? ""}:${fsid}:${this.cfg.user}:${this.pool}`,
      backend_state: state,
    };
    return {
      volume_backend_name: this.ctx.backendName,
      vendor_name: "Open Source",
      driver_version: DRIVER_VERSION,
      storage_protocol: "ceph",
      total_capacity_gb: total,
      free_capacity_gb: free,
      backend_state: state,
      transport: this.client?.transport,
      pools: [pool],
    };
  }

  // ───────────────────────────── volumes ─────────────────────────────

  private async tagOwner(image: string, volumeId: string): Promise<void> {
    await this.c.metaSet(this.pool, image, OWNER_KEY, volumeId);
  }

  /** Remove an image we just made because a later step failed; never hides the original error. */
  private async discard(image: string, reason: unknown): Promise<void> {
    try {
      await this.c.remove(this.pool, image);
    } catch (e) {
      if (!isErrno(e, ENOENT)) {
        this.ctx.logger.warn("cleanup of a half-made image failed", { image, error: String(e), reason: String(reason) });
      }
    }
  }

  async createVolume(volume: VolumeRecord): Promise<ModelUpdate | void> {
    const image = volumeImage(volume.id);
    const ref: ResourceRef = { kind: "volume", id: volume.id };
    try {
      await this.c.create(this.pool, image, volume.size * GiB, { order: this.order });
    } catch (e) {
      // A retried create (crash after the image was made) finds its own image: that is success.
      if (isErrno(e, EEXIST) && (await this.ownerOf(image)) === volume.id) return;
      this.fail(e, "create volume", ref);
    }
    try {
      await this.tagOwner(image, volume.id);
    } catch (e) {
      await this.discard(image, e);
      this.fail(e, "tag volume", ref);
    }
    this.shapes.set(image, { order: this.order, depth: 0 });
  }

  private async ownerOf(image: string): Promise<string | undefined> {
    try {
      return await this.c.metaGet(this.pool, image, OWNER_KEY);
    } catch {
      return undefined;
    }
  }

  async extendVolume(volume: VolumeRecord, newSizeGiB: number): Promise<void> {
    await this.call("extend volume", { kind: "volume", id: volume.id }, () =>
      this.c.resize(this.pool, volumeImage(volume.id), newSizeGiB * GiB),
    );
  }

  async deleteVolume(volume: VolumeRecord): Promise<void> {
    const image = volumeImage(volume.id);
    const ref: ResourceRef = { kind: "volume", id: volume.id };
    const known = this.shapes.get(image);
    this.shapes.forget(image);
    // An image known to have no parent (made or flattened here) needs no `info` first: nothing above it to clean
    // up. A remove that finds snapshots (ENOTEMPTY) or watchers (EBUSY) takes the full path below.
    if (known?.depth === 0) {
      try {
        await this.c.remove(this.pool, image);
        return;
      } catch (e) {
        if (isErrno(e, ENOENT)) return;
        if (!isErrno(e, ENOTEMPTY) && !isErrno(e, EBUSY)) this.fail(e, "delete volume", ref);
      }
    }
    let info: ImageInfo;
    try {
      info = await this.c.info(this.pool, image);
    } catch (e) {
      if (isErrno(e, ENOENT)) {
        this.ctx.logger.info("volume no longer exists in backend", { volumeId: volume.id });
        return;
      }
      this.fail(e, "delete volume", ref);
    }

    if (info.snapshotCount > 0) {
      const snaps = await this.call("delete volume", ref, () => this.c.snapList(this.pool, image));
      let hasClones = false;
      for (const s of snaps.filter((x) => x.name.endsWith(CLONE_SNAP_SUFFIX))) {
        const kids = await this.childrenOf(image, s.name);
        if (kids.length > 0) hasClones = true;
        else await this.removeSnap(image, s.name); // a temp snapshot whose clone is gone already
      }
      // Cinder: a volume that is the source of COW clones is renamed and kept until its last clone goes.
      if (hasClones) {
        await this.call("delete volume", ref, () => this.c.rename(this.pool, image, image + DELETED_SUFFIX));
        this.ctx.logger.info("volume has clones: kept as hidden parent", { volumeId: volume.id, image: image + DELETED_SUFFIX });
        return;
      }
    }

    await this.removeImage(image, ref);
    if (info.parent) await this.cleanupParents(info.parent);
  }

  /** rbd rm, retrying while the image has watchers (an attach, a running qemu). */
  private async removeImage(image: string, ref: ResourceRef): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.c.remove(this.pool, image);
        return;
      } catch (e) {
        if (isErrno(e, ENOENT)) return;
        if (isErrno(e, ENOTEMPTY)) {
          const snaps = await this.call("delete volume", ref, () => this.c.snapList(this.pool, image));
          throw new HasDependentsError(
            `${ref.kind} ${ref.id} still has snapshots: ${snaps.map((s) => s.name).join(", ")}`,
            snaps.map((s) => ({ kind: "snapshot", id: s.name.replace(/^snapshot-/, "") })),
            { backend: this.ctx.backendName, resource: ref, cause: e },
          );
        }
        if (isErrno(e, EBUSY) && attempt < this.cfg.busyRetries) {
          this.ctx.logger.info("image busy, retrying delete", { image, attempt: attempt + 1 });
          await sleep(this.cfg.busyRetryIntervalSec * 1000);
          continue;
        }
        if (isErrno(e, EBUSY)) {
          throw new BusyError(`${ref.kind} ${ref.id} is busy: image ${this.pool}/${image} still has watchers (attached somewhere?)`, {
            backend: this.ctx.backendName,
            driver: "rbd",
            resource: ref,
            cause: e,
          });
        }
        this.fail(e, "delete volume", ref);
      }
    }
  }

  /**
   * After a clone is removed: drop the temporary `.clone_snap` it came from when nothing else uses it, and
   * remove a `.deleted` hidden parent once it has no snapshots left, walking up the chain (Cinder's
   * _delete_clone_parent_refs).
   */
  private async cleanupParents(parent: ParentRef): Promise<void> {
    let p: ParentRef | undefined = parent;
    while (p && p.pool === this.pool) {
      if (p.snapshot.endsWith(CLONE_SNAP_SUFFIX)) {
        if ((await this.childrenOf(p.image, p.snapshot)).length > 0) return;
        await this.removeSnap(p.image, p.snapshot);
      }
      if (!p.image.endsWith(DELETED_SUFFIX)) return;
      let info: ImageInfo;
      try {
        info = await this.c.info(this.pool, p.image);
      } catch (e) {
        if (isErrno(e, ENOENT)) return;
        throw e;
      }
      if (info.snapshotCount > 0) return;
      await this.removeImage(p.image, { kind: "image", id: `${this.pool}/${p.image}` });
      this.ctx.logger.info("removed hidden parent after its last clone", { image: p.image });
      p = info.parent;
    }
  }

  private async childrenOf(image: string, snap: string): Promise<ChildRef[]> {
    try {
      return await this.c.children(this.pool, image, snap);
    } catch (e) {
      if (isErrno(e, ENOENT)) return [];
      throw e;
    }
  }

  /** unprotect (if protected) + remove; gone already is fine. */
  private async removeSnap(image: string, snap: string): Promise<void> {
    try {
      await this.c.snapUnprotect(this.pool, image, snap);
    } catch (e) {
      if (isErrno(e, ENOENT)) return;
      if (!isErrno(e, EINVAL)) throw e; // EINVAL: not protected
    }
    try {
      await this.c.snapRemove(this.pool, image, snap);
    } catch (e) {
      if (!isErrno(e, ENOENT)) throw e;
    }
  }

  // ───────────────────────────── snapshots ─────────────────────────────

  async createSnapshot(snapshot: SnapshotRecord, volume: VolumeRecord): Promise<ModelUpdate | void> {
    const image = volumeImage(volume.id);
    const snap = snapshotName(snapshot.id);
    const ref: ResourceRef = { kind: "snapshot", id: snapshot.id };
    try {
      await this.c.snapCreate(this.pool, image, snap);
    } catch (e) {
      if (isErrno(e, ENOENT)) throw new NotFoundError("volume", volume.id, { backend: this.ctx.backendName, cause: e });
      if (!isErrno(e, EEXIST)) this.fail(e, "create snapshot", ref); // EEXIST: a retry; make sure it is protected
    }
    // Every snapshot is protected so that it can be cloned (format 1 clones need it).
    try {
      await this.c.snapProtect(this.pool, image, snap);
    } catch (e) {
      if (isErrno(e, EBUSY)) return; // already protected
      try {
        await this.c.snapRemove(this.pool, image, snap);
      } catch {
        // the original error is what matters
      }
      this.fail(e, "protect snapshot", ref);
    }
  }

  async deleteSnapshot(snapshot: SnapshotRecord, volume: VolumeRecord): Promise<void> {
    const image = volumeImage(volume.id);
    const snap = snapshotName(snapshot.id);
    const ref: ResourceRef = { kind: "snapshot", id: snapshot.id };
    for (let attempt = 0; ; attempt++) {
      const kids = await this.call("delete snapshot", ref, () => this.childrenOf(image, snap));
      if (kids.length > 0) {
        if (this.cfg.snapshotsWithDependents === "refuse") {
          throw new HasDependentsError(
            `snapshot ${snapshot.id} has ${kids.length} dependent volume(s): ${kids.map((k) => `${k.pool}/${k.image}`).join(", ")}`,
            kids.map((k) => this.childRef(k)),
            { backend: this.ctx.backendName, driver: "rbd", resource: ref },
          );
        }
        await this.flattenAll(kids, ref);
      }
      try {
        await this.c.snapUnprotect(this.pool, image, snap);
      } catch (e) {
        if (isErrno(e, ENOENT)) return; // image or snapshot gone already
        // EBUSY: a clone appeared after we listed them; flatten again (bounded)
        if (isErrno(e, EBUSY) && attempt < Math.max(this.cfg.busyRetries, 1)) continue;
        if (isErrno(e, EBUSY)) throw new BusyError(`snapshot ${snapshot.id} is busy: it still has clones`, { resource: ref, cause: e });
        if (!isErrno(e, EINVAL)) this.fail(e, "delete snapshot", ref);
      }
      try {
        await this.c.snapRemove(this.pool, image, snap);
      } catch (e) {
        if (!isErrno(e, ENOENT)) this.fail(e, "delete snapshot", ref);
      }
      return;
    }
  }

  private childRef(k: ChildRef): ResourceRef {
    const id = k.pool === this.pool ? volumeIdOf(k.image) : undefined;
    return id ? { kind: "volume", id } : { kind: "image" as ResourceKind, id: `${k.pool}/${k.image}` };
  }

  private async flattenAll(kids: ChildRef[], ref: ResourceRef): Promise<void> {
    this.ctx.logger.info("flattening clones of a snapshot before deleting it", { snapshotId: ref.id, clones: kids.length });
    await eachLimited(kids, this.cfg.concurrentFlattens, async (k) => {
      try {
        await this.c.flatten(k.pool, k.image);
        if (k.pool === this.pool) this.shapes.flattened(k.image);
      } catch (e) {
        if (!isErrno(e, ENOENT) && !isErrno(e, EINVAL)) this.fail(e, `flatten ${k.pool}/${k.image}`, ref); // EINVAL: not a clone any more
      }
    });
  }

  // ───────────────────────────── clones ─────────────────────────────

  /** Ancestors of an image (parents through any snapshot, `.deleted` ones included). */
  private async cloneDepth(info: ImageInfo): Promise<number> {
    let depth = 0;
    let p = info.parent;
    while (p && depth < 64) {
      depth++;
      if (p.pool !== this.pool) break;
      const known = this.shapes.get(p.image);
      if (known) return depth + known.depth;
      p = (await this.c.info(p.pool, p.image)).parent;
    }
    return depth;
  }

  /** Object order and clone depth of an image of this pool: remembered, or read from Ceph and remembered. */
  private async shapeOf(image: string): Promise<ImageShape> {
    const known = this.shapes.get(image);
    if (known) return known;
    const info = await this.c.info(this.pool, image);
    const shape = { order: info.order, depth: await this.cloneDepth(info) };
    this.shapes.set(image, shape);
    return shape;
  }

  async createVolumeFromSnapshot(volume: VolumeRecord, snapshot: SnapshotRecord): Promise<ModelUpdate | void> {
    const srcImage = volumeImage(snapshot.volume_id);
    const parent: ParentRef = { pool: this.pool, image: srcImage, snapshot: snapshotName(snapshot.id) };
    const image = volumeImage(volume.id);
    const ref: ResourceRef = { kind: "volume", id: volume.id };
    const src = await this.call("create volume from snapshot", { kind: "volume", id: snapshot.volume_id }, () => this.shapeOf(srcImage));
    const order = Math.max(src.order, this.order);
    try {
      await this.c.clone(parent, this.pool, image, { order });
    } catch (e) {
      if (isErrno(e, ENOENT)) throw new NotFoundError("snapshot", snapshot.id, { backend: this.ctx.backendName, cause: e });
      this.fail(e, "create volume from snapshot", ref);
    }
    try {
      await this.tagOwner(image, volume.id);
      if (volume.size > snapshot.volume_size) await this.c.resize(this.pool, image, volume.size * GiB);
      // Depth of the new image = ancestors of the source + 1; past the limit the chain is cut here.
      const flatten = this.cfg.flattenVolumeFromSnapshot || src.depth + 1 > this.cfg.maxCloneDepth;
      if (flatten) await this.c.flatten(this.pool, image);
      this.shapes.set(image, { order, depth: flatten ? 0 : src.depth + 1 });
    } catch (e) {
      await this.discard(image, e);
      this.fail(e, "create volume from snapshot", ref);
    }
  }

  async createClonedVolume(volume: VolumeRecord, source: VolumeRecord): Promise<ModelUpdate | void> {
    const srcImage = volumeImage(source.id);
    const image = volumeImage(volume.id);
    const ref: ResourceRef = { kind: "volume", id: volume.id };
    const srcRef: ResourceRef = { kind: "volume", id: source.id };

    if (this.cfg.maxCloneDepth <= 0) {
      // full copy; `rbd cp` copies image metadata too, so the owner tag is rewritten below
      await this.call("clone volume", srcRef, () => this.c.copy(this.pool, srcImage, image));
      try {
        await this.tagOwner(image, volume.id);
        if (volume.size > source.size) await this.c.resize(this.pool, image, volume.size * GiB);
      } catch (e) {
        await this.discard(image, e);
        this.fail(e, "clone volume", ref);
      }
      return;
    }

    const src = await this.call("clone volume", srcRef, () => this.shapeOf(srcImage));
    const snap = cloneSnapName(volume.id);
    const parent: ParentRef = { pool: this.pool, image: srcImage, snapshot: snap };
    await this.call("clone volume", srcRef, async () => {
      try {
        await this.c.snapCreate(this.pool, srcImage, snap);
      } catch (e) {
        if (!isErrno(e, EEXIST)) throw e;
      }
      try {
        await this.c.snapProtect(this.pool, srcImage, snap);
      } catch (e) {
        if (!isErrno(e, EBUSY)) throw e; // EBUSY: already protected (a retry)
      }
    });
    const order = Math.max(src.order, this.order);
    try {
      await this.c.clone(parent, this.pool, image, { order });
    } catch (e) {
      await this.removeSnap(srcImage, snap).catch(() => undefined);
      this.fail(e, "clone volume", ref);
    }
    try {
      await this.tagOwner(image, volume.id);
      const flatten = src.depth + 1 > this.cfg.maxCloneDepth;
      if (flatten) {
        await this.c.flatten(this.pool, image);
        await this.removeSnap(srcImage, snap);
      }
      if (volume.size > source.size) await this.c.resize(this.pool, image, volume.size * GiB);
      this.shapes.set(image, { order, depth: flatten ? 0 : src.depth + 1 });
    } catch (e) {
      await this.discard(image, e);
      await this.removeSnap(srcImage, snap).catch(() => undefined);
      this.fail(e, "clone volume", ref);
    }
  }

  // ───────────────────────────── connections ─────────────────────────────

  async createExport(): Promise<ModelUpdate | void> {
    // Ceph has no export objects: access is cephx.
  }

  async removeExport(): Promise<void> {}

  async terminateConnection(): Promise<void> {}

  validateConnector(connector: ConnectorProps): void {
    if (!connector.host) throw new InvalidArgumentError("connector has no host", { data: { missing: "host" } });
  }

  async initializeConnection(volume: VolumeRecord, _connector: ConnectorProps): Promise<ConnectionInfo> {
    const cl = await this.clusterInfo();
    const data: Record<string, unknown> = {
      name: `${this.pool}/${volumeImage(volume.id)}`,
      hosts: cl.mons.map((m) => m.host),
      ports: cl.mons.map((m) => m.port),
      cluster_name: this.cfg.cluster,
      auth_enabled: true,
      auth_username: this.cfg.user,
      secret_type: "ceph",
      secret_uuid: this.cfg.secretUuid ?? cl.fsid,
      volume_id: volume.id,
      discard: true,
      access_mode: "rw",
    };
    if (this.keyringText !== undefined) data.keyring = this.keyringText;
    return { driver_volume_type: "rbd", data };
  }

  // ───────────────────────────── inventory ─────────────────────────────

  async inspectVolume(volume: VolumeRecord): Promise<BackendPresence> {
    const image = volumeImage(volume.id);
    try {
      await this.c.info(this.pool, image);
    } catch (e) {
      if (isErrno(e, ENOENT)) return "absent";
      this.fail(e, "inspect volume", { kind: "volume", id: volume.id });
    }
    return (await this.ownerOf(image)) === volume.id ? "present" : "incomplete";
  }

  async inspectSnapshot(snapshot: SnapshotRecord, volume: VolumeRecord): Promise<BackendPresence> {
    try {
      const snaps = await this.c.snapList(this.pool, volumeImage(volume.id));
      return snaps.some((s) => s.name === snapshotName(snapshot.id)) ? "present" : "absent";
    } catch (e) {
      if (isErrno(e, ENOENT)) return "absent";
      this.fail(e, "inspect snapshot", { kind: "snapshot", id: snapshot.id });
    }
  }

  /** Images in the pool carrying our owner tag; `.deleted` hidden parents are owned by their clones, not listed. */
  async listManagedVolumes(): Promise<{ id: string; sizeGiB?: number; backendName?: string }[]> {
    const images = await this.call("list volumes", { kind: "backend", id: this.ctx.backendName }, () => this.c.list(this.pool));
    const out: { id: string; sizeGiB?: number; backendName?: string }[] = [];
    await eachLimited(
      images.filter((i) => !i.name.endsWith(DELETED_SUFFIX)),
      8,
      async (img) => {
        const owner = await this.ownerOf(img.name);
        if (owner) out.push({ id: owner, sizeGiB: Math.ceil(img.size / GiB), backendName: this.ctx.backendName });
      },
    );
    return out.sort((a, b) => a.id.localeCompare(b.id));
  }
}
