import type {
  AttachInfo,
  ConnectionInfo,
  ConnectionRecord,
  ConnectorProps,
  RecordKind,
  RecordOf,
  SnapshotRecord,
  VolumeRecord,
} from "./records.js";

// ───────────────────────────── logging ─────────────────────────────

export type LogLevel = "debug" | "info" | "warn" | "error";

/** Structured logger. Fields are redacted by the implementation; callers never pre-format secrets. */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(bindings: Record<string, unknown>): Logger;
}

// ───────────────────────────── commands ─────────────────────────────

export interface RunOptions {
  /** Bytes or text written to the command's stdin. */
  input?: string | Buffer;
  /** Kill the command after this long; the runner throws TimeoutError. */
  timeoutMs?: number;
  env?: Record<string, string>;
  cwd?: string;
  /** Run with privileges (the runner's configured root helper, e.g. `sudo -n --`). */
  root?: boolean;
  /** Exit codes that are not failures (default only 0). */
  okExitCodes?: readonly number[];
  /** Strings to mask in the error and the logs (CHAP secrets passed as arguments). */
  secrets?: readonly string[];
  /** Return stdout as a Buffer instead of decoded text (binary output). */
  binary?: boolean;
  signal?: AbortSignal;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  exitCode: number;
  /** Only when RunOptions.binary was set. */
  stdoutBuffer?: Buffer;
}

/**
 * Runs one command given as an argv array — never a shell string. Implemented by @cinderts/runner-local
 * (execa) and @cinderts/runner-ssh (ssh2, each argument quoted). A failure is a CommandError with the
 * redacted argv, exit code and stderr tail; a timeout is a TimeoutError.
 */
export interface CommandRunner {
  /** "local" or "ssh:user@host:port": shown in errors and logs. */
  readonly name: string;
  run(argv: readonly string[], opts?: RunOptions): Promise<RunResult>;
  /** Starts a long-lived command (helper processes) and returns a handle; optional. */
  spawn?(argv: readonly string[], opts?: Omit<RunOptions, "input" | "timeoutMs">): SpawnedCommand;
  close?(): Promise<void>;
}

export interface SpawnedCommand {
  readonly stdin: NodeJS.WritableStream;
  readonly stdout: NodeJS.ReadableStream;
  readonly stderr: NodeJS.ReadableStream;
  readonly exited: Promise<{ exitCode: number | null; signal?: string | null }>;
  kill(signal?: NodeJS.Signals): void;
}

// ───────────────────────────── locks ─────────────────────────────

export interface Lock {
  readonly key: string;
  release(): Promise<void>;
}

/**
 * Mutual exclusion keyed `volume:<id>`, `snapshot:<id>`, `target:<iqn>` …. In-process by default;
 * persistence plugins that share state between processes or hosts provide their own (SQLite lock
 * table, PostgreSQL advisory locks).
 */
export interface LockManager {
  acquire(key: string, opts?: { timeoutMs?: number; signal?: AbortSignal }): Promise<Lock>;
  close?(): Promise<void>;
}

// ───────────────────────────── persistence ─────────────────────────────

export interface RecordFilter {
  backend?: string;
  volume_id?: string;
  name?: string;
  status?: string | readonly string[];
  ids?: readonly string[];
  node_id?: string;
}

export interface PutOptions {
  /**
   * Optimistic concurrency: the write succeeds only if the stored record still has this version
   * (0 = must not exist yet). Omitted: unconditional upsert. A lost race is a ConflictError.
   */
  expectVersion?: number;
}

/**
 * Metadata store. Records are plain JSON; every put increments `version` and returns the stored record.
 * Implementations: memory, SQLite (embedded default), PostgreSQL (several hosts).
 */
export interface Persistence {
  /** Create/migrate the schema. Safe to call from several processes at once. */
  init(): Promise<void>;
  close(): Promise<void>;
  get<K extends RecordKind>(kind: K, id: string): Promise<RecordOf[K] | undefined>;
  find<K extends RecordKind>(kind: K, filter?: RecordFilter): Promise<RecordOf[K][]>;
  put<K extends RecordKind>(kind: K, record: RecordOf[K], opts?: PutOptions): Promise<RecordOf[K]>;
  /** Removing a record that is gone already succeeds. */
  delete(kind: RecordKind, id: string): Promise<void>;
  getKey(key: string): Promise<unknown>;
  setKey(key: string, value: unknown): Promise<void>;
  deleteKey(key: string): Promise<void>;
  listKeys(prefix?: string): Promise<string[]>;
  /** Cross-process locks that share this store's reach; absent → the host uses an in-process manager. */
  readonly locks?: LockManager;
  /**
   * Is the process that recorded an intent (host:pid:stamp) still alive — also on another host? Stores shared
   * between hosts can answer (e.g. by session presence); absent → only owners on this host can be judged.
   */
  ownerAlive?(owner: string): Promise<boolean>;
}

