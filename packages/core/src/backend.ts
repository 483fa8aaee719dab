import {
  HasDependentsError,
  InUseError,
  InvalidArgumentError,
  InvalidStateError,
  NotFoundError,
  UnsupportedError,
  isStorageError,
  toStorageError,
} from "./errors.js";
import {
  ConnectInput,
  CreateSnapshotInput,
  CreateVolumeInput,
  DeleteInput,
  ExtendVolumeInput,
  StatsInput,
} from "./inputs.js";
import type {
  BackendStats,
  HostConnector,
  LockManager,
  Logger,
  ModelUpdate,
  OperationOptions,
  Persistence,
  VolumeDriver,
} from "./interfaces.js";
import { withLocks } from "./locks.js";
import type { DriverPlugin } from "./plugin.js";
import {
  ConnectorPropsSchema,
  assertTransition,
  type ConnectionRecord,
  type ConnectorProps,
  type Intent,
  type SnapshotRecord,
  type VolumeRecord,
  type VolumeStatus,
} from "./records.js";
import { newId, nowIso, processOwner } from "./util.js";
import { parseInput, redact } from "./validation.js";

/** Resolves host connectors by driver_volume_type and knows this host's connector properties. */
export interface HostSide {
  connectorFor(protocol: string): HostConnector;
  connectorProperties(): Promise<ConnectorProps>;
  nodeId: string;
}

export interface BackendInit {
  name: string;
  plugin: DriverPlugin;
  /** Options as given (validated by the plugin's schema); kept for dumps, redacted there. */
  options: unknown;
  specifier: string;
  driver: VolumeDriver;
  persistence: Persistence;
  locks: LockManager;
  logger: Logger;
  host: HostSide;
  /** Runs driver setup lazily before the first driver call. */
  ensureReady?: () => Promise<void>;
}

const lockKey = {
  volume: (id: string) => `volume:${id}`,
  snapshot: (id: string) => `snapshot:${id}`,
};

function intent(op: string, args?: Record<string, unknown>): Intent {
  return { op, started_at: nowIso(), owner: processOwner(), ...(args ? { args } : {}) };
}

function applyUpdate<T extends VolumeRecord | SnapshotRecord>(rec: T, update: ModelUpdate | void): T {
  if (!update) return rec;
  const out = { ...rec };
  for (const k of ["provider_location", "provider_id", "provider_auth", "provider_geometry"] as const) {
    if (update[k] !== undefined) out[k] = update[k] ?? null;
  }
  if (update.metadata) out.metadata = { ...out.metadata, ...update.metadata };
  if (update.size !== undefined && "size" in out) (out as VolumeRecord).size = update.size;
  return out;
}

const LIVE_CONNECTION = ["connecting", "connected", "attaching", "attached", "detaching", "disconnecting", "error"] as const;

/**
 * One configured backend: a driver instance plus the lifecycle around it. Every public method validates
 * its input first, takes the locks of the objects it touches, records its intent before the driver runs,
 * and leaves a consistent record whatever the driver does.
 */
export class Backend {
  readonly name: string;
  readonly plugin: DriverPlugin;
  readonly specifier: string;
  readonly driver: VolumeDriver;
  private readonly options: unknown;
  private readonly persistence: Persistence;
  private readonly locks: LockManager;
  private readonly logger: Logger;
  private readonly host: HostSide;
  private cachedStats: BackendStats | undefined;
  private readonly ensureReady: (() => Promise<void>) | undefined;

  constructor(init: BackendInit) {
    this.name = init.name;
    this.plugin = init.plugin;
    this.specifier = init.specifier;
    this.driver = init.driver;
    this.options = init.options;
    this.persistence = init.persistence;
    this.locks = init.locks;
    this.logger = init.logger.child({ backend: init.name });
    this.host = init.host;
    this.ensureReady = init.ensureReady;
  }

