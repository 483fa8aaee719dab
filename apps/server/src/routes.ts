import {
  InvalidArgumentError,
  InvalidStateError,
  NotFoundError,
  TimeoutError,
  connectionView,
  newId,
  redact,
  snapshotView,
  volumeView,
  withLocks,
  type Backend,
  type z,
  type Cinderts,
  type ConnectorProps,
  type Logger,
  type VolumeRecord,
} from "@cinderts/core";
import { requireRole } from "./auth.js";
import type { ServerConfig } from "./config.js";
import { listDrivers } from "./drivers.js";
import type { Reply, RequestContext, ResponseSpec, Route } from "./http.js";
import type { Metrics } from "./metrics.js";
import * as S from "./schemas.js";

/** What route handlers share: the composed library, settings, metrics and the background-work tracker. */
export interface App {
  ct: Cinderts;
  config: ServerConfig;
  metrics: Metrics;
  logger: Logger;
  fromUrl: string;
  /** Keep a long operation alive past its request; shutdown waits for it. */
  track(p: Promise<unknown>): void;
  isDraining(): boolean;
}

/** Run one storage operation with its metrics (count, duration, errors by code) per backend. */
async function op<T>(app: App, backend: string, name: string, fn: () => Promise<T>): Promise<T> {
  const started = performance.now();
  try {
    const r = await fn();
    app.metrics.operations.inc({ backend, op: name, outcome: "ok" });
    return r;
  } catch (e) {
    const code = (e as { code?: string }).code ?? "INTERNAL";
    app.metrics.operations.inc({ backend, op: name, outcome: "error" });
    app.metrics.operationErrors.inc({ backend, op: name, code });
    throw e;
  } finally {
    app.metrics.operationSeconds.observe({ backend, op: name }, (performance.now() - started) / 1000);
  }
}

const NODE_PREFIX = "server:node:";
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const problem = (description: string): ResponseSpec => ({ description, schema: S.Problem });
const common = { 400: problem("bad request: `issues` names each bad field"), 401: problem("no or invalid token") };
const read = { ...common, 404: problem("unknown id") };
const write = { ...read, 403: problem("the token's role is not allowed"), 409: problem("the object's status does not allow it") };

const ok = (body: unknown, status = 200, headers?: Record<string, string>): Reply => ({ status, body, headers });
const none = (): Reply => ({ status: 204 });

/** The default backend of a new volume when the request names none. */
function pickBackend(app: App, name: string | undefined): Backend {
  if (name !== undefined) {
    const b = app.ct.backends.get(name);
    if (!b) {
      throw new InvalidArgumentError(`unknown backend ${name}`, {
        issues: [{ path: "body.backend", message: `unknown backend; known: ${[...app.ct.backends.keys()].join(", ")}` }],
      });
    }
    return b;
  }
  if (app.ct.backends.size === 1) return [...app.ct.backends.values()][0]!;
  const d = app.ct.backends.get("default");
  if (d) return d;
  throw new InvalidArgumentError("several backends are configured: name one", {
    issues: [{ path: "body.backend", message: `required; one of ${[...app.ct.backends.keys()].join(", ")}` }],
  });
}

const redactor = (secrets: boolean) => ({ redact: (x: unknown) => (secrets ? x : redact(x)) });

/**
 * Clone and create-from-snapshot: the copy runs after the answer. Wait until the record exists (in
 * `creating`), answer 202 with it, and let the operation finish in the background; clients poll GET.
 */