// ───────────────────────────── drivers ─────────────────────────────

/** Per-pool capacity, with Cinder's field names so existing tooling reads them. */
export interface PoolStats {
  pool_name: string;
  total_capacity_gb: number | "unknown" | "infinite";
  free_capacity_gb: number | "unknown" | "infinite";
  provisioned_capacity_gb?: number;
  allocated_capacity_gb?: number;
  thin_provisioning_support: boolean;
  thick_provisioning_support?: boolean;
  max_over_subscription_ratio?: number | string;
  reserved_percentage?: number;
  multiattach?: boolean;
  [extra: string]: unknown;
}

export interface BackendStats {
  volume_backend_name: string;
  vendor_name: string;
  driver_version: string;
  storage_protocol: string;
  pools: PoolStats[];
  [extra: string]: unknown;
}

/** Fields a driver may set on a record after an operation; persisted by the host. */
export interface ModelUpdate {
  provider_location?: string | null;
  provider_id?: string | null;
  provider_auth?: string | null;
  provider_geometry?: string | null;
  metadata?: Record<string, string>;
  /** Set when the backend rounded the size up (arrays allocate in extents). */
  size?: number;
}

export interface OperationOptions {
  /** Called as a copy progresses (bytes done of total). */
  progress?: (doneBytes: number, totalBytes: number) => void;
  signal?: AbortSignal;
}

/** Handed to every plugin at creation. */
export interface PluginContext {
  logger: Logger;
  /** How this plugin runs commands (local by default, ssh when the manifest says so). */
  runner: CommandRunner;
  locks: LockManager;
  /** Directory for plugin state that is not metadata (pid files, sockets), per backend. */
  stateDir: string;
  /** Key-value persistence scoped to this plugin instance. */
  kv: KeyValueStore;
  /** This host's node id (manifest node_id, else the hostname). */
  nodeId: string;
  /** The manifest's directory: relative paths in options resolve against it. */
  baseDir: string;
}

export interface DriverContext extends PluginContext {
  backendName: string;
  /** The export layer named in the manifest (iSCSI target helper), for drivers that use one. */
  target?: Target;
}

export interface KeyValueStore {
  get(key: string): Promise<unknown>;
  set(key: string, value: unknown): Promise<void>;
  delete(key: string): Promise<void>;
  list(prefix?: string): Promise<string[]>;
}

/**
 * Required of every backend driver. Docstrings are contracts, as in Cinder.
 * Records passed in are the persisted ones; return ModelUpdate to persist driver fields.
 */
export interface VolumeDriver {
  /** Check config and reachability once; throw ConfigError / BackendError. */
  setup(): Promise<void>;
  getStats(opts?: { refresh?: boolean }): Promise<BackendStats>;
  createVolume(volume: VolumeRecord, opts?: OperationOptions): Promise<ModelUpdate | void>;
  /** Must succeed when the volume is already gone. */
  deleteVolume(volume: VolumeRecord): Promise<void>;
  /** Grow to volume.size → newSize GiB. Called also while the volume is exported/attached. */
  extendVolume(volume: VolumeRecord, newSizeGiB: number): Promise<void>;
  createSnapshot(snapshot: SnapshotRecord, volume: VolumeRecord): Promise<ModelUpdate | void>;
  /** Must succeed when the snapshot is already gone. */
  deleteSnapshot(snapshot: SnapshotRecord, volume: VolumeRecord): Promise<void>;
  /** The new volume has the data of the snapshot as it was when taken; it may be larger. */
  createVolumeFromSnapshot(
    volume: VolumeRecord,
    snapshot: SnapshotRecord,
    opts?: OperationOptions,
  ): Promise<ModelUpdate | void>;
  /** The new volume has the source's data at the time of the call; it may be larger. */
  createClonedVolume(volume: VolumeRecord, source: VolumeRecord, opts?: OperationOptions): Promise<ModelUpdate | void>;
  /** Make the volume exportable to this connector (target, LUN). Idempotent. */
  createExport(volume: VolumeRecord, connector: ConnectorProps): Promise<ModelUpdate | void>;
  /** Map the volume to the connector's host and say how to reach it. */
  initializeConnection(volume: VolumeRecord, connector: ConnectorProps): Promise<ConnectionInfo>;
  /** Unmap from that host; must succeed when already unmapped. connector undefined = every host. */
  terminateConnection(volume: VolumeRecord, connector: ConnectorProps | undefined): Promise<void>;
  /** Remove the export when no connection needs it any more. Idempotent. */
  removeExport(volume: VolumeRecord): Promise<void>;
  /** Throw InvalidArgumentError naming the missing/bad property (e.g. no initiator IQN for iSCSI). */
  validateConnector(connector: ConnectorProps): void;
  /** Release connections/processes held by the driver. */
  close?(): Promise<void>;
}