  /** The backend's description for lists and dumps; secrets in options are redacted unless asked for. */
  describe(opts: { includeSecrets?: boolean } = {}) {
    return {
      name: this.name,
      driver: this.specifier,
      driver_id: this.plugin.id,
      driver_version: this.plugin.version,
      vendor: this.plugin.vendor,
      capabilities: { ...this.plugin.capabilities } as Record<string, unknown>,
      options: opts.includeSecrets ? this.options : redact(this.options, this.plugin.configSchema),
    };
  }

  // ───────────── stats ─────────────

  async stats(input: { refresh?: boolean } = {}): Promise<BackendStats> {
    const { refresh } = parseInput(StatsInput, input, "stats request");
    if (this.cachedStats && !refresh) return this.cachedStats;
    const stats = await this.timed("stats", {}, () => this.driver.getStats({ refresh: true }));
    this.cachedStats = { ...stats, volume_backend_name: this.name };
    return this.cachedStats;
  }

  // ───────────── volumes ─────────────

  async getVolume(id: string): Promise<VolumeRecord> {
    const rec = await this.persistence.get("volume", id);
    if (!rec || rec.backend !== this.name) throw new NotFoundError("volume", id, { backend: this.name });
    return rec;
  }

  async listVolumes(opts: { includeDeleted?: boolean } = {}): Promise<VolumeRecord[]> {
    const all = await this.persistence.find("volume", { backend: this.name });
    return opts.includeDeleted ? all : all.filter((v) => v.status !== "deleted");
  }

  async createVolume(input: CreateVolumeInput, opts: OperationOptions = {}): Promise<VolumeRecord> {
    const args = parseInput(CreateVolumeInput, input, "volume");
    const id = args.id ?? newId();
    const sourceKeys: string[] = [];
    let snapshot: SnapshotRecord | undefined;
    let source: VolumeRecord | undefined;
    if (args.snapshot_id) {
      snapshot = await this.getSnapshot(args.snapshot_id);
      if (args.size < snapshot.volume_size) {
        throw new InvalidArgumentError(
          `size ${args.size} GiB is smaller than snapshot ${snapshot.id} (${snapshot.volume_size} GiB)`,
          { issues: [{ path: "size", message: `must be at least ${snapshot.volume_size}` }] },
        );
      }
      sourceKeys.push(lockKey.snapshot(snapshot.id));
    }
    if (args.source_volume_id) {
      source = await this.getVolume(args.source_volume_id);
      if (args.size < source.size) {
        throw new InvalidArgumentError(`size ${args.size} GiB is smaller than source volume ${source.id} (${source.size} GiB)`, {
          issues: [{ path: "size", message: `must be at least ${source.size}` }],
        });
      }
      sourceKeys.push(lockKey.volume(source.id));
    }
    const op = snapshot ? "create_from_snapshot" : source ? "clone" : "create";
    const now = nowIso();
    const draft: VolumeRecord = {
      id,
      version: 0,
      backend: this.name,
      name: args.name ?? null,
      size: args.size,
      status: "creating",
      source_volume_id: source?.id ?? null,
      snapshot_id: snapshot?.id ?? null,
      created_at: now,
      updated_at: now,
      metadata: args.metadata ?? {},
      intent: intent(op),
      status_reason: null,
      provider_location: null,
      provider_id: null,
      provider_auth: null,
      provider_geometry: null,
    };

    return withLocks(this.locks, [lockKey.volume(id), ...sourceKeys], async () => {
      // Re-read sources under their locks: a concurrent delete may have won the race.
      if (snapshot) {
        snapshot = await this.getSnapshot(snapshot.id);
        if (snapshot.status !== "available") {
          throw new InvalidStateError(`snapshot ${snapshot.id} is ${snapshot.status}, not available`, {
            resource: { kind: "snapshot", id: snapshot.id },
          });
        }
      }
      if (source) {
        source = await this.getVolume(source.id);
        if (source.status !== "available" && source.status !== "in-use") {
          throw new InvalidStateError(`source volume ${source.id} is ${source.status}`, {
            resource: { kind: "volume", id: source.id },
          });
        }
      }
      // An extend of the source may have landed between the first check and the lock.
      const minimum = source?.size ?? snapshot?.volume_size ?? 0;
      if (args.size < minimum) {
        throw new InvalidArgumentError(`size ${args.size} GiB is smaller than the source (${minimum} GiB)`, {
          issues: [{ path: "size", message: `must be at least ${minimum}` }],
        });
      }
      // The record exists before the backend object does: a crash from here on leaves a record to reconcile.
      let rec = await this.persistence.put("volume", draft, { expectVersion: 0 });
      try {
        const update = await this.timed(op, { volumeId: id }, () =>
          snapshot
            ? this.driver.createVolumeFromSnapshot(rec, snapshot, opts)
            : source
              ? this.driver.createClonedVolume(rec, source, opts)
              : this.driver.createVolume(rec, opts),
        );
        rec = await this.save("volume", { ...applyUpdate(rec, update), status: "available", intent: null }, rec);
        return rec;
      } catch (e) {
        await this.failCreate(rec, e);
        throw e;
      }
    });
  }

