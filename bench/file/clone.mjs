#!/usr/bin/env node
/**
 * driver-file figures, printed side by side with the raw tools on the same filesystem:
 *  1. clone of a sparse 4 GiB image holding 1 GiB of random data: driver-file's copy paths vs
 *     `cp --sparse=always` vs `cp --reflink=auto` (BENCH_DIR, default the system temp dir);
 *  2. reflink clone of the same image on btrfs (and xfs) made on a loop device (root only);
 *  3. create+delete volume ops/s, by the driver alone and through core's lifecycle (in-memory persistence).
 *
 * Run after building the packages: `pnpm --filter @cinderts/bench-file bench`.
 * Env: BENCH_DIR, BENCH_RUNS (default 5), BENCH_IMAGE_GIB (4), BENCH_DATA_GIB (1), BENCH_OPS (300).
 */
import { execFileSync } from "node:child_process";
import { randomFillSync, randomUUID } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { open, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Workspace packages by name; by path until bench/* is part of the pnpm workspace. */
async function load(name, relDist) {
  try {
    return await import(name);
  } catch (e) {
    if (e?.code !== "ERR_MODULE_NOT_FOUND") throw e;
    return import(new URL(relDist, import.meta.url).href);
  }
}

const core = await load("@cinderts/core", "../../packages/core/dist/index.js");
const { default: driverPlugin } = await load("@cinderts/driver-file", "../../packages/drivers/file/dist/index.js");
const runnerMod = await load("@cinderts/runner-local", "../../packages/runners/local/dist/index.js");

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const IMAGE = Number(process.env.BENCH_IMAGE_GIB ?? 4) * GiB;
const DATA = Number(process.env.BENCH_DATA_GIB ?? 1) * GiB;
const OPS = Number(process.env.BENCH_OPS ?? 300);
const isRoot = process.getuid?.() === 0;

const sh = (cmd, args) => execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmtS = (ms) => (ms < 1000 ? `${ms.toFixed(ms < 10 ? 2 : 0)} ms` : `${(ms / 1000).toFixed(2)} s`);
const fmtGiB = (b) => `${(b / GiB).toFixed(2)} GiB`;

function table(title, header, rows) {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => String(r[i]).length)));
  console.log(`\n${title}`);
  for (const [n, r] of all.entries()) {
    console.log("  " + r.map((c, i) => String(c).padEnd(widths[i])).join("   "));
    if (n === 0) console.log("  " + widths.map((w) => "-".repeat(w)).join("   "));
  }
}

/** A sparse image with DATA bytes of random data in 16 MiB chunks spread evenly over IMAGE bytes. */
async function makeImage(path) {
  const fh = await open(path, "w", 0o600);
  await fh.truncate(IMAGE);
  const chunk = Buffer.allocUnsafe(16 * MiB);
  const n = DATA / chunk.length;
  const stride = Math.floor(IMAGE / n / MiB) * MiB;
  for (let i = 0; i < n; i++) {
    randomFillSync(chunk);
    await fh.write(chunk, 0, chunk.length, i * stride);
  }
  await fh.close();
}

/** The filesystem type (findmnt says "ext4" where `stat -f` says "ext2/ext3"). */
function fsTypeOf(dir) {
  try {
    return sh("findmnt", ["-n", "-o", "FSTYPE", "--target", dir]).trim();
  } catch {
    return sh("stat", ["-f", "-c", "%T", dir]).trim();
  }
}

const allocated = async (p) => (await stat(p)).blocks * 512;

function makeDriver(path, options = {}) {
  const config = driverPlugin.configSchema.parse({ path, ...options });
  const kv = new Map();
  return driverPlugin.create(config, {
    logger: core.silentLogger,
    runner: runnerMod.createLocalRunner(),
    locks: new core.InProcessLockManager(),
    stateDir: path,
    kv: {
      get: async (k) => kv.get(k),
      set: async (k, v) => void kv.set(k, v),
      delete: async (k) => void kv.delete(k),
      list: async (p = "") => [...kv.keys()].filter((k) => k.startsWith(p)),
    },
    backendName: "bench",
  });
}

function volume(id, size) {
  const now = new Date().toISOString();
  return {
    id, version: 1, backend: "bench", name: null, size, status: "creating", source_volume_id: null, snapshot_id: null,
    created_at: now, updated_at: now, metadata: {}, intent: null, status_reason: null,
    provider_location: null, provider_id: null, provider_auth: null, provider_geometry: null,
  };
}

