import { randomUUID } from "node:crypto";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { StorageError, ErrorCodes, type AttachInfo, type ConnectorProps, type ErrorCode, type HostConnector } from "@cinderts/core";

/**
 * Client of the cinderts server API, for the CLI's `--server URL` mode and for `node register` /
 * `node attach` on consumer hosts. Errors come back as StorageError with the server's stable code, so the
 * CLI maps them to the same exit codes as in-process runs.
 */

export interface ClientOptions {
  /** Base URL, e.g. http://127.0.0.1:8776 */
  url: string;
  token: string;
  /** PEM CA certificate(s) to trust for https (a private CA). */
  ca?: string | Buffer;
  /** Per-request timeout (default 5 min). */
  timeoutMs?: number;
  /** Retries of a request that got no answer or 503 (default 3); POSTs retry with the same Idempotency-Key. */
  retries?: number;
}

/** A failed API call: the server's problem body as a StorageError (code, message, issues). */
export class ApiError extends StorageError {
  constructor(
    readonly status: number,
    code: ErrorCode,
    message: string,
    readonly problem: Record<string, unknown> | undefined,
  ) {
    const issues = problem?.issues;
    super(code, message, {
      ...(problem?.resource ? { resource: problem.resource as never } : {}),
      data: { status, ...(issues ? { issues } : {}), ...(problem?.instance ? { request_id: problem.instance } : {}) },
      retryable: status === 503,
    });
  }
}

type Query = Record<string, string | number | boolean | undefined>;

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A connection as the API shows it (see GET /openapi.json → Connection). */
export interface ConnectionJson {
  id: string;
  backend: string;
  volume_id: string;
  status: string;
  protocol: string;
  connector: ConnectorProps;
  conn_info: { driver_volume_type: string; data: Record<string, unknown> } | null;
  node_id: string | null;
  attached: boolean;
  path?: string;
  attach_info?: AttachInfo | null;
  created_at: string;
}
export interface VolumeJson {
  id: string;
  name: string | null;
  backend: string;
  size: number;
  status: string;
  source_volume_id: string | null;
  snapshot_id: string | null;
  created_at: string;
  updated_at: string;
  metadata: Record<string, string>;
  status_reason?: string;
}
export interface SnapshotJson {
  id: string;
  name: string | null;
  backend: string;
  volume_id: string;
  volume_size: number;
  status: string;
  created_at: string;
  metadata: Record<string, string>;
}

export class CindertsClient {
  private readonly base: URL;

  constructor(private readonly opts: ClientOptions) {
    this.base = new URL(opts.url);
    if (this.base.protocol !== "http:" && this.base.protocol !== "https:") throw new Error(`server URL must be http(s): ${opts.url}`);
  }