  /** A failed create must not leave a half-made backend object behind. */
  private async failCreate(rec: VolumeRecord, e: unknown): Promise<void> {
    // ALREADY_EXISTS: the backend object predates this record (an orphan, or data of a lost state) — not ours to remove.
    if (!(isStorageError(e) && e.code === "ALREADY_EXISTS")) {
      try {
        await this.driver.deleteVolume(rec);
      } catch (cleanup) {
        this.logger.warn("cleanup after failed create failed", { volumeId: rec.id, error: cleanup });
      }
    }
    await this.save("volume", { ...rec, status: "error", intent: null, status_reason: reasonOf(e) }, rec);
  }

  async deleteVolume(idOrInput: string | { id: string; force?: boolean }): Promise<void> {
    const { id, force } = parseInput(DeleteInput, typeof idOrInput === "string" ? { id: idOrInput } : idOrInput, "delete request");
    const existing = await this.getVolume(id);
    if (existing.status === "deleted") return;
    if (force) {
      for (const c of await this.liveConnections(id)) await this.disconnect(c.id, { force: true });
      for (const s of await this.listSnapshots({ volume_id: id })) await this.deleteSnapshot(s.id);
    }
    await withLocks(this.locks, [lockKey.volume(id)], async () => {
      let rec = await this.getVolume(id);
      if (rec.status === "deleted") return;
      const snaps = await this.listSnapshots({ volume_id: id });
      if (snaps.length) {
        throw new HasDependentsError(
          `volume ${id} has ${snaps.length} snapshot(s); delete them first or use force`,
          snaps.map((s) => ({ kind: "snapshot" as const, id: s.id })),
          { resource: { kind: "volume", id } },
        );
      }
      const conns = await this.liveConnections(id);
      if (conns.length) {
        throw new InUseError(`volume ${id} has ${conns.length} connection(s); disconnect them first or use force`, {
          resource: { kind: "volume", id },
          data: { connections: conns.map((c) => c.id) },
        });
      }
      if (rec.status !== "deleting") assertTransition("volume", id, rec.status, "deleting");
      rec = await this.save("volume", { ...rec, status: "deleting", intent: intent("delete") }, rec);
      try {
        await this.timed("delete", { volumeId: id }, () => this.driver.deleteVolume(rec));
      } catch (e) {
        await this.save("volume", { ...rec, status: "error_deleting", intent: null, status_reason: reasonOf(e) }, rec);
        throw e;
      }
      await this.save("volume", { ...rec, status: "deleted", intent: null, status_reason: null }, rec);
    });
  }

