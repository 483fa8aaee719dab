#!/usr/bin/env node
/**
 * cinderts-server figures on this machine, every request to 127.0.0.1 only, every loop bounded:
 *  - create+delete of a 1 GiB file-backend volume (one POST + one DELETE per iteration),
 *  - GET /v1/volumes with 10 000 volume records,
 * for SQLite and PostgreSQL persistence, with 1 and 2 server instances (clients spread over them).
 * Prints requests/s and p50/p99 latency per configuration, side by side.
 *
 * Needs the built server (`pnpm --filter @cinderts/server... build`) and, for the PostgreSQL rows,
 * the testbed: `tooling/testbeds/postgres/start.sh && source /tmp/cinderts-pg/env` (CINDERTS_PG_URL).
 * Env: BENCH_ITER (create+delete iterations per config, default 300), BENCH_CONC (parallel clients, 8),
 *      BENCH_LIST_VOLUMES (10000), BENCH_LIST_REQ (40), BENCH_DIR (default the system temp dir).
 */
import { spawn } from "node:child_process";
import { createHash, randomUUID } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { hostname, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ITER = Number(process.env.BENCH_ITER ?? 300);
const CONC = Number(process.env.BENCH_CONC ?? 8);
const LIST_N = Number(process.env.BENCH_LIST_VOLUMES ?? 10_000);
const LIST_REQ = Number(process.env.BENCH_LIST_REQ ?? 40);
const PG_URL = process.env.CINDERTS_PG_URL;
const MAIN = fileURLToPath(new URL("../../apps/server/dist/main.js", import.meta.url));
const TOKEN = `ct_bench_${randomUUID()}`;

if (!existsSync(MAIN)) {
  console.error(`${MAIN} is missing: pnpm --filter @cinderts/server... build`);
  process.exit(1);
}

function manifest(dir, persistence, schema) {
  return {
    persistence:
      persistence === "postgres"
        ? { plugin: "@cinderts/persistence-postgres", options: { url: PG_URL, schema, pool_size: 10 } }
        : { plugin: "@cinderts/persistence-sqlite", options: { path: join(dir, "state.db") } },
    backends: [{ name: "local", driver: "@cinderts/driver-file", options: { path: join(dir, "volumes") } }],
    connectors: [],
    state_dir: join(dir, "state"),
    logging: { level: "info" }, // as operators run it: one JSON line per request
    server: {
      host: "127.0.0.1",
      port: 0,
      body_limit_bytes: 64 * 1024 * 1024,
      tokens: [{ name: "bench", role: "admin", hash: `sha256:${createHash("sha256").update(TOKEN).digest("hex")}` }],
    },
  };
}

function startServer(file) {
  const child = spawn(process.execPath, [MAIN, "--manifest", file], { stdio: ["ignore", "pipe", "pipe"] });
  let err = "";
  child.stderr.on("data", (c) => (err += c));
  return new Promise((resolve, reject) => {
    let buf = "";
    const timer = setTimeout(() => reject(new Error(`server did not start: ${err}`)), 60_000);
    child.stdout.on("data", (c) => {
      buf += c;
      for (let i; (i = buf.indexOf("\n")) >= 0; buf = buf.slice(i + 1)) {
        try {
          const j = JSON.parse(buf.slice(0, i));
          if (j.msg === "listening") {
            child.stdout.resume();
            clearTimeout(timer);
            resolve({ url: j.url, child });
          }
        } catch {}
      }
    });
    child.once("exit", (code) => reject(new Error(`server exited ${code}: ${err}`)));
  });
}

async function stopServer(s) {
  if (s.child.exitCode !== null) return;
  const done = new Promise((r) => s.child.once("exit", r));
  s.child.kill("SIGTERM");
  await done;
}

async function req(url, method, path, body) {
  const t0 = performance.now();
  const res = await fetch(url + path, {
    method,
    headers: { Authorization: `Bearer ${TOKEN}`, ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  const ms = performance.now() - t0;
  if (res.status >= 400) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 200)}`);
  return { ms, json: text ? JSON.parse(text) : undefined };
}

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

/** Run `total` jobs with `conc` workers; returns requests/s and latency percentiles over every request. */
async function load(total, conc, job) {
  const lat = [];
  let next = 0;
  let requests = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: conc }, async (_, w) => {
      for (let i = next++; i < total; i = next++) {
        for (const ms of await job(i, w)) {
          lat.push(ms);
          requests++;
        }
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  return { rps: requests / seconds, p50: pct(lat, 50), p99: pct(lat, 99), requests };
}

function listDump(n) {
  const now = new Date().toISOString();
  const volumes = Array.from({ length: n }, (_, i) => ({
    id: randomUUID(), version: 1, backend: "local", name: `bench-${i}`, size: 1, status: "available",
    source_volume_id: null, snapshot_id: null, created_at: now, updated_at: now, metadata: { i: String(i) },
    intent: null, status_reason: null, provider_location: null, provider_id: null, provider_auth: null, provider_geometry: null,
  }));
  return { format: "cinderts-state", version: 1, created_at: now, secrets: true, backends: [], volumes, snapshots: [], connections: [] };
}

async function dropSchema(schema) {
  const { default: pg } = await import(new URL("../../packages/persistence/postgres/node_modules/pg/lib/index.js", import.meta.url).href);
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  await c.query(`drop schema if exists "${schema}" cascade`);
  await c.end();
}

async function runConfig(persistence, instances) {
  const dir = mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), "cinderts-bench-server-"));
  const schema = `bench_${process.pid}_${Date.now().toString(36)}`;
  const file = join(dir, "cinderts.json");
  writeFileSync(file, JSON.stringify(manifest(dir, persistence, schema)));
  // Start one first so that it creates the schema; the second then joins (both would also be safe at once).
  const servers = [await startServer(file)];
  for (let i = 1; i < instances; i++) servers.push(await startServer(file));
  const urls = servers.map((s) => s.url);
  try {
    const at = (w) => urls[w % urls.length];
    // Warm-up: plugin setup and connections.
    for (const u of urls) await req(u, "GET", "/v1/volumes");
    const cd = await load(ITER, CONC, async (i, w) => {
      const u = at(w + i);
      const c = await req(u, "POST", "/v1/volumes", { size: 1 });
      const d = await req(at(w + i + 1), "DELETE", `/v1/volumes/${c.json.id}`);
      return [c.ms, d.ms];
    });
    const t0 = performance.now();
    await req(urls[0], "POST", "/v1/state/load", { dump: listDump(LIST_N), persist: true });
    const seedSeconds = (performance.now() - t0) / 1000;
    const counted = (await req(urls[0], "GET", "/v1/volumes")).json.length;
    if (counted !== LIST_N) throw new Error(`expected ${LIST_N} volumes, listed ${counted}`);
    const list = await load(LIST_REQ, Math.min(CONC, 4), async (i, w) => [(await req(at(w + i), "GET", "/v1/volumes")).ms]);
    return { cd, list, seedSeconds };
  } finally {
    for (const s of servers) await stopServer(s);
    if (persistence === "postgres") await dropSchema(schema).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

const configs = [
  ["sqlite", 1],
  ["sqlite", 2],
  ...(PG_URL ? [["postgres", 1], ["postgres", 2]] : []),
];
if (!PG_URL) console.error("CINDERTS_PG_URL not set: PostgreSQL rows skipped (start tooling/testbeds/postgres)");

console.log(`cinderts-server bench on ${hostname()}: create+delete ${ITER}× with ${CONC} clients; list of ${LIST_N} volumes ${LIST_REQ}×`);
const rows = [];
for (const [p, n] of configs) {
  const r = await runConfig(p, n);
  rows.push({ p, n, ...r });
  console.error(`done: ${p} × ${n}`);
}
const f = (x, d = 1) => x.toFixed(d).padStart(8);
console.log("");
console.log("persistence  inst | create+delete  req/s   p50 ms   p99 ms | list 10k  req/s   p50 ms   p99 ms | seed 10k s");
for (const r of rows) {
  console.log(
    `${r.p.padEnd(11)} ${String(r.n).padStart(5)} |              ${f(r.cd.rps)} ${f(r.cd.p50)} ${f(r.cd.p99)} |          ${f(r.list.rps)} ${f(r.list.p50)} ${f(r.list.p99)} | ${f(r.seedSeconds)}`,
  );
}
console.log(`\nload average ${loadavg().map((x) => x.toFixed(2)).join(" ")} (2 shared cores: figures move with other work)`);
