#!/usr/bin/env node
// Per-operation latency of cinderts on Ceph RBD beside the bare `rbd` CLI doing the same steps, in one run on
// the same cluster, plus the cold start of a fresh process doing one create+delete. Prints figures; asserts
// nothing about speed.
//
//   pnpm --filter @cinderts/driver-rbd... build        (and @cinderts/driver-rbd-native for the native transport)
//   eval "$(tooling/testbeds/ceph/start.sh)" && node bench/rbd/rbd-bench.mjs [N] [--transports cli,native] [--json]
//
// One iteration on every side: create A (1 GiB) · extend A to 2 GiB · snapshot S of A · volume B from S ·
// clone C of A · then delete B, S, C (untimed) · delete A (timed: a plain volume). cinderts goes through the
// library entry point (Cinderts + Backend with in-memory persistence), the way an application calls it.
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { loadavg } from "node:os";
import { Cinderts, MemoryPersistence, definePersistence, parseManifest } from "../../packages/core/dist/index.js";
import driverRbd from "../../packages/drivers/rbd/dist/index.js";
import runnerLocal from "../../packages/runners/local/dist/index.js";
import { createRequire } from "node:module";

const here = dirname(fileURLToPath(import.meta.url));
// zod comes from core's own dependencies: bench/ is not a package with node_modules of its own
const { z } = createRequire(join(here, "../../packages/core/package.json"))("zod");
const run = promisify(execFile);
const args = process.argv.slice(2);
const N = Number(args.find((a) => /^\d+$/.test(a)) ?? 20);
const json = args.includes("--json");
const ti = args.indexOf("--transports");
const transports = ti >= 0 ? args[ti + 1].split(",") : ["cli", "native"];
const CONF = process.env.CEPH_CONF;
const POOL = process.env.CINDERTS_RBD_POOL ?? "volumes";
if (!CONF) {
  console.error("CEPH_CONF is not set: eval \"$(tooling/testbeds/ceph/start.sh)\" first");
  process.exit(2);
}
/**
 * Fresh processes get only what they need, as bench/cli does: variables of the shell that runs the bench (a
 * NODE_EXTRA_CA_CERTS bundle adds ~100 ms to every node start on some machines) are not cinderts's cost.
 */
const childEnv = { PATH: process.env.PATH, HOME: process.env.HOME, CEPH_CONF: CONF, CINDERTS_RBD_POOL: POOL };
/** Fresh processes per cold-start figure; start-up times on a 2-vCPU VM spread ±20 %, so more than a handful. */
const COLD_RUNS = Number(process.env.BENCH_COLD_RUNS ?? 11);
const OPS = ["create", "extend", "snapshot", "from_snapshot", "clone", "delete"];

const summary = (ms) => {
  const s = [...ms].sort((a, b) => a - b);
  const med = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  return { median: med, min: s[0], max: s.at(-1), n: s.length };
};
const now = () => performance.now();

async function timed(map, op, fn) {
  const t = now();
  const r = await fn();
  (map[op] ??= []).push(now() - t);
  return r;
}

// ───────────── bare rbd CLI: one process per step, the same steps the driver takes ─────────────
async function bareRbd() {
  const rbd = (...a) => run("rbd", ["--conf", CONF, ...a]);
  const t = {};
  for (let i = 0; i < N; i++) {
    const id = randomUUID().slice(0, 8);
    const [A, B, C, S] = [`bench-a-${id}`, `bench-b-${id}`, `bench-c-${id}`, `snap-${id}`];
    const p = (img) => `${POOL}/${img}`;
    await timed(t, "create", () => rbd("create", "--size", "1G", p(A)));
    await timed(t, "extend", () => rbd("resize", "--no-progress", "--size", "2G", p(A)));
    await timed(t, "snapshot", async () => {
      await rbd("snap", "create", "--no-progress", `${p(A)}@${S}`);
      await rbd("snap", "protect", `${p(A)}@${S}`);
    });
    await timed(t, "from_snapshot", () => rbd("clone", `${p(A)}@${S}`, p(B)));
    await timed(t, "clone", async () => {
      await rbd("snap", "create", "--no-progress", `${p(A)}@${C}.clone_snap`);
      await rbd("snap", "protect", `${p(A)}@${C}.clone_snap`);
      await rbd("clone", `${p(A)}@${C}.clone_snap`, p(C));
    });
    await rbd("rm", "--no-progress", p(B));
    await rbd("rm", "--no-progress", p(C));
    await rbd("snap", "rm", "--no-progress", "--force", `${p(A)}@${S}`);
    await rbd("snap", "rm", "--no-progress", "--force", `${p(A)}@${C}.clone_snap`);
    await timed(t, "delete", () => rbd("rm", "--no-progress", p(A)));
  }
  return t;
}