  async extendVolume(input: { id: string; size: number }): Promise<VolumeRecord> {
    const { id, size } = parseInput(ExtendVolumeInput, input, "extend request");
    return withLocks(this.locks, [lockKey.volume(id)], async () => {
      let rec = await this.getVolume(id);
      if (size <= rec.size) {
        throw new InvalidArgumentError(`new size ${size} GiB must be larger than the current ${rec.size} GiB`, {
          issues: [{ path: "size", message: `must be greater than ${rec.size}` }],
        });
      }
      const back: VolumeStatus = rec.status === "in-use" ? "in-use" : "available";
      assertTransition("volume", id, rec.status, "extending");
      rec = await this.save("volume", { ...rec, status: "extending", intent: intent("extend", { from: rec.size, to: size, back }) }, rec);
      try {
        await this.timed("extend", { volumeId: id, size }, () => this.driver.extendVolume(rec, size));
      } catch (e) {
        await this.save("volume", { ...rec, status: "error_extending", intent: null, status_reason: reasonOf(e) }, rec);
        throw e;
      }
      rec = await this.save("volume", { ...rec, size, status: back, intent: null }, rec);
      // Attached here: make the new size visible at the attached path too.
      for (const c of await this.liveConnections(id)) {
        if (c.attach_info && c.conn_info && c.node_id === this.host.nodeId) {
          await this.host.connectorFor(c.conn_info.driver_volume_type).extendVolume(c.conn_info, c.attach_info);
        }
      }
      return rec;
    });
  }

  // ───────────── snapshots ─────────────

  async getSnapshot(id: string): Promise<SnapshotRecord> {
    const rec = await this.persistence.get("snapshot", id);
    if (!rec || rec.backend !== this.name) throw new NotFoundError("snapshot", id, { backend: this.name });
    return rec;
  }

  async listSnapshots(opts: { volume_id?: string; includeDeleted?: boolean } = {}): Promise<SnapshotRecord[]> {
    const all = await this.persistence.find("snapshot", {
      backend: this.name,
      ...(opts.volume_id ? { volume_id: opts.volume_id } : {}),
    });
    return opts.includeDeleted ? all : all.filter((s) => s.status !== "deleted");
  }

  async createSnapshot(input: CreateSnapshotInput): Promise<SnapshotRecord> {
    const args = parseInput(CreateSnapshotInput, input, "snapshot");
    const id = args.id ?? newId();
    await this.getVolume(args.volume_id);
    return withLocks(this.locks, [lockKey.volume(args.volume_id), lockKey.snapshot(id)], async () => {
      const vol = await this.getVolume(args.volume_id);
      if (vol.status !== "available" && vol.status !== "in-use") {
        throw new InvalidStateError(`volume ${vol.id} is ${vol.status}; snapshots need it available or in-use`, {
          resource: { kind: "volume", id: vol.id },
        });
      }
      const now = nowIso();
      let rec = await this.persistence.put(
        "snapshot",
        {
          id,
          version: 0,
          backend: this.name,
          name: args.name ?? null,
          volume_id: vol.id,
          volume_size: vol.size,
          status: "creating",
          created_at: now,
          updated_at: now,
          metadata: args.metadata ?? {},
          intent: intent("create_snapshot"),
          status_reason: null,
          provider_location: null,
          provider_id: null,
          provider_auth: null,
          provider_geometry: null,
        },
        { expectVersion: 0 },
      );
      try {
        const update = await this.timed("create_snapshot", { volumeId: vol.id, snapshotId: id }, () =>
          this.driver.createSnapshot(rec, vol),
        );
        return await this.save("snapshot", { ...applyUpdate(rec, update), status: "available", intent: null }, rec);
      } catch (e) {
        try {
          await this.driver.deleteSnapshot(rec, vol);
        } catch (cleanup) {
          this.logger.warn("cleanup after failed snapshot failed", { snapshotId: id, error: cleanup });
        }
        await this.save("snapshot", { ...rec, status: "error", intent: null, status_reason: reasonOf(e) }, rec);
        throw e;
      }
    });
  }