async function startLongCreate(app: App, backend: Backend, input: Record<string, unknown>, opName: string): Promise<Reply> {
  const id = newId();
  let settled: { ok: true; v: VolumeRecord } | { ok: false; e: unknown } | undefined;
  const running = op(app, backend.name, opName, () => backend.createVolume({ ...input, id } as never)).then(
    (v) => {
      settled = { ok: true, v };
      return v;
    },
    (e: unknown) => {
      settled = { ok: false, e };
      app.logger.warn("long operation failed", { op: opName, volumeId: id, error: e });
    },
  );
  app.track(running);
  const deadline = Date.now() + app.config.wait_for_record_ms;
  const location = { Location: `/v1/volumes/${id}` };
  for (let delay = 2; ; delay = Math.min(delay * 2, 50)) {
    if (settled) {
      if (!settled.ok) {
        // Failed before or during the copy: if a record exists it says why (error); else the input was refused.
        const rec = await app.ct.persistence.get("volume", id);
        if (!rec) throw settled.e;
        return ok(volumeView(rec), 202, location);
      }
      return ok(volumeView(settled.v), 202, location);
    }
    const rec = await app.ct.persistence.get("volume", id);
    if (rec) return ok(volumeView(rec), 202, location);
    if (Date.now() > deadline) {
      throw new TimeoutError(`the ${opName} did not start within ${app.config.wait_for_record_ms} ms (source busy); volume ${id} may appear later`, {
        resource: { kind: "volume", id },
      });
    }
    await sleep(delay);
  }
}

interface NodeRecord {
  id: string;
  connector: ConnectorProps;
  registered_at: string;
  updated_at: string;
}

async function getNode(app: App, id: string): Promise<NodeRecord> {
  const n = (await app.ct.persistence.getKey(NODE_PREFIX + id)) as NodeRecord | undefined;
  if (!n) throw new NotFoundError("node", id);
  return n;
}

