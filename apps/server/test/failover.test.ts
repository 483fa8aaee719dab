import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { existsSync, mkdirSync, openSync, readdirSync, readSync, closeSync, writeSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CindertsClient } from "../src/client.js";
import { ADMIN_TOKEN, dropSchema, mainJs, manifest, pgEnv, scratchSchema, startProcess, writeManifest, type ServerProcess } from "./harness.js";

const MiB = 1024 ** 2;

function readChunk(file: string, offset: number, length: number): Buffer {
  const fd = openSync(file, "r");
  try {
    const b = Buffer.alloc(length);
    readSync(fd, b, 0, length, offset);
    return b;
  } finally {
    closeSync(fd);
  }
}

describe.skipIf(!pgEnv)("an instance killed with SIGKILL during a clone", () => {
  const schema = scratchSchema("failover");
  // tmpfs keeps the 256 MiB source quick to write; the in-process copy still takes long enough to be cut.
  const dir = join(existsSync("/dev/shm") ? "/dev/shm" : "/tmp", `cinderts-failover-${process.pid}-${Date.now()}`);
  const volumesDir = join(dir, "volumes");
  let a: ServerProcess;
  let b: ServerProcess;

  beforeAll(async () => {
    if (!existsSync(mainJs)) throw new Error(`${mainJs} is missing: build @cinderts/server first`);
    mkdirSync(dir, { recursive: true });
    const m = await manifest({ schema, volumesDir, stateDir: join(dir, "state") });
    (m.backends as { options: Record<string, unknown> }[])[0]!.options = { path: volumesDir, reflink: "never", copyMethod: "node", copyChunkMiB: 1 };
    const file = writeManifest(dir, m);
    [a, b] = await Promise.all([startProcess(file), startProcess(file)]);
  });
  afterAll(async () => {
    a?.child.kill("SIGKILL");
    await b?.stop();
    if (pgEnv) await dropSchema(schema);
    const { rmSync } = await import("node:fs");
    rmSync(dir, { recursive: true, force: true });
  });

  it("the other instance reconciles the interrupted clone and the source's locks are free", async () => {
    const ca = new CindertsClient({ url: a.url, token: ADMIN_TOKEN });
    const cb = new CindertsClient({ url: b.url, token: ADMIN_TOKEN });
    const src = await ca.createVolume({ size: 1, name: "source" });
    // Real data in every MiB of the first 256 MiB, so that the copy cannot skip it as holes.
    const srcFile = join(volumesDir, `volume-${src.id}`);
    const fd = openSync(srcFile, "r+");
    const chunk = randomBytes(MiB);
    for (let i = 0; i < 256; i++) writeSync(fd, chunk, 0, MiB, i * MiB);
    closeSync(fd);

    const accepted = await ca.createVolume({ size: 1, source_volume_id: src.id }, { wait: false });
    a.child.kill("SIGKILL");
    await once(a.child, "exit");
    const stuck = await cb.getVolume(accepted.id);
    expect(stuck.status, "the clone was cut while copying").toBe("creating");

    const report = await cb.reconcile();
    const action = report.actions.find((x) => (x as { id: string }).id === accepted.id) as { action: string } | undefined;
    expect(action?.action).toMatch(/^creating \(clone interrupted\) → (error|available)/);
    const after = await cb.getVolume(accepted.id);
    expect(["error", "available"]).toContain(after.status);
    const files = readdirSync(volumesDir);
    expect(files.filter((f) => f.startsWith(".partial-"))).toEqual([]);
    if (after.status === "available") {
      expect(readChunk(join(volumesDir, `volume-${accepted.id}`), 255 * MiB, MiB).equals(chunk)).toBe(true);
    } else {
      expect(after.status_reason).toMatch(/interrupted/);
      expect(files).not.toContain(`volume-${accepted.id}`);
    }
    // A's advisory locks died with its sessions: B can take the source at once.
    const grown = await cb.extendVolume(src.id, 2);
    expect(grown.size).toBe(2);
    // Reconciling again finds nothing left to do.
    const again = await cb.reconcile();
    expect(again.actions).toEqual([]);
    // The error volume can be deleted cleanly.
    await cb.deleteVolume(accepted.id);
    expect((await cb.getVolume(accepted.id)).status).toBe("deleted");
  }, 120_000);

  it("SIGTERM lets an in-flight clone finish before the process exits", async () => {
    const file = join(dir, "cinderts.json");
    const c = await startProcess(file);
    const cc = new CindertsClient({ url: c.url, token: ADMIN_TOKEN, retries: 0 });
    const cb = new CindertsClient({ url: b.url, token: ADMIN_TOKEN });
    const src = await cb.createVolume({ size: 1, name: "source-2" });
    const fd = openSync(join(volumesDir, `volume-${src.id}`), "r+");
    const chunk = randomBytes(MiB);
    for (let i = 0; i < 128; i++) writeSync(fd, chunk, 0, MiB, i * MiB);
    closeSync(fd);
    const accepted = await cc.createVolume({ size: 1, source_volume_id: src.id }, { wait: false });
    expect(accepted.status).toBe("creating");
    const code = await c.stop();
    expect(code).toBe(0);
    expect(c.logs.some((l) => l.includes('"msg":"shutting down"'))).toBe(true);
    expect(c.logs.some((l) => /"msg":"stopped".*"unfinished":0/.test(l))).toBe(true);
    // The copy completed before exit: no reconcile needed.
    const done = await cb.getVolume(accepted.id);
    expect(done.status).toBe("available");
    expect(readChunk(join(volumesDir, `volume-${accepted.id}`), 127 * MiB, MiB).equals(chunk)).toBe(true);
    await expect(cc.listVolumes()).rejects.toMatchObject({ code: "BACKEND_ERROR" });
  }, 120_000);
});