// ───────────── librbd in-process: the addon's calls alone, the same steps, one open cluster connection ─────────────
// The "in-process librbd" reference, measured on this cluster in this run rather than quoted.
async function librbd() {
  const { openRbdClient, nativeUnavailableReason } = await import("../../packages/drivers/rbd-native/dist/index.js");
  const why = nativeUnavailableReason();
  if (why) throw new Error(why);
  const c = await openRbdClient({ cluster: "ceph", user: "admin", conf: CONF, connectTimeoutSec: 10 });
  const t = {};
  try {
    for (let i = 0; i < N; i++) {
      const id = randomUUID().slice(0, 8);
      const [A, B, C, S] = [`bench-a-${id}`, `bench-b-${id}`, `bench-c-${id}`, `snap-${id}`];
      await timed(t, "create", () => c.create(POOL, A, 2 ** 30, { order: 22 }));
      await timed(t, "extend", () => c.resize(POOL, A, 2 * 2 ** 30));
      await timed(t, "snapshot", async () => {
        await c.snapCreate(POOL, A, S);
        await c.snapProtect(POOL, A, S);
      });
      await timed(t, "from_snapshot", () => c.clone({ pool: POOL, image: A, snapshot: S }, POOL, B, { order: 22 }));
      await timed(t, "clone", async () => {
        await c.snapCreate(POOL, A, `${C}.clone_snap`);
        await c.snapProtect(POOL, A, `${C}.clone_snap`);
        await c.clone({ pool: POOL, image: A, snapshot: `${C}.clone_snap` }, POOL, C, { order: 22 });
      });
      await c.remove(POOL, B);
      await c.remove(POOL, C);
      for (const snap of [S, `${C}.clone_snap`]) {
        await c.snapUnprotect(POOL, A, snap);
        await c.snapRemove(POOL, A, snap);
      }
      await timed(t, "delete", () => c.remove(POOL, A));
    }
    return t;
  } finally {
    await c.close();
  }
}

// ───────────── cinderts through the library ─────────────
const memory = definePersistence({
  id: "bench-memory",
  version: "0",
  description: "in-memory persistence for the benchmark",
  configSchema: z.object({}).strict(),
  create: () => new MemoryPersistence(),
});

async function openCinderts(transport) {
  const loaded = parseManifest({
    persistence: { plugin: memory, options: {} },
    backends: [
      { name: "ceph", driver: driverRbd, options: { pool: POOL, conf: CONF, user: "admin", transport }, runner: { plugin: runnerLocal, options: {} } },
    ],
    connectors: [],
  });
  return Cinderts.open(loaded);
}

async function cinderts(transport) {
  const ct = await openCinderts(transport);
  const b = ct.backend("ceph");
  const t = {};
  try {
    for (let i = 0; i < N; i++) {
      const a = await timed(t, "create", () => b.createVolume({ size: 1 }));
      await timed(t, "extend", () => b.extendVolume({ id: a.id, size: 2 }));
      const s = await timed(t, "snapshot", () => b.createSnapshot({ volume_id: a.id }));
      const v = await timed(t, "from_snapshot", () => b.createVolume({ size: 2, snapshot_id: s.id }));
      const c = await timed(t, "clone", () => b.createVolume({ size: 2, source_volume_id: a.id }));
      await b.deleteVolume(v.id);
      await b.deleteSnapshot(s.id);
      await b.deleteVolume(c.id);
      await timed(t, "delete", () => b.deleteVolume(a.id));
    }
    return { t, transport: b.driver.transport };
  } finally {
    await ct.close();
  }
}

// ───────────── cold start: a fresh node process doing create+delete ─────────────
async function coldStart(transport, runs = COLD_RUNS) {
  const ms = [];
  for (let i = 0; i < runs; i++) {
    const t = now();
    const { stdout } = await run(process.execPath, [join(here, "cold-start.mjs"), transport], { env: childEnv });
    ms.push(now() - t);
    if (!stdout.includes("ok")) throw new Error(`cold start ${transport}: ${stdout}`);
  }
  return summary(ms);
}

const results = { N, pool: POOL, sides: {}, coldStart: {}, loadBefore: loadavg().map((x) => +x.toFixed(2)) };
const fmt = (x) => (x === undefined ? "-" : x.toFixed(1).padStart(7));