  private once(method: string, path: string, query: Query | undefined, body: unknown, headers: Record<string, string>): Promise<RawResponse> {
    const url = new URL(path, this.base);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = url.protocol === "https:" ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const r = req(
        url,
        {
          method,
          headers: {
            Authorization: `Bearer ${this.opts.token}`,
            Accept: "application/json",
            ...(payload ? { "Content-Type": "application/json", "Content-Length": String(payload.length) } : {}),
            ...headers,
          },
          ...(this.opts.ca ? { ca: this.opts.ca } : {}),
          timeout: this.opts.timeoutMs ?? 5 * 60_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("error", reject);
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            let parsed: unknown;
            try {
              parsed = text ? JSON.parse(text) : undefined;
            } catch {
              parsed = text;
            }
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed });
          });
        },
      );
      r.on("timeout", () => r.destroy(new Error(`no answer from ${url.origin} within ${this.opts.timeoutMs ?? 300_000} ms`)));
      r.on("error", reject);
      r.end(payload);
    });
  }

  /** One API call; POST/PUT carry an Idempotency-Key so that a retry after a lost answer acts once. */
  async call<T = unknown>(method: string, path: string, opts: { query?: Query; body?: unknown; idempotencyKey?: string } = {}): Promise<T> {
    const headers: Record<string, string> = {};
    if (method === "POST") headers["Idempotency-Key"] = opts.idempotencyKey ?? randomUUID();
    const retries = this.opts.retries ?? 3;
    for (let attempt = 0; ; attempt++) {
      let res: RawResponse;
      try {
        res = await this.once(method, path, opts.query, opts.body, headers);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (attempt < retries && (code === "ECONNRESET" || code === "ECONNREFUSED" || code === "EPIPE")) {
          await sleep(100 * 2 ** attempt);
          continue;
        }
        throw new StorageError("BACKEND_ERROR", `cinderts server ${this.base.origin}: ${(e as Error).message}`, { cause: e, retryable: true });
      }
      if (res.status === 503 && attempt < retries) {
        await sleep(200 * 2 ** attempt);
        continue;
      }
      if (res.status >= 400) {
        const p = (typeof res.body === "object" && res.body ? res.body : undefined) as Record<string, unknown> | undefined;
        const code = (ErrorCodes as readonly string[]).includes(String(p?.code)) ? (p!.code as ErrorCode) : res.status === 404 ? "NOT_FOUND" : "INTERNAL";
        throw new ApiError(res.status, code, String(p?.detail ?? `HTTP ${res.status}`), p);
      }
      return res.body as T;
    }
  }

  // ───────── backends ─────────
  listBackends() {
    return this.call<Record<string, unknown>[]>("GET", "/v1/backends");
  }
  backendStats(name: string, opts: { refresh?: boolean } = {}) {
    return this.call<Record<string, unknown>>("GET", `/v1/backends/${encodeURIComponent(name)}/stats`, { query: { refresh: opts.refresh } });
  }
  listDrivers() {
    return this.call<Record<string, unknown>[]>("GET", "/v1/drivers");
  }

  // ───────── volumes ─────────
  listVolumes(opts: { backend?: string; includeDeleted?: boolean } = {}) {
    return this.call<VolumeJson[]>("GET", "/v1/volumes", { query: { backend: opts.backend, include_deleted: opts.includeDeleted } });
  }
  getVolume(id: string) {
    return this.call<VolumeJson>("GET", `/v1/volumes/${encodeURIComponent(id)}`);
  }
  /**
   * Create a volume. A clone or a volume from a snapshot is answered with 202 (status creating); with
   * `wait` (default true) this polls until it leaves creating, and throws if it ended in error.
   */
  async createVolume(
    input: { size: number; backend?: string; name?: string; snapshot_id?: string; source_volume_id?: string; metadata?: Record<string, string> },
    opts: { wait?: boolean; idempotencyKey?: string; pollMs?: number; timeoutMs?: number } = {},
  ): Promise<VolumeJson> {
    const v = await this.call<VolumeJson>("POST", "/v1/volumes", { body: input, idempotencyKey: opts.idempotencyKey });
    if (v.status !== "creating" || opts.wait === false) return v;
    return this.waitForVolume(v.id, opts);
  }
  async waitForVolume(id: string, opts: { pollMs?: number; timeoutMs?: number } = {}): Promise<VolumeJson> {
    const deadline = Date.now() + (opts.timeoutMs ?? 3600_000);
    for (;;) {
      const v = await this.getVolume(id);
      if (v.status !== "creating") {
        if (v.status === "error") throw new StorageError("BACKEND_ERROR", `volume ${id} failed: ${v.status_reason ?? "error"}`, { resource: { kind: "volume", id } });
        return v;
      }
      if (Date.now() > deadline) throw new StorageError("TIMEOUT", `volume ${id} is still creating`, { resource: { kind: "volume", id } });
      await sleep(opts.pollMs ?? 200);
    }
  }
  extendVolume(id: string, size: number) {
    return this.call<VolumeJson>("POST", `/v1/volumes/${encodeURIComponent(id)}/extend`, { body: { size } });
  }
  async deleteVolume(id: string, opts: { force?: boolean } = {}): Promise<void> {
    await this.call("DELETE", `/v1/volumes/${encodeURIComponent(id)}`, { query: { force: opts.force } });
  }

  // ───────── snapshots ─────────
  listSnapshots(opts: { volume_id?: string } = {}) {
    return this.call<SnapshotJson[]>("GET", "/v1/snapshots", { query: { volume_id: opts.volume_id } });
  }
  getSnapshot(id: string) {
    return this.call<SnapshotJson>("GET", `/v1/snapshots/${encodeURIComponent(id)}`);
  }
  createSnapshot(input: { volume_id: string; name?: string; metadata?: Record<string, string> }, opts: { idempotencyKey?: string } = {}) {
    return this.call<SnapshotJson>("POST", "/v1/snapshots", { body: input, idempotencyKey: opts.idempotencyKey });
  }
  async deleteSnapshot(id: string): Promise<void> {
    await this.call("DELETE", `/v1/snapshots/${encodeURIComponent(id)}`);
  }

  // ───────── connections ─────────
  connect(input: { volume_id: string; connector?: ConnectorProps; node_id?: string }, opts: { idempotencyKey?: string } = {}) {
    return this.call<ConnectionJson>("POST", "/v1/connections", { body: input, idempotencyKey: opts.idempotencyKey });
  }
  listConnections(opts: { volume_id?: string; node_id?: string } = {}) {
    return this.call<ConnectionJson[]>("GET", "/v1/connections", { query: opts });
  }
  getConnection(id: string, opts: { includeSecrets?: boolean } = {}) {
    return this.call<ConnectionJson>("GET", `/v1/connections/${encodeURIComponent(id)}`, { query: { include_secrets: opts.includeSecrets } });
  }
  async disconnect(id: string, opts: { force?: boolean } = {}): Promise<void> {
    await this.call("DELETE", `/v1/connections/${encodeURIComponent(id)}`, { query: { force: opts.force } });
  }
  validateConnector(backend: string, connector: unknown) {
    return this.call<{ valid: true; connector: ConnectorProps }>("POST", "/v1/connector/validate", { body: { backend, connector } });
  }

  // ───────── nodes (remote attach) ─────────
  registerNode(id: string, connector: ConnectorProps) {
    return this.call<{ id: string; connector: ConnectorProps; registered_at: string; updated_at: string }>("PUT", `/v1/nodes/${encodeURIComponent(id)}`, {
      body: { connector },
    });
  }
  getNode(id: string) {
    return this.call<{ id: string; connector: ConnectorProps }>("GET", `/v1/nodes/${encodeURIComponent(id)}`);
  }
  listNodes() {
    return this.call<{ id: string; connector: ConnectorProps }[]>("GET", "/v1/nodes");
  }
  async deleteNode(id: string): Promise<void> {
    await this.call("DELETE", `/v1/nodes/${encodeURIComponent(id)}`);
  }

  /**
   * On the consumer host: attach a connection the controller exported for this node. Fetches conn_info
   * (with secrets), runs this host's connector, and records the attach on the server. If recording fails,
   * the local attach is undone so nothing is left attached that the server does not know of.
   */
  async attachOnNode(connectionId: string, host: { connectorFor(protocol: string): HostConnector }, opts: { signal?: AbortSignal } = {}) {
    const conn = await this.getConnection(connectionId, { includeSecrets: true });
    if (!conn.conn_info) throw new StorageError("INVALID_STATE", `connection ${connectionId} has no connection info (status ${conn.status})`);
    if (conn.attached && conn.attach_info) return conn;
    const connector = host.connectorFor(conn.conn_info.driver_volume_type);
    const attach = await connector.connectVolume(conn.conn_info, opts);
    try {
      return await this.call<ConnectionJson>("POST", `/v1/connections/${encodeURIComponent(connectionId)}/attachment`, { body: { attach_info: attach } });
    } catch (e) {
      await connector.disconnectVolume(conn.conn_info, attach, { force: true }).catch(() => undefined);
      throw e;
    }
  }

  /** On the consumer host: undo attachOnNode (runs this host's connector), then record the detach. */
  async detachOnNode(connectionId: string, host: { connectorFor(protocol: string): HostConnector }, opts: { force?: boolean } = {}) {
    const conn = await this.getConnection(connectionId, { includeSecrets: true });
    if (conn.conn_info && conn.attach_info) {
      await host.connectorFor(conn.conn_info.driver_volume_type).disconnectVolume(conn.conn_info, conn.attach_info, { force: opts.force ?? false });
    }
    return this.call<ConnectionJson>("DELETE", `/v1/connections/${encodeURIComponent(connectionId)}/attachment`);
  }

  // ───────── state ─────────
  dumpState(opts: { backend?: string; includeSecrets?: boolean } = {}) {
    return this.call<Record<string, unknown>>("GET", "/v1/state", { query: { backend: opts.backend, include_secrets: opts.includeSecrets } });
  }
  loadState(dump: unknown, opts: { persist?: boolean } = {}) {
    return this.call<{ written: Record<string, number>; counts: Record<string, number> }>("POST", "/v1/state/load", {
      body: { dump, persist: opts.persist ?? false },
    });
  }
  reconcile(opts: { backend?: string; delete_orphans?: boolean; stale_after_ms?: number } = {}) {
    return this.call<{ actions: unknown[]; orphans: unknown[]; missing: unknown[]; skipped: unknown[] }>("POST", "/v1/reconcile", { body: opts });
  }
}
