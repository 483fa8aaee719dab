import { fork, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { processOwner, type Logger } from "@cinderts/core";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrations, SqlitePersistence } from "../src/index.js";

// Real OS processes on one database file. The worker is bundled from TypeScript sources (core through its
// "@cinderts/source" condition) into node_modules/.cache so that Node resolves better-sqlite3 from this package.
const pkgDir = join(dirname(fileURLToPath(import.meta.url)), "..");
const workerJs = join(pkgDir, "node_modules", ".cache", "cinderts-sqlite-test", "worker.mjs");
const root = mkdtempSync(join(tmpdir(), "cinderts-sqlite-mp-"));
const children = new Set<ChildProcess>();

beforeAll(async () => {
  mkdirSync(dirname(workerJs), { recursive: true });
  await build({
    entryPoints: [join(pkgDir, "test", "fixtures", "worker.ts")],
    outfile: workerJs,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    conditions: ["@cinderts/source"],
    external: ["better-sqlite3"],
    // Bundled CommonJS dependencies (yaml) call require() for Node builtins; give the ESM bundle one.
    banner: { js: 'import { createRequire as __cjsRequire } from "node:module"; const require = __cjsRequire(import.meta.url);' },
    logLevel: "error",
  });
});

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  rmSync(root, { recursive: true, force: true });
});

interface Worker {
  child: ChildProcess;
  ready: Promise<void>;
  next: (pred: (m: Record<string, unknown>) => boolean) => Promise<Record<string, unknown>>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function spawnWorker(mode: string, db: string, count = 0): Worker {
  const child = fork(workerJs, [mode, db, String(count)], { stdio: ["ignore", "inherit", "pipe", "ipc"] });
  children.add(child);
  let stderr = "";
  child.stderr!.on("data", (d) => (stderr += d));
  const messages: Record<string, unknown>[] = [];
  const waiters: { pred: (m: Record<string, unknown>) => boolean; resolve: (m: Record<string, unknown>) => void }[] = [];
  child.on("message", (m) => {
    const msg = m as Record<string, unknown>;
    messages.push(msg);
    for (const w of [...waiters]) if (w.pred(msg)) waiters.splice(waiters.indexOf(w), 1) && w.resolve(msg);
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => {
      children.delete(child);
      if (code !== 0 && signal !== "SIGKILL") console.error(`worker ${mode} exited ${code ?? signal}:\n${stderr}`);
      resolve({ code, signal });
    }),
  );
  const next = (pred: (m: Record<string, unknown>) => boolean) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const seen = messages.find(pred);
      if (seen) return resolve(seen);
      waiters.push({ pred, resolve });
      void exit.then(({ code, signal }) => reject(new Error(`worker ${mode} exited (${code ?? signal}) before the expected message:\n${stderr}`)));
    });
  return { child, next, exit, ready: next((m) => m.ready === true).then(() => undefined) };
}

/** Starts workers, waits until each has loaded, then lets them all go at once so that they really overlap. */
async function runTogether(mode: string, db: string, workers: number, count: number) {
  const ws = Array.from({ length: workers }, () => spawnWorker(mode, db, count));
  await Promise.all(ws.map((w) => w.ready));
  for (const w of ws) w.child.send("go");
  const results = await Promise.all(ws.map((w) => w.next((m) => m.done === true)));
  const exits = await Promise.all(ws.map((w) => w.exit));
  expect(exits.map((e) => e.code)).toEqual(ws.map(() => 0));
  return results;
}

const freshDb = (name: string) => join(root, name, "state.db");

describe("sqlite across OS processes", () => {
  it("processes opening a new database at once create the schema exactly once", async () => {
    const db = freshDb("migrate");
    await runTogether("init", db, 4, 0);
    const p = new SqlitePersistence({ path: db });
    await p.init();
    expect(p.schemaVersions().map((r) => r.version)).toEqual(migrations.map((m) => m.version));
    await p.close();
  });

  it("concurrent read-modify-write increments from 4 processes lose no update", async () => {
    const db = freshDb("increment");
    const workers = 4;
    const perWorker = 100;
    const results = await runTogether("increment", db, workers, perWorker);
    const p = new SqlitePersistence({ path: db });
    await p.init();
    const rec = (await p.get("volume", "counter-volume"))!;
    expect(rec.metadata.counter).toBe(String(workers * perWorker));
    expect(rec.version).toBe(1 + workers * perWorker);
    // The processes really raced (some writes were refused and retried), so the result proves the conditional write.
    expect(results.reduce((s, r) => s + (r.conflicts as number), 0)).toBeGreaterThan(0);
    await p.close();
  });

  it("the lock excludes other processes: unversioned read-modify-write under it loses nothing", async () => {
    const db = freshDb("locked");
    const workers = 3;
    const perWorker = 15;
    const results = await runTogether("locked", db, workers, perWorker);
    const p = new SqlitePersistence({ path: db });
    await p.init();
    expect(await p.getKey("counter")).toBe(workers * perWorker);
    expect(results.map((r) => r.overlaps)).toEqual([0, 0, 0]);
    expect(await p.listKeys("")).toEqual(["counter", "holder"]);
    // Every lock row was released.
    expect(p.locks.holder("volume:shared")).toBeUndefined();
    await p.close();
  });

  it("control: the same workload without the lock does lose updates (so the test above can fail)", async () => {
    const db = freshDb("unlocked");
    // Longer than the locked run, so that the workers overlap even if "go" reaches them some time apart.
    const results = await runTogether("unlocked", db, 3, 40);
    const p = new SqlitePersistence({ path: db });
    await p.init();
    const counter = (await p.getKey("counter")) as number;
    const overlaps = results.reduce((s, r) => s + (r.overlaps as number), 0);
    expect(counter < 120 || overlaps > 0).toBe(true);
    await p.close();
  });

  it("a lock held by a process killed with SIGKILL is taken over by the next acquirer", async () => {
    const db = freshDb("sigkill");
    const warnings: { msg: string; fields?: Record<string, unknown> }[] = [];
    const logger: Logger = {
      debug() {},
      info() {},
      warn: (msg, fields) => void warnings.push({ msg, fields }),
      error() {},
      child: () => logger,
    };
    const w = spawnWorker("hold", db);
    await w.ready;
    w.child.send("go");
    const { pid } = await w.next((m) => m.locked === true);
    expect(pid).toBe(w.child.pid);

    const p = new SqlitePersistence({ path: db, logger });
    await p.init();
    // Owners are host:pid[:boot.start-time] (core's processOwner), so a reused pid is not taken for the holder.
    const holder = p.locks.holder("volume:held")?.owner ?? "";
    expect(holder).toMatch(new RegExp(`^${hostname()}:${pid}(:|$)`));
    // While the holder lives, its lock holds.
    await expect(p.locks.acquire("volume:held", { timeoutMs: 300 })).rejects.toMatchObject({
      code: "LOCK_TIMEOUT",
      details: { data: { holder } },
    });

    w.child.kill("SIGKILL");
    expect(await w.exit).toEqual({ code: null, signal: "SIGKILL" });

    const lock = await p.locks.acquire("volume:held", { timeoutMs: 5_000 });
    expect(p.locks.holder("volume:held")?.owner).toBe(processOwner());
    expect(warnings).toEqual([
      expect.objectContaining({ msg: "took over a lock left by a dead process", fields: expect.objectContaining({ previousOwner: holder }) }),
    ]);
    await lock.release();
    expect(p.locks.holder("volume:held")).toBeUndefined();
    await p.close();
  });
});
