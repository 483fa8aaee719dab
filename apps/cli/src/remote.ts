import {
  AlreadyExistsError,
  AuthError,
  BackendError,
  BusyError,
  CommandError,
  ConfigError,
  ConflictError,
  HasDependentsError,
  InUseError,
  InvalidArgumentError,
  InvalidStateError,
  LockTimeoutError,
  NotFoundError,
  PluginError,
  ResourceIdSchema,
  StorageError,
  TimeoutError,
  UnsupportedError,
  isStorageError,
  redact,
  type BackendStats,
  type ConnectionView,
  type ErrorCode,
  type ReconcileReport,
  type ResourceKind,
  type SnapshotView,
  type VolumeView,
} from "@cinderts/core";
// Types only: the client itself is imported when the first command needs it (see connect()).
import type { ApiError, CindertsClient } from "@cinderts/server/client";
import type { CommandContext } from "./commands.js";
import type { DriverInfo } from "./drivers.js";
import { defaultBackendName, type BackendDescription, type CreateVolumeArgs, type LoadSummary, type Service, type ServerTarget } from "./service.js";

/** The core class of each code, so that a server's error prints and exits exactly like the same error in-process. */
const CLASS_OF: Record<ErrorCode, { prototype: StorageError; name: string }> = {
  INVALID_ARGUMENT: InvalidArgumentError,
  CONFIG_ERROR: ConfigError,
  PLUGIN_ERROR: PluginError,
  NOT_FOUND: NotFoundError,
  ALREADY_EXISTS: AlreadyExistsError,
  INVALID_STATE: InvalidStateError,
  IN_USE: InUseError,
  HAS_DEPENDENTS: HasDependentsError,
  CONFLICT: ConflictError,
  BUSY: BusyError,
  LOCK_TIMEOUT: LockTimeoutError,
  TIMEOUT: TimeoutError,
  BACKEND_ERROR: BackendError,
  COMMAND_FAILED: CommandError,
  UNSUPPORTED: UnsupportedError,
  UNAUTHENTICATED: AuthError,
  FORBIDDEN: AuthError,
  INTERNAL: StorageError,
};
const RETRYABLE = new Set<ErrorCode>(["CONFLICT", "BUSY", "LOCK_TIMEOUT", "TIMEOUT"]);

/**
 * A server's problem body (RFC 7807 with `code`) back as the core error it was on the server: same class, code,
 * message, resource and data, so `--json` errors and exit codes do not depend on the mode. The HTTP status and
 * request id stay reachable as the cause.
 */
export function toCoreError(e: unknown): unknown {
  // Duck-typed: the client module is loaded lazily, and a bundler may rename its class.
  if (!isStorageError(e) || typeof (e as Partial<ApiError>).status !== "number" || !("problem" in e)) return e;
  const api = e as ApiError;
  const p = api.problem ?? {};
  const data: Record<string, unknown> = { ...(p.data as Record<string, unknown> | undefined), ...(p.issues ? { issues: p.issues } : {}) };
  const cls = CLASS_OF[api.code] ?? StorageError;
  const err = new StorageError(api.code, api.message, {
    ...(p.resource ? { resource: p.resource as never } : {}),
    ...(Object.keys(data).length ? { data } : {}),
    ...(RETRYABLE.has(api.code) ? { retryable: true } : {}),
    cause: e,
  });
  Object.setPrototypeOf(err, cls.prototype);
  err.name = cls.name;
  if (api.code === "HAS_DEPENDENTS") Object.assign(err, { dependents: data.dependents ?? [] });
  return err;
}

/** GET /v1/connections/{id}?include_secrets also returns attach_info (for consumers); the CLI's view has none. */
function withoutAttachInfo<T extends Record<string, unknown>>(c: T): ConnectionView {
  const { attach_info: _a, ...rest } = c;
  return rest as unknown as ConnectionView;
}

/** Ids the server's routes would refuse as malformed: in-process such an id is simply not found. */
function checkId(kind: ResourceKind, id: string): void {
  if (!ResourceIdSchema.safeParse(id).success) throw new NotFoundError(kind, id);
}

/**
 * Every command against a cinderts server (--server URL). Things that happen on THIS host — running a
 * connector to attach, reading this host's connector properties — still happen here, with the local manifest's
 * connectors (ctx.open()); the server exports and records.
 */
export class RemoteService implements Service {
  readonly mode = "server";
  private client: Promise<CindertsClient> | undefined;

  constructor(
    private readonly ctx: CommandContext,
    private readonly target: ServerTarget,
  ) {}