/**
 * Times each method RUNS times, round-robin so that load from other processes on a shared machine falls
 * on every method alike; `sync` before each copy keeps earlier writeback out of the measurement.
 * A method is `async (dst) => resultPath`: the clock stops when the copy is complete under its name.
 * Returns per method the median time and the allocated bytes of its last copy.
 */
async function timeRounds(dir, methods) {
  const times = methods.map(() => []);
  const alloc = methods.map(() => 0);
  for (let r = 0; r < RUNS; r++) {
    for (const [i, [, fn]] of methods.entries()) {
      const dst = join(dir, `copy-${randomUUID()}`);
      sh("sync", []);
      const t0 = performance.now();
      const result = await fn(dst);
      times[i].push(performance.now() - t0);
      alloc[i] = await allocated(result);
      rmSync(result, { force: true });
    }
  }
  return methods.map(([name], i) => [name, { ms: median(times[i]), min: Math.min(...times[i]), alloc: alloc[i] }]);
}

// ───────────── 1. copy throughput on one filesystem ─────────────

async function copyBench(base) {
  const dir = mkdtempSync(join(base, "cinderts-bench-file-"));
  try {
    const vols = join(dir, "volumes");
    mkdirSync(vols);
    const srcVol = volume(randomUUID(), IMAGE / GiB);
    const src = join(vols, `volume-${srcVol.id}`);
    await makeImage(src);
    const srcAlloc = await allocated(src);
    const fsType = fsTypeOf(dir);

    const cpDriver = makeDriver(vols, { reflink: "never", copyMethod: "cp" });
    const nodeDriver = makeDriver(vols, { reflink: "never", copyMethod: "node" });
    const node8Driver = makeDriver(vols, { reflink: "never", copyMethod: "node", copyChunkMiB: 8 });
    for (const d of [cpDriver, nodeDriver, node8Driver]) await d.setup();
    // The driver names its files itself (volume-<id>): the result is that file.
    const viaDriver = (d) => async () => {
      const v = volume(randomUUID(), IMAGE / GiB);
      await d.createClonedVolume(v, srcVol);
      return d.localPath(v);
    };
    const viaCp = (...args) => async (dst) => {
      sh("cp", [...args, src, dst]);
      return dst;
    };
    const results = await timeRounds(dir, [
      ["cp --sparse=always", viaCp("--sparse=always")],
      ["cp --reflink=auto", viaCp("--reflink=auto")],
      ["driver-file copy (copyMethod cp)", viaDriver(cpDriver)],
      ["driver-file copy (copyMethod node, 1 MiB)", viaDriver(nodeDriver)],
      ["driver-file copy (copyMethod node, 8 MiB)", viaDriver(node8Driver)],
    ]);
    const ref = results[0][1];
    table(
      `clone of a sparse ${fmtGiB(IMAGE)} image with ${fmtGiB(DATA)} of random data (${fsType} at ${dir}; ${RUNS} runs; source allocated ${fmtGiB(srcAlloc)})`,
      ["method", "median", "best", "image GiB/s (best)", "data MiB/s (best)", "allocated", "vs cp --sparse=always (median / best)"],
      results.map(([name, r]) => [
        name,
        fmtS(r.ms),
        fmtS(r.min),
        (IMAGE / GiB / (r.min / 1000)).toFixed(2),
        (DATA / MiB / (r.min / 1000)).toFixed(0),
        fmtGiB(r.alloc),
        `${Math.round((ref.ms / r.ms) * 100)}% / ${Math.round((ref.min / r.min) * 100)}%`,
      ]),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ───────────── 2. reflink clone on btrfs / xfs ─────────────

function hasTool(t) {
  try {
    sh("sh", ["-c", 'command -v "$1"', "sh", t]);
    return true;
  } catch {
    return false;
  }
}

async function reflinkBench() {
  if (!isRoot) {
    console.log("\nreflink clone: skipped (needs root to make a btrfs/xfs filesystem on a loop device)");
    return;
  }
  const rows = [];
  for (const [type, mkfs, args] of [
    ["btrfs", "mkfs.btrfs", ["-f", "-q"]],
    ["xfs", "mkfs.xfs", ["-f", "-q", "-m", "reflink=1"]],
  ]) {
    if (!hasTool(mkfs)) {
      rows.push([type, `skipped: ${mkfs} missing`, "", ""]);
      continue;
    }
    const root = mkdtempSync(join(tmpdir(), `cinderts-bench-${type}-`));
    const img = join(root, "fs.img");
    const mnt = join(root, "mnt");
    mkdirSync(mnt);
    let dev;
    let mounted = false;
    try {
      sh("truncate", ["-s", `${Math.ceil((DATA * 3) / GiB) + 2}G`, img]);
      dev = sh("losetup", ["--find", "--show", img]).trim();
      sh(mkfs, [...args, dev]);
      sh("mount", [dev, mnt]);
      mounted = true;
      const vols = join(mnt, "volumes");
      const d = makeDriver(vols, { reflink: "always" });
      await d.setup();
      const srcVol = volume(randomUUID(), IMAGE / GiB);
      await makeImage(d.localPath(srcVol));
      const timed = await timeRounds(vols, [
        [
          "driver-file reflink clone",
          async () => {
            const v = volume(randomUUID(), IMAGE / GiB);
            await d.createClonedVolume(v, srcVol);
            return d.localPath(v);
          },
        ],
        [
          "cp --reflink=always",
          async (dst) => {
            sh("cp", ["--reflink=always", d.localPath(srcVol), dst]);
            return dst;
          },
        ],
      ]);
      for (const [name, r] of timed) rows.push([type, name, fmtS(r.ms), fmtGiB(r.alloc)]);
    } finally {
      if (mounted) sh("umount", [mnt]);
      if (dev) sh("losetup", ["-d", dev]);
      rmSync(root, { recursive: true, force: true });
    }
  }
  table(`reflink clone of a ${fmtGiB(IMAGE)} image with ${fmtGiB(DATA)} of data (loop device; median of ${RUNS}; the driver's time includes its partial-file link and unlink)`, ["fs", "method", "time", "clone st_blocks (shared)"], rows);
}

// ───────────── 3. create+delete ops/s ─────────────

async function opsBench(base) {
  const dir = mkdtempSync(join(base, "cinderts-bench-ops-"));
  try {
    const d = makeDriver(join(dir, "driver"));
    await d.setup();
    let t0 = performance.now();
    for (let i = 0; i < OPS; i++) {
      const v = volume(randomUUID(), 1);
      await d.createVolume(v);
      await d.deleteVolume(v);
    }
    const driverOps = OPS / ((performance.now() - t0) / 1000);

    const memory = core.definePersistence({
      id: "bench-memory",
      version: "0",
      description: "in-memory persistence for the benchmark",
      // An empty strict object schema, borrowed from a zod schema at hand (zod is not a dependency here).
      configSchema: driverPlugin.configSchema.pick({}).strict(),
      create: () => new core.MemoryPersistence(),
    });
    const ct = await core.Cinderts.open(
      core.parseManifest({
        persistence: { plugin: memory, options: {} },
        backends: [{ name: "bench", driver: driverPlugin, options: { path: join(dir, "core") }, runner: { plugin: runnerMod.default, options: {} } }],
        connectors: [],
      }),
      { logger: core.silentLogger },
    );
    const b = ct.backend("bench");
    t0 = performance.now();
    for (let i = 0; i < OPS; i++) {
      const v = await b.createVolume({ size: 1 });
      await b.deleteVolume(v.id);
    }
    const coreOps = OPS / ((performance.now() - t0) / 1000);
    await ct.close();
    const fsType = fsTypeOf(dir);
    table(`create+delete of a 1 GiB volume (${fsType} at ${dir}; ${OPS} pairs)`, ["path", "pairs/s"], [
      ["driver-file alone (createVolume + deleteVolume)", driverOps.toFixed(0)],
      ["core Backend + driver-file, in-memory persistence", coreOps.toFixed(0)],
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const base = process.env.BENCH_DIR ?? tmpdir();
console.log(`driver-file benchmark — node ${process.version}, ${sh("cp", ["--version"]).split("\n")[0]}, ${RUNS} runs each`);
await copyBench(base);
if (isRoot) {
  // The same comparison without a disk: on a shared machine, disk writeback is the noisiest part.
  const root = mkdtempSync(join(tmpdir(), "cinderts-bench-tmpfs-"));
  sh("mount", ["-t", "tmpfs", "-o", `size=${Math.ceil((DATA * 3) / GiB) + 1}g`, "cinderts-bench", root]);
  try {
    await copyBench(root);
  } finally {
    sh("umount", [root]);
    rmSync(root, { recursive: true, force: true });
  }
}
await reflinkBench();
await opsBench(base);