  async deleteSnapshot(idOrInput: string | { id: string }): Promise<void> {
    const { id } = parseInput(DeleteInput, typeof idOrInput === "string" ? { id: idOrInput } : idOrInput, "delete request");
    const first = await this.getSnapshot(id);
    if (first.status === "deleted") return;
    await withLocks(this.locks, [lockKey.volume(first.volume_id), lockKey.snapshot(id)], async () => {
      let rec = await this.getSnapshot(id);
      if (rec.status === "deleted") return;
      const vol = await this.getVolume(rec.volume_id);
      const prior = rec.status;
      if (rec.status !== "deleting") assertTransition("snapshot", id, rec.status, "deleting");
      rec = await this.save("snapshot", { ...rec, status: "deleting", intent: intent("delete_snapshot") }, rec);
      try {
        await this.timed("delete_snapshot", { snapshotId: id }, () => this.driver.deleteSnapshot(rec, vol));
      } catch (e) {
        // Refused because of dependents: nothing changed on the backend, so the snapshot is as it was.
        const back = isStorageError(e) && e.code === "HAS_DEPENDENTS" ? (prior === "deleting" ? "available" : prior) : "error_deleting";
        await this.save("snapshot", { ...rec, status: back, intent: null, status_reason: back === "error_deleting" ? reasonOf(e) : null }, rec);
        throw e;
      }
      await this.save("snapshot", { ...rec, status: "deleted", intent: null, status_reason: null }, rec);
    });
  }

  // ───────────── connections ─────────────

  async getConnection(id: string): Promise<ConnectionRecord> {
    const rec = await this.persistence.get("connection", id);
    if (!rec || rec.backend !== this.name) throw new NotFoundError("connection", id, { backend: this.name });
    return rec;
  }

  async listConnections(opts: { volume_id?: string } = {}): Promise<ConnectionRecord[]> {
    return this.persistence.find("connection", { backend: this.name, ...(opts.volume_id ? { volume_id: opts.volume_id } : {}) });
  }

  private async liveConnections(volumeId: string): Promise<ConnectionRecord[]> {
    const all = await this.listConnections({ volume_id: volumeId });
    return all.filter((c) => (LIVE_CONNECTION as readonly string[]).includes(c.status));
  }

  /** Throws InvalidArgumentError naming what the connector lacks for this backend. */
  async validateConnector(connector: unknown): Promise<ConnectorProps> {
    const props = parseInput(ConnectorPropsSchema, connector, "connector properties");
    this.driver.validateConnector(props);
    return props;
  }

  /** Export and map a volume to a host (cinderlib's connect): returns the connection with conn_info. */
  async connect(input: { volume_id: string; connector: unknown; node_id?: string }): Promise<ConnectionRecord> {
    const args = parseInput(ConnectInput, input, "connect request");
    const connector = args.connector;
    this.driver.validateConnector(connector);
    await this.getVolume(args.volume_id);
    return withLocks(this.locks, [lockKey.volume(args.volume_id)], async () => {
      let vol = await this.getVolume(args.volume_id);
      if (vol.status !== "available" && vol.status !== "in-use") {
        throw new InvalidStateError(`volume ${vol.id} is ${vol.status}; it must be available or in-use to connect`, {
          resource: { kind: "volume", id: vol.id },
        });
      }
      const now = nowIso();
      let conn = await this.persistence.put(
        "connection",
        {
          id: newId(),
          version: 0,
          backend: this.name,
          volume_id: vol.id,
          status: "connecting",
          protocol: "unknown",
          connector,
          conn_info: null,
          attach_info: null,
          node_id: args.node_id ?? connector.host,
          created_at: now,
          updated_at: now,
          intent: intent("connect"),
          status_reason: null,
        },
        { expectVersion: 0 },
      );
      try {
        const update = await this.timed("create_export", { volumeId: vol.id }, () => this.driver.createExport(vol, connector));
        vol = await this.save("volume", applyUpdate(vol, update), vol);
        const connInfo = await this.timed("initialize_connection", { volumeId: vol.id }, () =>
          this.driver.initializeConnection(vol, connector),
        );
        connInfo.data = { ...connInfo.data, access_mode: connInfo.data.access_mode ?? "rw" };
        conn = await this.save(
          "connection",
          { ...conn, status: "connected", protocol: connInfo.driver_volume_type, conn_info: connInfo, intent: null },
          conn,
        );
        if (vol.status !== "in-use") await this.save("volume", { ...vol, status: "in-use" }, vol);
        return conn;
      } catch (e) {
        await this.undoConnect(vol, conn);
        throw e;
      }
    });
  }

