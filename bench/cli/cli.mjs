#!/usr/bin/env node
/**
 * CLI figures, printed side by side in one run on the embedded default (file backend + SQLite) in a temp dir:
 *  1. cold start: a fresh `cinderts volume list --json` process (spawn to exit), median of BENCH_RUNS, beside a
 *     bare `node -e 0` and `cinderts --help` (the CLI's own floor, no plugin loaded);
 *  2. create+delete of a 1 GiB volume: through the CLI (one process per command) and through the library in one
 *     process (Cinderts.open on the same kind of manifest).
 *
 * Run after building: `pnpm --filter cinderts... build && node bench/cli/cli.mjs`.
 * Env: BENCH_RUNS (default 15, at least 10), BENCH_CLI_PAIRS (20), BENCH_LIB_PAIRS (200).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const REPO = fileURLToPath(new URL("../..", import.meta.url));
const CLI = join(REPO, "apps/cli/dist/cinderts.js");
const RUNS = Math.max(10, Number(process.env.BENCH_RUNS ?? 15));
const CLI_PAIRS = Number(process.env.BENCH_CLI_PAIRS ?? 20);
const LIB_PAIRS = Number(process.env.BENCH_LIB_PAIRS ?? 200);

const work = mkdtempSync(join(tmpdir(), "cinderts-bench-cli-"));
const env = { PATH: process.env.PATH, HOME: join(work, "home"), XDG_DATA_HOME: join(work, "xdg") };

/**
 * CPU time (user + system) of the children this process has waited for, from /proc/self/stat (Linux; clock
 * ticks of 10 ms). On a loaded machine wall time mostly measures the queue; CPU time is the CLI's own cost.
 */
function childCpuMs() {
  try {
    const fields = readFileSync("/proc/self/stat", "utf8").split(") ")[1].split(" ");
    return (Number(fields[13]) + Number(fields[14])) * 10; // cutime + cstime
  } catch {
    return NaN;
  }
}

function run(args, { check = true } = {}) {
  const cpu0 = childCpuMs();
  const started = performance.now();
  const r = spawnSync(process.execPath, args, { cwd: work, env, encoding: "utf8" });
  const ms = performance.now() - started;
  if (check && r.status !== 0) throw new Error(`node ${args.join(" ")} exited ${r.status}: ${r.stderr}`);
  return { ms, cpu: childCpuMs() - cpu0, stdout: r.stdout };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Interleaved so that a burst of load on the machine hits every subject alike. */
function coldStarts(subjects) {
  const times = subjects.map(() => []);
  const cpus = subjects.map(() => []);
  for (let i = 0; i < RUNS; i++) {
    subjects.forEach(([, args], j) => {
      const r = run(args);
      times[j].push(r.ms);
      cpus[j].push(r.cpu);
    });
  }
  return subjects.map(([name], j) => ({ name, median: median(times[j]), min: Math.min(...times[j]), cpu: median(cpus[j]) }));
}

try {
  // The state exists (as on any machine that used the CLI before) and holds a few volumes to list.
  for (let i = 0; i < 5; i++) run([CLI, "volume", "create", "--size", "1", "-q"]);

  const cold = coldStarts([
    ["node -e 0", ["-e", "0"]],
    ["cinderts --help", [CLI, "--help"]],
    ["cinderts volume list --json", [CLI, "volume", "list", "--json"]],
  ]);

  // create+delete through the CLI: two processes per pair, as a shell script would do it.
  let started = performance.now();
  for (let i = 0; i < CLI_PAIRS; i++) {
    const id = run([CLI, "volume", "create", "--size", "1", "-q"]).stdout.trim();
    run([CLI, "volume", "delete", id, "-q"]);
  }
  const cliRate = CLI_PAIRS / ((performance.now() - started) / 1000);

  // The same through the library, in this process, on its own data dir.
  const { Cinderts, parseManifest } = await import(new URL("../../packages/core/dist/index.js", import.meta.url).href);
  const lib = join(work, "lib");
  const loaded = {
    ...parseManifest({
      persistence: { plugin: "@cinderts/persistence-sqlite", options: { path: join(lib, "cinderts.db") } },
      backends: [{ name: "default", driver: "@cinderts/driver-file", options: { path: join(lib, "volumes") } }],
      state_dir: join(lib, "state"),
    }),
    baseDir: lib,
  };
  const ct = await Cinderts.open(loaded, { resolveFrom: [new URL("../../apps/cli/dist/cinderts.js", import.meta.url).href] });
  const b = ct.backend("default");
  for (let i = 0; i < 5; i++) await b.deleteVolume((await b.createVolume({ size: 1 })).id); // warm-up
  started = performance.now();
  for (let i = 0; i < LIB_PAIRS; i++) await b.deleteVolume((await b.createVolume({ size: 1 })).id);
  const libRate = LIB_PAIRS / ((performance.now() - started) / 1000);
  await ct.close();

  const [node, help, list] = cold;
  const pad = (s, n) => String(s).padEnd(n);
  console.log(`cinderts CLI bench — node ${process.version}, ${cpus().length} CPUs, load average ${loadavg()[0].toFixed(2)}, ${RUNS} runs each`);
  console.log("");
  console.log("cold start (spawn to exit, ms)     wall median  wall min  cpu median  cpu × node");
  for (const c of cold) {
    console.log(
      `  ${pad(c.name, 33)} ${c.median.toFixed(1).padStart(9)} ${c.min.toFixed(1).padStart(9)} ${c.cpu.toFixed(0).padStart(11)} ${(c.cpu / node.cpu).toFixed(2).padStart(10)}`,
    );
  }
  console.log(`  CLI cost over bare node (wall):  ${(list.median - node.median).toFixed(1).padStart(9)}   target: volume list --json < 150 ms: ${list.median < 150 ? "met" : "NOT met"}`);
  console.log(`  of which plugin loading + query: ${(list.median - help.median).toFixed(1).padStart(9)}`);
  console.log("");
  console.log("create+delete of a 1 GiB volume, embedded default (file backend + SQLite)");
  console.log(`  through the CLI (2 processes/pair) ${cliRate.toFixed(2).padStart(8)} pairs/s  (${CLI_PAIRS} pairs)`);
  console.log(`  library, in-process                ${libRate.toFixed(1).padStart(8)} pairs/s  (${LIB_PAIRS} pairs)`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