export function buildRoutes(app: App): Route[] {
  const { ct } = app;
  const routes: Route[] = [
    // ───────── health, metrics, docs ─────────
    {
      method: "GET", path: "/healthz", tag: "service", role: "public", summary: "Liveness: the process serves requests",
      responses: { 200: { description: "alive" } },
      handler: async () => ok({ status: "ok" }),
    },
    {
      method: "GET", path: "/readyz", tag: "service", role: "public", summary: "Readiness: persistence reachable and not shutting down",
      responses: { 200: { description: "ready" }, 503: problem("not ready") },
      handler: async () => {
        if (app.isDraining()) return { status: 503, body: { status: "draining" } };
        try {
          await ct.persistence.getKey("server:readyz");
          return ok({ status: "ready" });
        } catch (e) {
          return { status: 503, body: { status: "unavailable", reason: (e as Error).message } };
        }
      },
    },
    {
      method: "GET", path: "/metrics", tag: "service", role: app.config.metrics_public ? "public" : "reader",
      summary: "Prometheus metrics: requests, and operations, durations and errors per backend",
      responses: { 200: { description: "Prometheus text format 0.0.4" }, 401: problem("no or invalid token") },
      handler: async () => ({ status: 200, text: { contentType: "text/plain; version=0.0.4; charset=utf-8", body: app.metrics.render() } }),
    },

    // ───────── backends, drivers ─────────
    {
      method: "GET", path: "/v1/backends", tag: "backends", role: "reader", summary: "Configured backends (options redacted)",
      responses: { 200: { description: "backends", schema: S.BackendView.array() }, ...common },
      handler: async () => ok([...ct.backends.values()].map((b) => b.describe())),
    },
    {
      method: "GET", path: "/v1/backends/{name}", tag: "backends", role: "reader", summary: "One backend",
      params: S.NameParams,
      responses: { 200: { description: "backend", schema: S.BackendView }, ...read },
      handler: async ({ params }: RequestContext<{ name: string }>) => ok(ct.backend(params.name).describe()),
    },
    {
      method: "GET", path: "/v1/backends/{name}/stats", tag: "backends", role: "reader",
      summary: "Capacity stats with Cinder's field names (refresh=true asks the backend again)",
      params: S.NameParams, query: S.StatsQuery,
      responses: { 200: { description: "stats", schema: S.StatsView }, ...read, 502: problem("the backend failed") },
      handler: async ({ params, query }: RequestContext<{ name: string }, { refresh?: boolean }>) => {
        const b = ct.backend(params.name);
        return ok(await op(app, b.name, "stats", () => b.stats({ refresh: query.refresh ?? false })));
      },
    },
    {
      method: "GET", path: "/v1/drivers", tag: "backends", role: "reader", summary: "Installed driver plugins with their option schemas",
      responses: { 200: { description: "drivers", schema: S.DriverView.array() }, ...common },
      handler: async () => ok(await listDrivers(ct.loaded, app.fromUrl)),
    },

    // ───────── volumes ─────────
    {
      method: "GET", path: "/v1/volumes", tag: "volumes", role: "reader", summary: "List volumes",
      query: S.ListVolumesQuery,
      responses: { 200: { description: "volumes", schema: S.VolumeView.array() }, ...common },
      handler: async ({ query }: RequestContext<never, { backend?: string; include_deleted?: boolean }>) => {
        if (query.backend && !ct.backends.has(query.backend)) throw new NotFoundError("backend", query.backend);
        const list = await ct.listVolumes({ backend: query.backend, includeDeleted: query.include_deleted });
        return ok(list.map(volumeView));
      },
    },
    {
      method: "POST", path: "/v1/volumes", tag: "volumes", role: "admin", idempotent: true,
      summary: "Create a volume; from a snapshot or a clone of a volume this is long: 202 with status creating, poll GET",
      body: S.CreateVolumeBody,
      responses: {
        201: { description: "created (empty volume)", schema: S.VolumeView },
        202: { description: "accepted (clone / from snapshot): poll Location until status is not creating", schema: S.VolumeView },
        ...write,
      },
      handler: async ({ body }: RequestContext<never, never, z.infer<typeof S.CreateVolumeBody>>) => {
        const { backend: name, ...input } = body;
        if (input.snapshot_id || input.source_volume_id) {
          const src = input.snapshot_id ? await ct.getSnapshot(input.snapshot_id) : await ct.getVolume(input.source_volume_id!);
          if (name !== undefined && name !== src.backend) {
            throw new InvalidArgumentError(`the source is on backend ${src.backend}; copies across backends are not supported`, {
              issues: [{ path: "body.backend", message: `must be ${src.backend} (the source's backend) or omitted` }],
            });
          }
          const b = ct.backend(src.backend);
          return startLongCreate(app, b, input, input.snapshot_id ? "create_from_snapshot" : "clone");
        }
        const b = pickBackend(app, name);
        const v = await op(app, b.name, "create", () => b.createVolume(input));
        return ok(volumeView(v), 201, { Location: `/v1/volumes/${v.id}` });
      },
    },
    {
      method: "GET", path: "/v1/volumes/{id}", tag: "volumes", role: "reader", summary: "One volume",
      params: S.IdParams,
      responses: { 200: { description: "volume", schema: S.VolumeView }, ...read },
      handler: async ({ params }: RequestContext<{ id: string }>) => ok(volumeView(await ct.getVolume(params.id))),
    },
    {
      method: "POST", path: "/v1/volumes/{id}/extend", tag: "volumes", role: "admin", idempotent: true,
      summary: "Grow a volume to size GiB", params: S.IdParams, body: S.ExtendBody,
      responses: { 200: { description: "extended", schema: S.VolumeView }, ...write },
      handler: async ({ params, body }: RequestContext<{ id: string }, never, { size: number }>) => {
        const b = await ct.backendForVolume(params.id);
        return ok(volumeView(await op(app, b.name, "extend", () => b.extendVolume({ id: params.id, size: body.size }))));
      },
    },
    {
      method: "DELETE", path: "/v1/volumes/{id}", tag: "volumes", role: "admin",
      summary: "Delete a volume (again: succeeds); force=true also disconnects and deletes its snapshots",
      params: S.IdParams, query: S.DeleteQuery,
      responses: { 204: { description: "deleted" }, ...write },
      handler: async ({ params, query }: RequestContext<{ id: string }, { force?: boolean }>) => {
        const b = await ct.backendForVolume(params.id);
        await op(app, b.name, "delete", () => b.deleteVolume({ id: params.id, force: query.force ?? false }));
        return none();
      },
    },

    // ───────── snapshots ─────────
    {
      method: "GET", path: "/v1/snapshots", tag: "snapshots", role: "reader", summary: "List snapshots",
      query: S.ListSnapshotsQuery,
      responses: { 200: { description: "snapshots", schema: S.SnapshotView.array() }, ...common },
      handler: async ({ query }: RequestContext<never, { volume_id?: string; include_deleted?: boolean }>) =>
        ok((await ct.listSnapshots({ volume_id: query.volume_id, includeDeleted: query.include_deleted })).map(snapshotView)),
    },
    {
      method: "POST", path: "/v1/snapshots", tag: "snapshots", role: "admin", idempotent: true, summary: "Snapshot a volume",
      body: S.CreateSnapshotBody,
      responses: { 201: { description: "created", schema: S.SnapshotView }, ...write },
      handler: async ({ body }: RequestContext<never, never, { volume_id: string; name?: string; metadata?: Record<string, string> }>) => {
        const b = await ct.backendForVolume(body.volume_id);
        const s = await op(app, b.name, "create_snapshot", () => b.createSnapshot(body));
        return ok(snapshotView(s), 201, { Location: `/v1/snapshots/${s.id}` });
      },
    },
    {
      method: "GET", path: "/v1/snapshots/{id}", tag: "snapshots", role: "reader", summary: "One snapshot",
      params: S.IdParams,
      responses: { 200: { description: "snapshot", schema: S.SnapshotView }, ...read },
      handler: async ({ params }: RequestContext<{ id: string }>) => ok(snapshotView(await ct.getSnapshot(params.id))),
    },
    {
      method: "DELETE", path: "/v1/snapshots/{id}", tag: "snapshots", role: "admin", summary: "Delete a snapshot (again: succeeds)",
      params: S.IdParams,
      responses: { 204: { description: "deleted" }, ...write },
      handler: async ({ params }: RequestContext<{ id: string }>) => {
        const b = await ct.backendForSnapshot(params.id);
        await op(app, b.name, "delete_snapshot", () => b.deleteSnapshot(params.id));
        return none();
      },
    },

    // ───────── connections ─────────
    {
      method: "GET", path: "/v1/connections", tag: "connections", role: "reader", summary: "List connections",
      query: S.ListConnectionsQuery,
      responses: { 200: { description: "connections (secrets redacted)", schema: S.ConnectionView.array() }, ...common },
      handler: async ({ query }: RequestContext<never, { volume_id?: string; node_id?: string }>) => {
        const all = await ct.listConnections({ volume_id: query.volume_id });
        const list = query.node_id ? all.filter((c) => c.node_id === query.node_id) : all;
        return ok(list.map((c) => connectionView(c, redactor(false))));
      },
    },
    {
      method: "POST", path: "/v1/connections", tag: "connections", role: "admin", idempotent: true,
      summary: "Export and map a volume to a consumer (cinderlib connect): connector given, or node_id of a registered node",
      body: S.ConnectBody,
      responses: { 201: { description: "connected: conn_info says how to attach (secrets redacted; GET with include_secrets)", schema: S.ConnectionView }, ...write },
      handler: async ({ body }: RequestContext<never, never, { volume_id: string; connector?: ConnectorProps; node_id?: string }>) => {
        const connector = body.connector ?? (await getNode(app, body.node_id!)).connector;
        const b = await ct.backendForVolume(body.volume_id);
        const c = await op(app, b.name, "connect", () => b.connect({ volume_id: body.volume_id, connector, node_id: body.node_id }));
        return ok(connectionView(c, redactor(false)), 201, { Location: `/v1/connections/${c.id}` });
      },
    },
    {
      method: "GET", path: "/v1/connections/{id}", tag: "connections", role: "reader",
      summary: "One connection; include_secrets=true (admin) returns conn_info with CHAP secrets for the consumer",
      params: S.IdParams, query: S.SecretsQuery,
      responses: { 200: { description: "connection", schema: S.ConnectionView }, ...read, 403: problem("secrets need admin") },
      handler: async ({ params, query, principal }: RequestContext<{ id: string }, { include_secrets?: boolean }>) => {
        if (query.include_secrets) requireRole(principal!, "admin", "include_secrets");
        const c = await ct.getConnection(params.id);
        // The consumer that attached needs its attach_info (handles) back to detach after a restart.
        return ok({ ...connectionView(c, redactor(query.include_secrets ?? false)), ...(query.include_secrets ? { attach_info: c.attach_info } : {}) });
      },
    },
    {
      method: "DELETE", path: "/v1/connections/{id}", tag: "connections", role: "admin",
      summary: "Disconnect: unmap and remove the export when it was the last connection",
      params: S.IdParams, query: S.DeleteQuery,
      responses: { 204: { description: "disconnected" }, ...write },
      handler: async ({ params, query }: RequestContext<{ id: string }, { force?: boolean }>) => {
        const b = await ct.backendForConnection(params.id);
        await op(app, b.name, "disconnect", () => b.disconnect(params.id, { force: query.force ?? false }));
        return none();
      },
    },
    {
      method: "POST", path: "/v1/connections/{id}/attachment", tag: "connections", role: "admin", idempotent: true,
      summary: "A consumer node records that it attached the connection (its connector ran there)",
      params: S.IdParams, body: S.AttachmentBody,
      responses: { 200: { description: "attached", schema: S.ConnectionView }, ...write },
      handler: async ({ params, body }: RequestContext<{ id: string }, never, z.infer<typeof S.AttachmentBody>>) => {
        const first = await ct.getConnection(params.id);
        const b = ct.backend(first.backend);
        const c = await withLocks(ct.locks, [`volume:${first.volume_id}`], async () => {
          const cur = await b.getConnection(params.id);
          if (!cur.conn_info || !["connected", "attached"].includes(cur.status)) {
            throw new InvalidStateError(`connection ${cur.id} is ${cur.status}; it must be connected to attach`, {
              resource: { kind: "connection", id: cur.id },
            });
          }
          if (cur.node_id && body.attach_info.host !== cur.node_id && body.attach_info.host !== cur.connector.host) {
            throw new InvalidArgumentError(`connection ${cur.id} is for node ${cur.node_id}, not ${body.attach_info.host}`, {
              issues: [{ path: "body.attach_info.host", message: `must be ${cur.node_id}` }],
            });
          }
          return b.save("connection", { ...cur, status: "attached", attach_info: body.attach_info, intent: null, status_reason: null }, cur);
        });
        return ok(connectionView(c, redactor(false)));
      },
    },
    {
      method: "DELETE", path: "/v1/connections/{id}/attachment", tag: "connections", role: "admin",
      summary: "A consumer node records that it detached (again: succeeds)",
      params: S.IdParams,
      responses: { 200: { description: "detached (connection stays connected)", schema: S.ConnectionView }, ...write },
      handler: async ({ params }: RequestContext<{ id: string }>) => {
        const first = await ct.getConnection(params.id);
        const b = ct.backend(first.backend);
        const c = await withLocks(ct.locks, [`volume:${first.volume_id}`], async () => {
          const cur = await b.getConnection(params.id);
          if (!cur.attach_info) return cur;
          return b.save("connection", { ...cur, status: "connected", attach_info: null, intent: null }, cur);
        });
        return ok(connectionView(c, redactor(false)));
      },
    },
    {
      method: "POST", path: "/v1/connector/validate", tag: "connections", role: "reader",
      summary: "Check a consumer's connector properties against a backend (400 names what is missing)",
      body: S.ValidateConnectorBody,
      responses: { 200: { description: "valid", schema: S.ValidateConnectorView }, ...read },
      handler: async ({ body }: RequestContext<never, never, { backend: string; connector: unknown }>) => {
        const b = ct.backend(body.backend);
        try {
          return ok({ valid: true, connector: await b.validateConnector(body.connector) });
        } catch (e) {
          const err = e as InvalidArgumentError;
          if (err.code === "INVALID_ARGUMENT") {
            const issues = err.issues.length ? err.issues.map((i) => ({ ...i, path: `body.connector${i.path ? `.${i.path}` : ""}` })) : [{ path: "body.connector", message: err.message }];
            throw new InvalidArgumentError(err.message, { issues, cause: e });
          }
          throw e;
        }
      },
    },

    // ───────── nodes ─────────
    {
      method: "PUT", path: "/v1/nodes/{id}", tag: "nodes", role: "admin",
      summary: "Register (or update) a consumer node's connector properties under its node id",
      params: S.IdParams, body: S.NodeBody,
      responses: { 200: { description: "registered", schema: S.NodeView }, ...common, 403: problem("needs admin") },
      handler: async ({ params, body }: RequestContext<{ id: string }, never, { connector: ConnectorProps }>) => {
        const key = NODE_PREFIX + params.id;
        const node = await withLocks(ct.locks, [`node:${params.id}`], async () => {
          const prior = (await ct.persistence.getKey(key)) as NodeRecord | undefined;
          const now = new Date().toISOString();
          const rec: NodeRecord = { id: params.id, connector: body.connector, registered_at: prior?.registered_at ?? now, updated_at: now };
          await ct.persistence.setKey(key, rec);
          return rec;
        });
        return ok({ ...node, connector: redact(node.connector) });
      },
    },
    {
      method: "GET", path: "/v1/nodes", tag: "nodes", role: "reader", summary: "Registered nodes",
      responses: { 200: { description: "nodes", schema: S.NodeView.array() }, ...common },
      handler: async () => {
        const out = [];
        for (const k of await ct.persistence.listKeys(NODE_PREFIX)) {
          const n = (await ct.persistence.getKey(k)) as NodeRecord | undefined;
          if (n) out.push({ ...n, connector: redact(n.connector) });
        }
        return ok(out);
      },
    },
    {
      method: "GET", path: "/v1/nodes/{id}", tag: "nodes", role: "reader", summary: "One node",
      params: S.IdParams,
      responses: { 200: { description: "node", schema: S.NodeView }, ...read },
      handler: async ({ params }: RequestContext<{ id: string }>) => {
        const n = await getNode(app, params.id);
        return ok({ ...n, connector: redact(n.connector) });
      },
    },
    {
      method: "DELETE", path: "/v1/nodes/{id}", tag: "nodes", role: "admin", summary: "Forget a node (again: succeeds)",
      params: S.IdParams,
      responses: { 204: { description: "removed" }, ...common, 403: problem("needs admin") },
      handler: async ({ params }: RequestContext<{ id: string }>) => {
        await ct.persistence.deleteKey(NODE_PREFIX + params.id);
        return none();
      },
    },

    // ───────── state, reconcile ─────────
    {
      method: "GET", path: "/v1/state", tag: "state", role: "reader",
      summary: "State dump (versioned JSON); include_secrets=true needs admin",
      query: S.DumpQuery,
      responses: { 200: { description: "dump" }, ...read, 403: problem("secrets need admin") },
      handler: async ({ query, principal }: RequestContext<never, { backend?: string; include_secrets?: boolean }>) => {
        if (query.include_secrets) requireRole(principal!, "admin", "include_secrets");
        return ok(await ct.dump({ backend: query.backend, includeSecrets: query.include_secrets ?? false }));
      },
    },
    {
      method: "POST", path: "/v1/state/load", tag: "state", role: "admin", idempotent: true,
      summary: "Load a state dump: checks it; persist=true writes its records",
      body: S.LoadBody,
      responses: { 200: { description: "loaded", schema: S.LoadView }, ...write },
      handler: async ({ body }: RequestContext<never, never, { dump: unknown; persist: boolean }>) => {
        let r;
        try {
          r = await ct.load(body.dump, { persist: body.persist });
        } catch (e) {
          const err = e as InvalidArgumentError;
          if (err.code === "INVALID_ARGUMENT") {
            throw new InvalidArgumentError(err.message, {
              issues: err.issues.map((i) => ({ ...i, path: `body.dump${i.path ? `.${i.path}` : ""}` })),
              cause: e,
            });
          }
          throw e;
        }
        return ok({
          written: r.written,
          counts: { volumes: r.dump.volumes.length, snapshots: r.dump.snapshots.length, connections: r.dump.connections.length },
        });
      },
    },
    {
      method: "POST", path: "/v1/reconcile", tag: "state", role: "admin", idempotent: true,
      summary: "Settle what crashed operations left behind; report orphans and missing objects",
      body: S.ReconcileBody,
      responses: { 200: { description: "report", schema: S.ReconcileView }, ...write },
      handler: async ({ body }: RequestContext<never, never, { backend?: string; delete_orphans?: boolean; stale_after_ms?: number }>) => {
        if (body.backend && !ct.backends.has(body.backend)) {
          throw new InvalidArgumentError(`unknown backend ${body.backend}`, { issues: [{ path: "body.backend", message: "unknown backend" }] });
        }
        const report = await op(app, body.backend ?? "*", "reconcile", () =>
          ct.reconcile({ backend: body.backend, deleteOrphans: body.delete_orphans, staleAfterMs: body.stale_after_ms }),
        );
        return ok(report);
      },
    },
  ];
  return routes;
}