  private api(): Promise<CindertsClient> {
    return (this.client ??= import("@cinderts/server/client").then(({ CindertsClient }) => new CindertsClient({ url: this.target.url, token: this.target.token })));
  }

  /** One API call with the server's errors turned back into core errors. */
  private async call<T>(fn: (c: CindertsClient) => Promise<T>): Promise<T> {
    const c = await this.api();
    try {
      return await fn(c);
    } catch (e) {
      throw toCoreError(e);
    }
  }

  /**
   * As in-process: an unknown backend is NOT_FOUND naming the known ones. The server says INVALID_ARGUMENT for a
   * backend in a request body, and for a name that is not an identifier; so names are checked here first.
   */
  private async backendName(name: string | undefined): Promise<string> {
    const names = (await this.backends()).map((b) => b.name);
    if (name === undefined) return defaultBackendName(names);
    if (!names.includes(name)) throw new NotFoundError("backend", name, { data: { known: names } });
    return name;
  }

  backends() {
    return this.call((c) => c.listBackends()) as Promise<BackendDescription[]>;
  }

  async stats(name: string | undefined, opts: { refresh: boolean }) {
    const names = name !== undefined ? [await this.backendName(name)] : (await this.backends()).map((b) => b.name);
    const out: BackendStats[] = [];
    for (const n of names) out.push((await this.call((c) => c.backendStats(n, opts))) as unknown as BackendStats);
    return out;
  }

  drivers() {
    return this.call((c) => c.listDrivers()) as unknown as Promise<DriverInfo[]>;
  }

  async createVolume(args: CreateVolumeArgs) {
    const { size, backend, ...input } = args;
    let sourceSize: number | undefined;
    if (input.snapshot_id) sourceSize = (await this.getSnapshot(input.snapshot_id)).volume_size;
    else if (input.source_volume_id) sourceSize = (await this.getVolume(input.source_volume_id)).size;
    // A copy goes to its source's backend on the server too; naming the backend is checked like in-process.
    const name = backend !== undefined || sourceSize === undefined ? await this.backendName(backend) : undefined;
    const v = await this.call((c) => c.createVolume({ ...input, size: size ?? sourceSize!, ...(name ? { backend: name } : {}) }));
    return v as unknown as VolumeView;
  }

  async listVolumes(opts: { backend?: string; all: boolean }) {
    if (opts.backend !== undefined) await this.backendName(opts.backend);
    return (await this.call((c) => c.listVolumes({ backend: opts.backend, includeDeleted: opts.all }))) as unknown as VolumeView[];
  }

  async getVolume(id: string) {
    checkId("volume", id);
    return (await this.call((c) => c.getVolume(id))) as unknown as VolumeView;
  }

  async extendVolume(id: string, size: number) {
    checkId("volume", id);
    return (await this.call((c) => c.extendVolume(id, size))) as unknown as VolumeView;
  }

  async deleteVolume(id: string, opts: { force: boolean }) {
    checkId("volume", id);
    await this.call((c) => c.deleteVolume(id, opts));
    return this.getVolume(id);
  }

  /**
   * cinderlib's remote attach, from the consumer's side: the server exports the volume for this host's
   * connector properties (under this host's node id), this host's connector attaches it, and the server records
   * the attach (CindertsClient.attachOnNode, as `node attach`). A failed local attach leaves nothing exported.
   */
  async attachVolume(id: string) {
    checkId("volume", id);
    await this.getVolume(id);
    const host = await this.ctx.open();
    const connector = await host.connectorProperties();
    const conn = await this.call((c) => c.connect({ volume_id: id, connector, node_id: host.nodeId }));
    try {
      return (await this.call((c) => c.attachOnNode(conn.id, host, { signal: this.ctx.signal }))) as unknown as ConnectionView;
    } catch (e) {
      await this.call((c) => c.disconnect(conn.id, { force: true })).catch(() => undefined);
      throw e;
    }
  }

  /** Detach what attachVolume attached for this node (this host's connector runs), then disconnect it. */
  async detachVolume(id: string, opts: { force: boolean }) {
    checkId("volume", id);
    await this.getVolume(id);
    const host = await this.ctx.open();
    const mine = (await this.call((c) => c.listConnections({ volume_id: id, node_id: host.nodeId }))).filter((c) => c.attached);
    if (!mine.length) {
      throw new InvalidStateError(`volume ${id} is not attached on this node (${host.nodeId})`, { resource: { kind: "volume", id } });
    }
    for (const conn of mine) {
      await this.call((c) => c.detachOnNode(conn.id, host, opts));
      await this.call((c) => c.disconnect(conn.id, opts));
    }
    return this.getVolume(id);
  }