/** What reconcile learns about one record from the backend. */
export type BackendPresence = "present" | "absent" | "incomplete";

/**
 * Optional capability: lets reconcile compare records with the backend. Drivers tag what they create
 * with the cinderts id (image metadata, LV tags, file names) so that orphans can be found.
 */
export interface SupportsInventory {
  inspectVolume(volume: VolumeRecord): Promise<BackendPresence>;
  inspectSnapshot(snapshot: SnapshotRecord, volume: VolumeRecord): Promise<BackendPresence>;
  /** Volume ids the backend holds that this driver created (by its ownership tag). */
  listManagedVolumes(): Promise<{ id: string; sizeGiB?: number; backendName?: string }[]>;
}

export const supportsInventory = (d: VolumeDriver): d is VolumeDriver & SupportsInventory =>
  typeof (d as Partial<SupportsInventory>).inspectVolume === "function" &&
  typeof (d as Partial<SupportsInventory>).listManagedVolumes === "function";

/** Optional capability: give the local path of a volume without any export (file backends). */
export interface SupportsLocalPath {
  localPath(volume: VolumeRecord): string;
}
export const supportsLocalPath = (d: VolumeDriver): d is VolumeDriver & SupportsLocalPath =>
  typeof (d as Partial<SupportsLocalPath>).localPath === "function";

// ───────────────────────────── targets ─────────────────────────────

/** A device or file a target exports. */
export interface ExportSource {
  volume: VolumeRecord;
  /** Block device or file path on the storage host. */
  path: string;
  sizeBytes: number;
}

/**
 * Storage-side export layer (iSCSI targets: LIO, tgt), reusable by any driver that has a device or file to
 * export — as Cinder's target helpers are. Returns provider_location/provider_auth in Cinder's format.
 */
export interface Target {
  readonly protocol: string;
  /** Called by the driver from its own setup(). */
  setup(): Promise<void>;
  createExport(source: ExportSource, connector: ConnectorProps): Promise<ModelUpdate>;
  initializeConnection(source: ExportSource, connector: ConnectorProps): Promise<ConnectionInfo>;
  terminateConnection(source: ExportSource, connector: ConnectorProps | undefined): Promise<void>;
  removeExport(source: ExportSource): Promise<void>;
  /** Make the new size visible to initiators (tgt re-creates the LUN; LIO follows the device). */
  extendExport(source: ExportSource): Promise<void>;
  validateConnector(connector: ConnectorProps): void;
  close?(): Promise<void>;
}

export interface TargetContext extends PluginContext {
  backendName: string;
}

// ───────────────────────────── host connectors ─────────────────────────────

export interface ConnectorContext extends PluginContext {}

/**
 * Host side (os-brick): attaches a connection on this host (or on the host its runner reaches).
 * Every method is safe to call after a process restart: AttachInfo carries all it needs.
 */
export interface HostConnector {
  /** driver_volume_type values this connector attaches ("file", "local", "rbd", "iscsi" …). */
  readonly protocols: readonly string[];
  /** This host's properties that this connector contributes (initiator IQN, nqn …). */
  getConnectorProperties(): Promise<Partial<ConnectorProps>>;
  /** Attach; returns the device or file path and what it did. */
  connectVolume(connInfo: ConnectionInfo, opts?: { signal?: AbortSignal }): Promise<AttachInfo>;
  /** Undo exactly what connectVolume did; succeeds when already undone. */
  disconnectVolume(connInfo: ConnectionInfo, attach: AttachInfo, opts?: { force?: boolean }): Promise<void>;
  /** Make a grown volume's new size visible at the attached path; returns the new size in bytes. */
  extendVolume(connInfo: ConnectionInfo, attach: AttachInfo): Promise<number>;
  /** Is the attach still alive (after a restart: the pid still runs, the device still exists)? */
  checkAttached?(attach: AttachInfo): Promise<boolean>;
  close?(): Promise<void>;
}