  private async undoConnect(vol: VolumeRecord, conn: ConnectionRecord): Promise<void> {
    try {
      await this.driver.terminateConnection(vol, conn.connector);
      if ((await this.liveConnections(vol.id)).filter((c) => c.id !== conn.id).length === 0) await this.driver.removeExport(vol);
    } catch (cleanup) {
      this.logger.warn("cleanup after failed connect failed", { volumeId: vol.id, error: cleanup });
    }
    await this.persistence.delete("connection", conn.id);
  }

  /** Unmap (terminate connection) and remove the export when it was the last connection. */
  async disconnect(connectionId: string, opts: { force?: boolean } = {}): Promise<void> {
    const first = await this.persistence.get("connection", connectionId);
    if (!first) return; // disconnecting twice succeeds
    if (first.backend !== this.name) throw new NotFoundError("connection", connectionId, { backend: this.name });
    if (first.attach_info) {
      if (first.node_id === this.host.nodeId) await this.detach(connectionId, opts);
      else if (!opts.force) {
        throw new InUseError(`connection ${connectionId} is attached on node ${first.node_id}; detach it there first or use force`, {
          resource: { kind: "connection", id: connectionId },
        });
      }
    }
    await withLocks(this.locks, [lockKey.volume(first.volume_id)], async () => {
      const conn = await this.persistence.get("connection", connectionId);
      if (!conn) return;
      let vol = await this.getVolume(conn.volume_id);
      await this.save("connection", { ...conn, status: "disconnecting", intent: intent("disconnect") }, conn);
      await this.timed("terminate_connection", { volumeId: vol.id }, () => this.driver.terminateConnection(vol, conn.connector));
      const others = (await this.liveConnections(vol.id)).filter((c) => c.id !== conn.id);
      if (others.length === 0) {
        await this.timed("remove_export", { volumeId: vol.id }, () => this.driver.removeExport(vol));
        vol = await this.getVolume(vol.id);
        if (vol.status === "in-use") await this.save("volume", { ...vol, status: "available" }, vol);
      }
      await this.persistence.delete("connection", conn.id);
    });
  }

  /** Local attach: connect for this host, then attach with the host connector. */
  async attach(volumeId: string, opts: { signal?: AbortSignal } = {}): Promise<ConnectionRecord> {
    const connector = await this.host.connectorProperties();
    let conn = await this.connect({ volume_id: volumeId, connector, node_id: this.host.nodeId });
    const connInfo = conn.conn_info!;
    const hostConnector = this.host.connectorFor(connInfo.driver_volume_type);
    conn = await this.save("connection", { ...conn, status: "attaching", intent: intent("attach") }, conn);
    try {
      const attachInfo = await this.timed("attach", { volumeId }, () => hostConnector.connectVolume(connInfo, opts));
      return await this.save("connection", { ...conn, status: "attached", attach_info: attachInfo, intent: null }, conn);
    } catch (e) {
      await this.save("connection", { ...conn, status: "connected", intent: null }, conn);
      await this.disconnect(conn.id).catch((cleanup) =>
        this.logger.warn("cleanup after failed attach failed", { volumeId, error: cleanup }),
      );
      throw e;
    }
  }