  async connect(id: string, connector: unknown, opts: { secrets: boolean }) {
    checkId("volume", id);
    const conn = await this.call((c) => c.connect({ volume_id: id, connector: connector as never }));
    // The server answers with secrets redacted; the host that logs in needs them.
    if (opts.secrets) return this.getConnection(conn.id, opts);
    return conn as unknown as ConnectionView;
  }

  async createSnapshot(input: { volume_id: string; name?: string; metadata?: Record<string, string> }) {
    return (await this.call((c) => c.createSnapshot(input))) as unknown as SnapshotView;
  }

  async listSnapshots(opts: { volume_id?: string; all: boolean }) {
    if (opts.volume_id !== undefined && !ResourceIdSchema.safeParse(opts.volume_id).success) return [];
    return this.call((c) =>
      c.call<SnapshotView[]>("GET", "/v1/snapshots", { query: { volume_id: opts.volume_id, include_deleted: opts.all || undefined } }),
    );
  }

  async getSnapshot(id: string) {
    checkId("snapshot", id);
    return (await this.call((c) => c.getSnapshot(id))) as unknown as SnapshotView;
  }

  async deleteSnapshot(id: string) {
    checkId("snapshot", id);
    await this.call((c) => c.deleteSnapshot(id));
    return this.getSnapshot(id);
  }

  async listConnections(opts: { volume_id?: string; secrets: boolean }) {
    if (opts.volume_id !== undefined && !ResourceIdSchema.safeParse(opts.volume_id).success) return [];
    const list = await this.call((c) => c.listConnections({ volume_id: opts.volume_id }));
    if (!opts.secrets) return list as unknown as ConnectionView[];
    // Lists are always redacted by the server; secrets come one connection at a time (admin only).
    const out: ConnectionView[] = [];
    for (const conn of list) out.push(await this.getConnection(conn.id, opts));
    return out;
  }

  async getConnection(id: string, opts: { secrets: boolean }) {
    checkId("connection", id);
    const conn = await this.call((c) => c.getConnection(id, { includeSecrets: opts.secrets }));
    return withoutAttachInfo(conn as unknown as Record<string, unknown>);
  }

  async disconnect(id: string, opts: { force: boolean }) {
    try {
      await this.call((c) => c.disconnect(id, opts));
      return true;
    } catch (e) {
      // As in-process: a connection that is gone is already disconnected.
      if (isStorageError(e) && e.code === "NOT_FOUND" && e.details.resource?.kind === "connection") return false;
      throw e;
    }
  }

  async connectorProperties() {
    return (await this.ctx.open()).connectorProperties();
  }

  // ───────── consumer-host commands (node register / attach / detach): server mode only ─────────

  async registerNode() {
    const host = await this.ctx.open();
    const props = await host.connectorProperties();
    return this.call((c) => c.registerNode(host.nodeId, props));
  }

  async attachConnection(id: string) {
    const host = await this.ctx.open();
    return this.call((c) => c.attachOnNode(id, host, { signal: this.ctx.signal }));
  }

  async detachConnection(id: string) {
    const host = await this.ctx.open();
    return this.call((c) => c.detachOnNode(id, host));
  }

  async validateConnector(backend: string | undefined, connector: unknown) {
    const name = await this.backendName(backend);
    const r = await this.call((c) => c.validateConnector(name, connector));
    return { valid: true as const, backend: name, connector: redact(r.connector) };
  }

  async dump(opts: { backend?: string; includeSecrets: boolean }) {
    if (opts.backend !== undefined) await this.backendName(opts.backend);
    return this.call((c) => c.dumpState(opts));
  }

  async load(dump: unknown, opts: { check: boolean }): Promise<LoadSummary> {
    const r = await this.call((c) => c.loadState(dump, { persist: !opts.check }));
    return { ...(r.counts as { volumes: number; snapshots: number; connections: number }), written: r.written as LoadSummary["written"] };
  }

  async reconcile(opts: { backend?: string; deleteOrphans: boolean; staleAfterMs?: number }) {
    const backend = opts.backend === undefined ? undefined : await this.backendName(opts.backend);
    // The API takes whole positive milliseconds; 0 s ("every intent of other hosts is dead") is 1 ms there.
    const stale = opts.staleAfterMs === undefined ? undefined : Math.max(1, Math.ceil(opts.staleAfterMs));
    const r = await this.call((c) => c.reconcile({ backend, delete_orphans: opts.deleteOrphans, stale_after_ms: stale }));
    return r as unknown as ReconcileReport;
  }
}