process.stderr.write(`bare rbd CLI, ${N} iterations…\n`);
results.sides["rbd CLI"] = await bareRbd();
process.stderr.write(`librbd in-process, ${N} iterations…\n`);
try {
  results.sides["librbd"] = await librbd();
} catch (e) {
  process.stderr.write(`  skipped: ${e.message.split("\n")[0]}\n`);
}
for (const tr of transports) {
  process.stderr.write(`cinderts (${tr}), ${N} iterations…\n`);
  try {
    const r = await cinderts(tr);
    results.sides[`cinderts ${r.transport}`] = r.t;
  } catch (e) {
    process.stderr.write(`  skipped: ${e.message.split("\n")[0]}\n`);
  }
}
for (const tr of transports) {
  try {
    results.coldStart[tr] = await coldStart(tr);
  } catch (e) {
    process.stderr.write(`cold start ${tr} skipped: ${e.message.split("\n")[0]}\n`);
  }
}
// the CLI as shipped: two processes (volume create, volume delete) with SQLite records, transport auto
async function cliColdStart(runs = COLD_RUNS) {
  const { mkdtemp, rm, writeFile } = await import("node:fs/promises");
  const { tmpdir } = await import("node:os");
  const dir = await mkdtemp(join(tmpdir(), "cinderts-rbd-bench-"));
  const repo = join(here, "../..");
  const cli = join(repo, "apps/cli/dist/cinderts.js");
  await writeFile(
    join(dir, "cinderts.yaml"),
    JSON.stringify({
      persistence: { plugin: "@cinderts/persistence-sqlite", options: { path: join(dir, "cinderts.db") } },
      backends: [{ name: "ceph", driver: join(repo, "packages/drivers/rbd"), options: { pool: POOL, conf: CONF, user: "admin" } }],
      connectors: [],
      state_dir: join(dir, "state"),
    }),
  );
  const ms = [];
  try {
    for (let i = 0; i < runs; i++) {
      const t = now();
      const { stdout } = await run(process.execPath, [cli, "volume", "create", "--size", "1", "--json"], { cwd: dir, env: childEnv });
      await run(process.execPath, [cli, "volume", "delete", JSON.parse(stdout).id], { cwd: dir, env: childEnv });
      ms.push(now() - t);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return summary(ms);
}
try {
  results.coldStart["cinderts CLI (2 processes)"] = await cliColdStart();
} catch (e) {
  process.stderr.write(`cold start of the CLI skipped: ${e.message.split("\n")[0]}\n`);
}
const rbdCold = [];
for (let i = 0; i < COLD_RUNS; i++) {
  const t = now();
  const img = `bench-cold-${randomUUID().slice(0, 8)}`;
  await run("rbd", ["--conf", CONF, "create", "--size", "1G", `${POOL}/${img}`], { env: childEnv });
  await run("rbd", ["--conf", CONF, "rm", "--no-progress", `${POOL}/${img}`], { env: childEnv });
  rbdCold.push(now() - t);
}
results.coldStart["rbd CLI (2 processes)"] = summary(rbdCold);

results.loadAfter = loadavg().map((x) => +x.toFixed(2));
if (json) {
  const out = { ...results, sides: Object.fromEntries(Object.entries(results.sides).map(([k, v]) => [k, Object.fromEntries(OPS.map((o) => [o, summary(v[o])]))])) };
  console.log(JSON.stringify(out, null, 2));
} else {
  const sides = Object.keys(results.sides);
  console.log(`\nRBD latency in ms over ${N} iterations (median / min / max), pool ${POOL}; load average ${results.loadBefore.join(" ")} → ${results.loadAfter.join(" ")} (2 cores)`);
  console.log(`${"operation".padEnd(15)}${sides.map((s) => s.padStart(27)).join("")}`);
  for (const op of OPS) {
    const cells = sides.map((s) => {
      const x = summary(results.sides[s][op]);
      return `${fmt(x.median)} /${fmt(x.min)} /${fmt(x.max)}`.padStart(27);
    });
    console.log(`${op.padEnd(15)}${cells.join("")}`);
  }
  if (results.sides.librbd && results.sides["cinderts native"]) {
    console.log("\ncinderts native ÷ librbd in-process (medians; target ≤ 1.5):");
    console.log("  " + OPS.map((op) => `${op} ${(summary(results.sides["cinderts native"][op]).median / summary(results.sides.librbd[op]).median).toFixed(2)}`).join(" · "));
  }
  console.log(`\ncold start: fresh process, open + create 1 GiB + delete (ms, median / min / max of ${COLD_RUNS})`);
  for (const [k, v] of Object.entries(results.coldStart)) console.log(`  ${k.padEnd(24)}${fmt(v.median)} /${fmt(v.min)} /${fmt(v.max)}`);
}