  /** Local detach of a connection made by attach(); the connection stays (connected) for disconnect(). */
  async detach(connectionId: string, opts: { force?: boolean } = {}): Promise<ConnectionRecord> {
    let conn = await this.getConnection(connectionId);
    if (!conn.attach_info || !conn.conn_info) return conn;
    if (conn.node_id !== this.host.nodeId) {
      throw new InvalidStateError(`connection ${connectionId} is attached on node ${conn.node_id}, not on this node (${this.host.nodeId})`, {
        resource: { kind: "connection", id: connectionId },
      });
    }
    const hostConnector = this.host.connectorFor(conn.conn_info.driver_volume_type);
    conn = await this.save("connection", { ...conn, status: "detaching", intent: intent("detach") }, conn);
    try {
      await this.timed("detach", { volumeId: conn.volume_id }, () =>
        hostConnector.disconnectVolume(conn.conn_info!, conn.attach_info!, { force: opts.force ?? false }),
      );
    } catch (e) {
      await this.save("connection", { ...conn, status: "attached", intent: null, status_reason: reasonOf(e) }, conn);
      throw e;
    }
    return this.save("connection", { ...conn, status: "connected", attach_info: null, intent: null }, conn);
  }

  /**
   * Detach (if attached here) and disconnect the connection(s) of a volume attached on this node.
   * The common "volume detach ID" path.
   */
  async detachVolume(volumeId: string, opts: { force?: boolean } = {}): Promise<void> {
    await this.getVolume(volumeId);
    const mine = (await this.liveConnections(volumeId)).filter((c) => c.node_id === this.host.nodeId && c.attach_info);
    if (!mine.length) {
      throw new InvalidStateError(`volume ${volumeId} is not attached on this node (${this.host.nodeId})`, {
        resource: { kind: "volume", id: volumeId },
      });
    }
    for (const c of mine) {
      await this.detach(c.id, opts);
      await this.disconnect(c.id, opts);
    }
  }

  // ───────────── internals ─────────────

  /** Write with optimistic concurrency and the updated_at stamp. */
  async save<K extends "volume" | "snapshot" | "connection">(
    kind: K,
    next: K extends "volume" ? VolumeRecord : K extends "snapshot" ? SnapshotRecord : ConnectionRecord,
    current: { version: number },
  ): Promise<K extends "volume" ? VolumeRecord : K extends "snapshot" ? SnapshotRecord : ConnectionRecord> {
    type R = K extends "volume" ? VolumeRecord : K extends "snapshot" ? SnapshotRecord : ConnectionRecord;
    return (await this.persistence.put(kind, { ...next, updated_at: nowIso() } as never, {
      expectVersion: current.version,
    })) as R;
  }

  private async timed<T>(op: string, fields: Record<string, unknown>, fn: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      await this.ensureReady?.();
      const result = await fn();
      this.logger.info(op, { ...fields, op, ms: Math.round(performance.now() - started) });
      return result;
    } catch (e) {
      // Anything a driver throws that is not ours is a backend failure, kept as the cause.
      const err = toStorageError(e, { backend: this.name, driver: this.plugin.id }, "BACKEND_ERROR");
      this.logger.error(op, { ...fields, op, ms: Math.round(performance.now() - started), error: err });
      throw err;
    }
  }

  async close(): Promise<void> {
    await this.driver.close?.();
  }

  /** Used by reconcile to run driver calls with the backend's logging. */
  get internals() {
    return { driver: this.driver, persistence: this.persistence, locks: this.locks, logger: this.logger, host: this.host };
  }

  static unsupported(what: string): never {
    throw new UnsupportedError(what);
  }
}

export function reasonOf(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).slice(0, 1000);
}

export { lockKey };
