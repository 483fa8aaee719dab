import { hostname } from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as S from "../src/schemas.js";
import { ADMIN_TOKEN, READER_TOKEN, call, dropSchema, manifest, pgEnv, scratchSchema, startInProcess, tempDir, type Running } from "./harness.js";

// The file backend serves only its own host: consumers here are other node ids on this host.
const HOST = hostname();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every 4xx is a problem body whose issues name the field. */
function expectProblem(r: { status: number; json: any; headers: Headers }, status: number, code: string, path?: string) {
  expect(r.status, JSON.stringify(r.json)).toBe(status);
  expect(r.headers.get("content-type")).toMatch(/^application\/problem\+json/);
  expect(S.Problem.parse(r.json)).toMatchObject({ status, code });
  if (path) expect(r.json.issues.map((i: { path: string }) => i.path)).toContain(path);
}

describe.skipIf(!pgEnv)("server API on PostgreSQL and the file backend", () => {
  let srv: Running;
  let url: string;
  let volumesDir: string;
  const schema = scratchSchema("api");
  const get = (path: string, token?: string | null) => call(url, "GET", path, { token });

  beforeAll(async () => {
    const dir = tempDir("api");
    volumesDir = `${dir}/volumes`;
    srv = await startInProcess(await manifest({ schema, volumesDir, stateDir: `${dir}/state`, server: { body_limit_bytes: 64 * 1024 } }));
    url = srv.url;
  });
  afterAll(async () => {
    await srv?.close();
    if (pgEnv) await dropSchema(schema);
  });

  describe("service endpoints", () => {
    it("healthz, readyz and openapi.json need no token", async () => {
      expect((await get("/healthz", null)).json).toEqual({ status: "ok" });
      expect((await get("/readyz", null)).json).toEqual({ status: "ready" });
      const doc = (await get("/openapi.json", null)).json;
      expect(doc.openapi).toMatch(/^3\./);
      for (const r of srv.server.routes) expect(doc.paths[r.path]?.[r.method.toLowerCase()], `${r.method} ${r.path}`).toBeDefined();
      const create = doc.paths["/v1/volumes"].post;
      const deref = (s: { $ref?: string }) => (s.$ref ? doc.components.schemas[s.$ref.split("/").pop()!] : s);
      expect(deref(create.requestBody.content["application/json"].schema).properties.size.type).toBe("integer");
      expect(deref(create.responses["202"].content["application/json"].schema).properties.status.enum).toContain("creating");
      expect(deref(create.responses["400"].content["application/problem+json"].schema).properties.issues.type).toBe("array");
      // Every $ref resolves.
      const refs = JSON.stringify(doc).match(/"\$ref":"[^"]+"/g) ?? [];
      for (const r of refs) expect(doc.components.schemas[r.split("/").pop()!.replace(/"$/, "")], r).toBeDefined();
      expect(create.parameters.map((p: { name: string }) => p.name)).toContain("Idempotency-Key");
      expect(doc.paths["/v1/volumes/{id}"].get.parameters[0]).toMatchObject({ name: "id", in: "path", required: true });
    });

    it("unknown paths are 404 and wrong methods 405 with Allow", async () => {
      expectProblem(await get("/v1/nothing"), 404, "NOT_FOUND");
      const r = await call(url, "PATCH", "/v1/volumes");
      expect(r.status).toBe(405);
      expect(r.headers.get("allow")).toBe("GET, POST");
    });

    it("metrics need a token (reader is enough) and count operations per backend", async () => {
      expectProblem(await get("/metrics", null), 401, "UNAUTHENTICATED");
      await call(url, "POST", "/v1/volumes", { body: { size: 1 } });
      const r = await get("/metrics", READER_TOKEN);
      expect(r.status).toBe(200);
      expect(r.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
      expect(r.text).toMatch(/cinderts_operations_total\{backend="local",op="create",outcome="ok"\} [1-9]/);
      expect(r.text).toMatch(/cinderts_operation_duration_seconds_count\{backend="local",op="create"\} [1-9]/);
      expect(r.text).toMatch(/cinderts_http_requests_total\{route="POST \/v1\/volumes",status="201"\} [1-9]/);
    });
  });

  describe("authentication and roles", () => {
    it("no token, a wrong token and a malformed header are 401 with WWW-Authenticate", async () => {
      for (const headers of [{} as Record<string, string>, { Authorization: "Bearer wrong-token" }, { Authorization: "Basic dXNlcjpwdw==" }, { Authorization: `Bearer ${ADMIN_TOKEN} x` }]) {
        const r = await call(url, "GET", "/v1/volumes", { token: null, headers });
        expectProblem(r, 401, "UNAUTHENTICATED");
        expect(r.headers.get("www-authenticate")).toMatch(/^Bearer/);
      }
    });

    it("a reader reads but every write is 403, and secrets are admin-only", async () => {
      expect((await get("/v1/volumes", READER_TOKEN)).status).toBe(200);
      const writes: [string, string, unknown][] = [
        ["POST", "/v1/volumes", { size: 1 }],
        ["POST", "/v1/snapshots", { volume_id: "x" }],
        ["POST", "/v1/connections", { volume_id: "x", node_id: "n" }],
        ["DELETE", "/v1/volumes/x", undefined],
        ["DELETE", "/v1/snapshots/x", undefined],
        ["DELETE", "/v1/connections/x", undefined],
        ["POST", "/v1/volumes/x/extend", { size: 2 }],
        ["PUT", "/v1/nodes/n1", { connector: { host: "n1" } }],
        ["DELETE", "/v1/nodes/n1", undefined],
        ["POST", "/v1/state/load", { dump: {} }],
        ["POST", "/v1/reconcile", {}],
        ["POST", "/v1/connections/x/attachment", { attach_info: {} }],
        ["DELETE", "/v1/connections/x/attachment", undefined],
      ];
      for (const [method, path, body] of writes) {
        expectProblem(await call(url, method, path, { token: READER_TOKEN, body }), 403, "FORBIDDEN");
      }
      expectProblem(await get("/v1/state?include_secrets=true", READER_TOKEN), 403, "FORBIDDEN");
    });

    it("logs one JSON line per request with its request id and token name, never a token", async () => {
      const r = await call(url, "GET", "/v1/backends", { headers: { "X-Request-Id": "trace-abc.123" } });
      expect(r.headers.get("x-request-id")).toBe("trace-abc.123");
      const line = srv.logs.map((l) => JSON.parse(l)).find((l) => l.request_id === "trace-abc.123");
      expect(line).toMatchObject({ msg: "request", method: "GET", route: "GET /v1/backends", status: 200, client: "ops-admin" });
      const generated = await get("/healthz");
      expect(generated.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
      const all = srv.logs.join("\n");
      expect(all).not.toContain(ADMIN_TOKEN);
      expect(all).not.toContain(READER_TOKEN);
      expect(all).not.toContain(new URL(pgEnv!.CINDERTS_PG_URL).password);
    });
  });

  describe("backends and drivers", () => {
    it("lists backends, one backend, and 404/400 for unknown or malformed names", async () => {
      const list = S.BackendView.array().parse((await get("/v1/backends")).json);
      expect(list.map((b) => b.name)).toEqual(["local"]);
      expect(S.BackendView.parse((await get("/v1/backends/local")).json).driver_id).toBe("file");
      expectProblem(await get("/v1/backends/nope"), 404, "NOT_FOUND");
      expectProblem(await get("/v1/backends/%20bad%2Fname"), 400, "INVALID_ARGUMENT", "params.name");
    });

    it("stats with Cinder's field names; refresh must be a boolean", async () => {
      const s = S.StatsView.parse((await get("/v1/backends/local/stats?refresh=true")).json);
      expect(s.volume_backend_name).toBe("local");
      expect(s.pools[0]!.total_capacity_gb).toBeGreaterThan(0);
      expectProblem(await get("/v1/backends/local/stats?refresh=maybe"), 400, "INVALID_ARGUMENT", "query.refresh");
      expectProblem(await get("/v1/backends/local/stats?colour=red"), 400, "INVALID_ARGUMENT", "query.colour");
      expectProblem(await get("/v1/backends/none/stats"), 404, "NOT_FOUND");
    });

    it("lists installed drivers with option schemas", async () => {
      const drivers = S.DriverView.array().parse((await get("/v1/drivers")).json);
      const file = drivers.find((d) => d.package === "@cinderts/driver-file")!;
      expect(file.backends).toEqual(["local"]);
      expect((file.options_schema as { properties: Record<string, unknown> }).properties).toHaveProperty("path");
    });
  });

  describe("volumes and snapshots", () => {
    it("create → get → list → extend → snapshot → clone (202) → from snapshot (202) → deletes", async () => {
      const c = await call(url, "POST", "/v1/volumes", { body: { size: 1, name: "db", metadata: { tier: "gold" } } });
      expect(c.status).toBe(201);
      const vol = S.VolumeView.parse(c.json);
      expect(vol).toMatchObject({ size: 1, name: "db", status: "available", backend: "local", metadata: { tier: "gold" } });
      expect(c.headers.get("location")).toBe(`/v1/volumes/${vol.id}`);
      expect(S.VolumeView.parse((await get(`/v1/volumes/${vol.id}`)).json).id).toBe(vol.id);
      expect((await get("/v1/volumes?backend=local")).json.map((v: { id: string }) => v.id)).toContain(vol.id);

      const ext = await call(url, "POST", `/v1/volumes/${vol.id}/extend`, { body: { size: 2 } });
      expect(ext.json).toMatchObject({ id: vol.id, size: 2, status: "available" });
      expectProblem(await call(url, "POST", `/v1/volumes/${vol.id}/extend`, { body: { size: 1 } }), 400, "INVALID_ARGUMENT", "size");

      const sn = await call(url, "POST", "/v1/snapshots", { body: { volume_id: vol.id, name: "nightly" } });
      expect(sn.status).toBe(201);
      const snap = S.SnapshotView.parse(sn.json);
      expect(snap).toMatchObject({ volume_id: vol.id, volume_size: 2, status: "available" });
      expect((await get(`/v1/snapshots?volume_id=${vol.id}`)).json).toHaveLength(1);
      expect(S.SnapshotView.parse((await get(`/v1/snapshots/${snap.id}`)).json).name).toBe("nightly");

      const cl = await call(url, "POST", "/v1/volumes", { body: { size: 3, source_volume_id: vol.id } });
      expect(cl.status).toBe(202);
      const clone = S.VolumeView.parse(cl.json);
      expect(clone.source_volume_id).toBe(vol.id);
      expect(["creating", "available"]).toContain(clone.status);
      const fs = await call(url, "POST", "/v1/volumes", { body: { size: 2, snapshot_id: snap.id } });
      expect(fs.status).toBe(202);
      for (const id of [clone.id, fs.json.id]) {
        let v = (await get(`/v1/volumes/${id}`)).json;
        for (let i = 0; v.status === "creating" && i < 200; i++, v = (await get(`/v1/volumes/${id}`)).json) await sleep(25);
        expect(v.status).toBe("available");
      }

      const dep = await call(url, "DELETE", `/v1/volumes/${vol.id}`);
      expectProblem(dep, 409, "HAS_DEPENDENTS");
      expect(dep.json.data.dependents).toEqual([{ kind: "snapshot", id: snap.id }]);
      expect((await call(url, "DELETE", `/v1/snapshots/${snap.id}`)).status).toBe(204);
      expect((await call(url, "DELETE", `/v1/snapshots/${snap.id}`)).status).toBe(204);
      expect((await call(url, "DELETE", `/v1/volumes/${vol.id}`)).status).toBe(204);
      expect((await call(url, "DELETE", `/v1/volumes/${vol.id}`)).status).toBe(204);
      expect((await get(`/v1/volumes/${vol.id}`)).json.status).toBe("deleted");
      expect((await get("/v1/volumes")).json.map((v: { id: string }) => v.id)).not.toContain(vol.id);
      expect((await get("/v1/volumes?include_deleted=true")).json.map((v: { id: string }) => v.id)).toContain(vol.id);
    });

    // Known core defect (reported): Backend.createVolume compares the requested size with the source's before it
    // takes the source's lock and does not compare again after, so an extend that lands in between makes a clone
    // whose file is larger than its record. Here the extend is played by this test while it holds the lock.
    // When core re-checks under the lock this starts failing: turn it into a plain `it` expecting 400 body.size.
    it("a clone sized before a concurrent extend of its source is refused (core re-checks under the source lock)", async () => {
      const src = (await call(url, "POST", "/v1/volumes", { body: { size: 1 } })).json;
      const lock = await srv.ct.locks.acquire(`volume:${src.id}`);
      const pending = call(url, "POST", "/v1/volumes", { body: { size: 1, source_volume_id: src.id } });
      await sleep(300);
      // The extend another instance would finish meanwhile: record and file grow to 2 GiB.
      const rec = (await srv.ct.persistence.get("volume", src.id))!;
      await srv.ct.persistence.put("volume", { ...rec, size: 2 }, { expectVersion: rec.version });
      const { truncateSync } = await import("node:fs");
      truncateSync(`${volumesDir}/volume-${src.id}`, 2 * 1024 ** 3);
      await lock.release();
      const r = await pending;
      expectProblem(r, 400, "INVALID_ARGUMENT", "size");
    });

    it("malformed bodies are 400 naming the field, never 500", async () => {
      const post = (body: unknown) => call(url, "POST", "/v1/volumes", { body });
      expectProblem(await post({ size: -1 }), 400, "INVALID_ARGUMENT", "body.size");
      expectProblem(await post({ size: 1.5 }), 400, "INVALID_ARGUMENT", "body.size");
      expectProblem(await post({ size: "1" }), 400, "INVALID_ARGUMENT", "body.size");
      expectProblem(await post({}), 400, "INVALID_ARGUMENT", "body.size");
      expectProblem(await post({ size: 1, colour: "red" }), 400, "INVALID_ARGUMENT", "body.colour");
      expectProblem(await post({ size: 1, name: "bad\u0007name" }), 400, "INVALID_ARGUMENT", "body.name");
      expectProblem(await post({ size: 1, backend: "nope" }), 400, "INVALID_ARGUMENT", "body.backend");
      expectProblem(await post({ size: 1, snapshot_id: "a", source_volume_id: "b" }), 400, "INVALID_ARGUMENT", "body.snapshot_id");
      expectProblem(await post({ size: 1, source_volume_id: "../etc" }), 400, "INVALID_ARGUMENT", "body.source_volume_id");
      expectProblem(await post([1, 2]), 400, "INVALID_ARGUMENT", "body");
      expectProblem(await post(null), 400, "INVALID_ARGUMENT", "body");
      expectProblem(await call(url, "POST", "/v1/volumes", { raw: "{ size: 1", headers: { "Content-Type": "application/json" } }), 400, "INVALID_ARGUMENT", "body");
      expectProblem(await call(url, "POST", "/v1/volumes", { raw: "size=1", headers: { "Content-Type": "application/x-www-form-urlencoded" } }), 415, "INVALID_ARGUMENT", "body");
      expectProblem(await call(url, "POST", "/v1/snapshots", { body: { volume_id: 7 } }), 400, "INVALID_ARGUMENT", "body.volume_id");
      expectProblem(await call(url, "POST", "/v1/volumes/x/extend", { body: { size: 0 } }), 400, "INVALID_ARGUMENT", "body.size");
      expectProblem(await call(url, "DELETE", "/v1/volumes/x?force=yes"), 400, "INVALID_ARGUMENT", "query.force");
      expectProblem(await call(url, "POST", "/v1/volumes", { body: { size: 1 }, headers: { "Idempotency-Key": "" } }), 400, "INVALID_ARGUMENT");
    });

    it("bodies over the limit are 413", async () => {
      const big = JSON.stringify({ size: 1, name: "x".repeat(100 * 1024) });
      expectProblem(await call(url, "POST", "/v1/volumes", { raw: big, headers: { "Content-Type": "application/json" } }), 413, "INVALID_ARGUMENT");
      // The server still serves afterwards.
      expect((await get("/healthz")).status).toBe(200);
    });

    it("unknown ids are 404 and malformed ids 400", async () => {
      for (const p of ["/v1/volumes/no-such-vol", "/v1/snapshots/no-such-snap", "/v1/connections/no-such-conn", "/v1/nodes/no-such-node"]) {
        expectProblem(await get(p), 404, "NOT_FOUND");
      }
      expectProblem(await call(url, "DELETE", "/v1/volumes/no-such-vol"), 404, "NOT_FOUND");
      expectProblem(await call(url, "POST", "/v1/volumes/no-such-vol/extend", { body: { size: 5 } }), 404, "NOT_FOUND");
      expectProblem(await call(url, "POST", "/v1/snapshots", { body: { volume_id: "no-such-vol" } }), 404, "NOT_FOUND");
      expectProblem(await call(url, "POST", "/v1/volumes", { body: { size: 1, source_volume_id: "no-such-vol" } }), 404, "NOT_FOUND");
      expectProblem(await call(url, "POST", "/v1/volumes", { body: { size: 1, snapshot_id: "no-such-snap" } }), 404, "NOT_FOUND");
      expectProblem(await call(url, "DELETE", "/v1/connections/no-such-conn"), 404, "NOT_FOUND");
      expectProblem(await get("/v1/volumes/bad%20id"), 400, "INVALID_ARGUMENT", "params.id");
      expectProblem(await get("/v1/volumes/..%2F..%2Fetc"), 400, "INVALID_ARGUMENT", "params.id");
    });

    it("Idempotency-Key: a retried POST returns the first result and creates once", async () => {
      const key = `k-${Date.now()}`;
      const before = (await get("/v1/volumes")).json.length;
      const first = await call(url, "POST", "/v1/volumes", { body: { size: 1, name: "idem" }, headers: { "Idempotency-Key": key } });
      const again = await call(url, "POST", "/v1/volumes", { body: { size: 1, name: "idem" }, headers: { "Idempotency-Key": key } });
      expect(first.status).toBe(201);
      expect(again.status).toBe(201);
      expect(again.json).toEqual(first.json);
      expect(again.headers.get("idempotent-replayed")).toBe("true");
      // Concurrent retries of another key: still one volume.
      const key2 = `k2-${Date.now()}`;
      const racing = await Promise.all(
        Array.from({ length: 5 }, () => call(url, "POST", "/v1/volumes", { body: { size: 1, name: "idem2" }, headers: { "Idempotency-Key": key2 } })),
      );
      expect(new Set(racing.map((r) => r.json.id)).size).toBe(1);
      expect((await get("/v1/volumes")).json.length).toBe(before + 2);
      const reused = await call(url, "POST", "/v1/volumes", { body: { size: 2, name: "idem" }, headers: { "Idempotency-Key": key } });
      expectProblem(reused, 422, "INVALID_ARGUMENT", "headers.idempotency-key");
      // Keys are per token: another token's key space is separate (and a reader may not create anyway).
      expect((await call(url, "POST", "/v1/volumes", { token: READER_TOKEN, body: { size: 1, name: "idem" }, headers: { "Idempotency-Key": key } })).status).toBe(403);
    });
  });

  describe("connections, nodes, validation", () => {
    it("connect with a connector, read it (secrets only for admin), list, disconnect", async () => {
      const vol = (await call(url, "POST", "/v1/volumes", { body: { size: 1 } })).json;
      const c = await call(url, "POST", "/v1/connections", {
        body: { volume_id: vol.id, connector: { host: HOST, initiator: "iqn.2004-10.com.example:c1", password: "s3cret-chap" }, node_id: "consumer-1" },
      });
      expect(c.status, JSON.stringify(c.json)).toBe(201);
      const conn = S.ConnectionView.parse(c.json);
      expect(conn).toMatchObject({ volume_id: vol.id, status: "connected", node_id: "consumer-1", attached: false });
      expect((conn.conn_info as { driver_volume_type: string }).driver_volume_type).toBeTruthy();
      expect(JSON.stringify(c.json)).not.toContain("s3cret-chap");
      expect((await get(`/v1/volumes/${vol.id}`)).json.status).toBe("in-use");
      const secret = (await get(`/v1/connections/${conn.id}?include_secrets=true`)).json;
      expect(secret.connector.password).toBe("s3cret-chap");
      expect(secret).toHaveProperty("attach_info", null);
      expect((await get(`/v1/connections/${conn.id}`, READER_TOKEN)).json.connector.password).toBe("***");
      expect((await get(`/v1/connections?volume_id=${vol.id}`)).json.map((x: { id: string }) => x.id)).toEqual([conn.id]);
      expect((await get(`/v1/connections?node_id=consumer-1`)).json.map((x: { id: string }) => x.id)).toContain(conn.id);
      expectProblem(await call(url, "DELETE", `/v1/volumes/${vol.id}`), 409, "IN_USE");
      expect((await call(url, "DELETE", `/v1/connections/${conn.id}`)).status).toBe(204);
      expect((await get(`/v1/volumes/${vol.id}`)).json.status).toBe("available");
      expectProblem(await call(url, "POST", "/v1/connections", { body: { volume_id: vol.id } }), 400, "INVALID_ARGUMENT", "body.connector");
      expectProblem(await call(url, "POST", "/v1/connections", { body: { volume_id: vol.id, connector: { ip: "1.2.3.4" } } }), 400, "INVALID_ARGUMENT", "body.connector.host");
    });

    it("nodes: register, read, list, connect by node id, forget", async () => {
      const props = { host: HOST, initiator: "iqn.2004-10.com.example:node-a", ip: "127.0.0.1" };
      const put = await call(url, "PUT", "/v1/nodes/node-a", { body: { connector: props } });
      expect(put.status).toBe(200);
      expect(S.NodeView.parse(put.json)).toMatchObject({ id: "node-a", connector: props });
      const again = await call(url, "PUT", "/v1/nodes/node-a", { body: { connector: { ...props, ip: "127.0.0.2" } } });
      expect(again.json.registered_at).toBe(put.json.registered_at);
      expect((await get("/v1/nodes/node-a", READER_TOKEN)).json.connector.ip).toBe("127.0.0.2");
      expect((await get("/v1/nodes")).json.map((n: { id: string }) => n.id)).toContain("node-a");
      expectProblem(await call(url, "PUT", "/v1/nodes/node-a", { body: { connector: {} } }), 400, "INVALID_ARGUMENT", "body.connector.host");
      expectProblem(await call(url, "PUT", "/v1/nodes/bad%20node", { body: { connector: props } }), 400, "INVALID_ARGUMENT", "params.id");

      const vol = (await call(url, "POST", "/v1/volumes", { body: { size: 1 } })).json;
      const conn = (await call(url, "POST", "/v1/connections", { body: { volume_id: vol.id, node_id: "node-a" } })).json;
      expect(conn).toMatchObject({ node_id: "node-a", connector: { host: HOST, ip: "127.0.0.2" } });
      expectProblem(await call(url, "POST", "/v1/connections", { body: { volume_id: vol.id, node_id: "node-zz" } }), 404, "NOT_FOUND");
      expect((await call(url, "DELETE", `/v1/connections/${conn.id}`)).status).toBe(204);
      expect((await call(url, "DELETE", "/v1/nodes/node-a")).status).toBe(204);
      expect((await call(url, "DELETE", "/v1/nodes/node-a")).status).toBe(204);
      expectProblem(await get("/v1/nodes/node-a"), 404, "NOT_FOUND");
    });

    it("attachment: a consumer records attach and detach; bad attach bodies are 400", async () => {
      const vol = (await call(url, "POST", "/v1/volumes", { body: { size: 1 } })).json;
      const conn = (await call(url, "POST", "/v1/connections", { body: { volume_id: vol.id, connector: { host: HOST }, node_id: "node-b" } })).json;
      const info = { connector: "local", method: "file", path: "/dev/null", host: "node-b", handle: {} };
      expectProblem(await call(url, "POST", `/v1/connections/${conn.id}/attachment`, { body: { attach_info: { path: "/x" } } }), 400, "INVALID_ARGUMENT", "body.attach_info.connector");
      expectProblem(await call(url, "POST", `/v1/connections/${conn.id}/attachment`, { body: { attach_info: { ...info, host: "node-c" } } }), 400, "INVALID_ARGUMENT", "body.attach_info.host");
      const att = await call(url, "POST", `/v1/connections/${conn.id}/attachment`, { body: { attach_info: info } });
      expect(att.json).toMatchObject({ status: "attached", attached: true, path: "/dev/null" });
      expectProblem(await call(url, "DELETE", `/v1/connections/${conn.id}`), 409, "IN_USE");
      const det = await call(url, "DELETE", `/v1/connections/${conn.id}/attachment`);
      expect(det.json).toMatchObject({ status: "connected", attached: false });
      expect((await call(url, "DELETE", `/v1/connections/${conn.id}`)).status).toBe(204);
      expectProblem(await call(url, "POST", "/v1/connections/no-such/attachment", { body: { attach_info: info } }), 404, "NOT_FOUND");
    });

    it("connector validate: ok, bad property named, unknown backend 404", async () => {
      const ok = await call(url, "POST", "/v1/connector/validate", { token: READER_TOKEN, body: { backend: "local", connector: { host: HOST } } });
      expect(ok.json).toMatchObject({ valid: true, connector: { host: HOST } });
      expectProblem(await call(url, "POST", "/v1/connector/validate", { body: { backend: "local", connector: { host: "elsewhere" } } }), 400, "INVALID_ARGUMENT", "body.connector.host");
      expectProblem(await call(url, "POST", "/v1/connector/validate", { body: { backend: "local", connector: { host: 5 } } }), 400, "INVALID_ARGUMENT", "body.connector.host");
      expectProblem(await call(url, "POST", "/v1/connector/validate", { body: { backend: "local" } }), 400, "INVALID_ARGUMENT");
      expectProblem(await call(url, "POST", "/v1/connector/validate", { body: { backend: "zz", connector: { host: "h" } } }), 404, "NOT_FOUND");
    });
  });

  describe("state and reconcile", () => {
    it("dump (reader, redacted), dump with secrets (admin), load checks and persists", async () => {
      const d = (await get("/v1/state", READER_TOKEN)).json;
      expect(d).toMatchObject({ format: "cinderts-state", secrets: false });
      expect(d.volumes.length).toBeGreaterThan(0);
      const full = (await get("/v1/state?include_secrets=true")).json;
      expect(full.secrets).toBe(true);
      const check = await call(url, "POST", "/v1/state/load", { body: { dump: full } });
      expect(check.json).toMatchObject({ written: { volumes: 0 }, counts: { volumes: full.volumes.length } });
      const persisted = await call(url, "POST", "/v1/state/load", { body: { dump: full, persist: true } });
      expect(persisted.json.written.volumes).toBe(full.volumes.length);
      expectProblem(await call(url, "POST", "/v1/state/load", { body: { dump: { format: "nope" } } }), 400, "INVALID_ARGUMENT", "body.dump.format");
      expectProblem(await call(url, "POST", "/v1/state/load", { body: { dump: full, persist: "yes" } }), 400, "INVALID_ARGUMENT", "body.persist");
      expectProblem(await get("/v1/state?backend=zz"), 404, "NOT_FOUND");
    });

    it("reconcile reports; unknown backend is 400", async () => {
      const r = S.ReconcileView.parse((await call(url, "POST", "/v1/reconcile", { body: {} })).json);
      expect(r.orphans).toEqual([]);
      expectProblem(await call(url, "POST", "/v1/reconcile", { body: { backend: "zz" } }), 400, "INVALID_ARGUMENT", "body.backend");
      expectProblem(await call(url, "POST", "/v1/reconcile", { body: { delete_orphans: "yes" } }), 400, "INVALID_ARGUMENT", "body.delete_orphans");
    });
  });
});
