import { spawn, type ChildProcess } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isStorageError, type VolumeRecord } from "@cinderts/core";
import { createLocalRunner } from "@cinderts/runner-local";
import { OWNER_KEY, volumeImage, type RbdDriver } from "../src/index.js";
import { ceph, GiB, imageExists, newDriver, rbd, rbdJson, snapshotRecord, volumeRecord, transportsUnderTest } from "./cluster.js";

/**
 * The cases that only a real cluster can answer: what Ceph really says when a snapshot has clones, when an
 * image has watchers, when an image is gone. Runs once per transport under test (cli, and native when the addon
 * is built; both in CI), so an image tagged by the native addon is read back by the `rbd` CLI.
 */
const transports = await transportsUnderTest();

describe.skipIf(!ceph).each(transports)("RBD on a real cluster (%s transport)", (transport) => {
  let driver: RbdDriver;
  const made: VolumeRecord[] = [];
  const pool = ceph?.CINDERTS_RBD_POOL ?? "";

  const create = async (size = 1) => {
    const v = volumeRecord(size);
    await driver.createVolume(v);
    made.push(v);
    return v;
  };

  beforeAll(async () => {
    driver = newDriver({ transport, busyRetries: 1, busyRetryIntervalSec: 0.2 }).driver;
    await driver.setup();
    expect(driver.transport).toBe(transport);
  });

  afterAll(async () => {
    // children first, so that parents are not left as .deleted
    for (const v of made.reverse()) await driver.deleteVolume(v).catch(() => undefined);
    await driver.close();
  });

  it("tags every image it creates with the volume id", async () => {
    const v = await create();
    expect((await rbd("image-meta", "get", "--pool", pool, "--image", volumeImage(v.id), OWNER_KEY)).trim()).toBe(v.id);
    expect(await driver.inspectVolume(v)).toBe("present");
    expect((await driver.listManagedVolumes()).map((x) => x.id)).toContain(v.id);
    const info = await rbdJson<{ size: number; object_size: number }>("info", "--pool", pool, "--image", volumeImage(v.id));
    expect(info).toMatchObject({ size: GiB, object_size: 4 * 1024 * 1024 });
  });

  it("stats come from the cluster: per pool total/free/provisioned", async () => {
    const before = await driver.getStats({ refresh: true });
    await create(3);
    const after = await driver.getStats({ refresh: true });
    const p = after.pools[0]!;
    expect(p.pool_name).toBe(pool);
    expect(p.backend_state).toBe("up");
    expect(typeof p.total_capacity_gb).toBe("number");
    expect(p.free_capacity_gb as number).toBeGreaterThan(0);
    expect(p.provisioned_capacity_gb! - before.pools[0]!.provisioned_capacity_gb!).toBe(3);
  });

  it("connection info names the monitors and the cluster fsid", async () => {
    const v = await create();
    const ci = await driver.initializeConnection(v, { host: "h", multipath: false });
    const mons = JSON.parse((await createLocalRunner().run(["ceph", "--conf", ceph!.CEPH_CONF, "mon", "dump", "--format", "json"])).stdout) as {
      fsid: string;
    };
    expect(ci).toMatchObject({
      driver_volume_type: "rbd",
      data: { name: `${pool}/${volumeImage(v.id)}`, hosts: ["127.0.0.1"], ports: [process.env.CINDERTS_CEPH_MON_PORT_V1 ?? "6789"], secret_uuid: mons.fsid, auth_username: "admin" },
    });
    expect(ci.data).not.toHaveProperty("keyring");
  });

  it("image already gone: delete of volume and snapshot succeed, extend says NOT_FOUND", async () => {
    const v = volumeRecord();
    await driver.createVolume(v);
    const s = snapshotRecord(v);
    await driver.createSnapshot(s, v);
    await rbd("snap", "rm", "--force", "--no-progress", "--pool", pool, "--image", volumeImage(v.id), "--snap", `snapshot-${s.id}`);
    await driver.deleteSnapshot(s, v);
    await rbd("rm", "--no-progress", "--pool", pool, "--image", volumeImage(v.id));
    await driver.deleteVolume(v);
    await driver.deleteSnapshot(s, v);
    await expect(driver.extendVolume(v, 2)).rejects.toMatchObject({ code: "NOT_FOUND" });
    expect(await driver.inspectVolume(v)).toBe("absent");
    expect(await driver.inspectSnapshot(s, v)).toBe("absent");
  });

  it("retries are idempotent: create volume and snapshot again succeed; a foreign image of that name is ALREADY_EXISTS", async () => {
    const v = await create();
    await driver.createVolume(v); // as after a crash between the create and the record update
    const s = snapshotRecord(v);
    await driver.createSnapshot(s, v);
    await driver.createSnapshot(s, v);
    const snaps = await rbdJson<{ name: string; protected: string }[]>("snap", "ls", "--pool", pool, "--image", volumeImage(v.id));
    expect(snaps).toEqual([expect.objectContaining({ name: `snapshot-${s.id}`, protected: "true" })]);
    await driver.deleteSnapshot(s, v);

    const foreign = volumeRecord();
    await rbd("create", "--pool", pool, "--image", volumeImage(foreign.id), "--size", "1G");
    try {
      await expect(driver.createVolume(foreign)).rejects.toMatchObject({ code: "ALREADY_EXISTS" });
      expect(await driver.inspectVolume(foreign)).toBe("incomplete"); // exists without our tag
    } finally {
      await rbd("rm", "--no-progress", "--pool", pool, "--image", volumeImage(foreign.id));
    }
  });

  describe("snapshot with dependents", () => {
    it("flatten (default): the clones become independent, the snapshot goes, no garbage", async () => {
      const v = await create();
      const s = snapshotRecord(v);
      await driver.createSnapshot(s, v);
      const c1 = volumeRecord(1);
      const c2 = volumeRecord(2);
      await driver.createVolumeFromSnapshot(c1, s);
      await driver.createVolumeFromSnapshot(c2, s);
      made.push(c1, c2);
      expect(await rbdJson<unknown[]>("children", "--pool", pool, "--image", volumeImage(v.id), "--snap", `snapshot-${s.id}`)).toHaveLength(2);

      await driver.deleteSnapshot(s, v);
      expect(await rbdJson<unknown[]>("snap", "ls", "--pool", pool, "--image", volumeImage(v.id))).toEqual([]);
      for (const c of [c1, c2]) {
        expect(await rbdJson<Record<string, unknown>>("info", "--pool", pool, "--image", volumeImage(c.id))).not.toHaveProperty("parent");
      }
      expect(await rbdJson<{ size: number }>("info", "--pool", pool, "--image", volumeImage(c2.id))).toMatchObject({ size: 2 * GiB });
      // the source can now go without leaving a .deleted image behind
      await driver.deleteVolume(v);
      expect(await imageExists(volumeImage(v.id))).toBe(false);
      expect(await imageExists(volumeImage(v.id) + ".deleted")).toBe(false);
    });

    it("refuse: HasDependentsError names the dependent volumes and nothing changes", async () => {
      const { driver: strict } = newDriver({ transport, snapshotsWithDependents: "refuse" });
      await strict.setup();
      try {
        const v = await create();
        const s = snapshotRecord(v);
        await strict.createSnapshot(s, v);
        const c = volumeRecord();
        await strict.createVolumeFromSnapshot(c, s);
        made.push(c);
        const err = await strict.deleteSnapshot(s, v).catch((e: unknown) => e);
        expect(isStorageError(err) && err.code).toBe("HAS_DEPENDENTS");
        expect(err).toMatchObject({ dependents: [{ kind: "volume", id: c.id }] });
        const snaps = await rbdJson<{ name: string; protected: string }[]>("snap", "ls", "--pool", pool, "--image", volumeImage(v.id));
        expect(snaps).toEqual([expect.objectContaining({ name: `snapshot-${s.id}`, protected: "true" })]);
        expect(await rbdJson<{ parent?: unknown }>("info", "--pool", pool, "--image", volumeImage(c.id))).toHaveProperty("parent");
        // once the clone is gone the snapshot deletes normally
        await strict.deleteVolume(c);
        await strict.deleteSnapshot(s, v);
        expect(await driver.inspectSnapshot(s, v)).toBe("absent");
      } finally {
        await strict.close();
      }
    });

    it("a volume with a clone becomes a hidden .deleted parent, removed with its last clone", async () => {
      const a = await create();
      const b = volumeRecord();
      await driver.createClonedVolume(b, a);
      const c = volumeRecord();
      await driver.createClonedVolume(c, b); // chain a <- b <- c
      made.push(b, c);
      await driver.deleteVolume(a);
      await driver.deleteVolume(b);
      expect(await imageExists(volumeImage(a.id))).toBe(false);
      expect(await imageExists(volumeImage(a.id) + ".deleted")).toBe(true);
      expect(await imageExists(volumeImage(b.id) + ".deleted")).toBe(true);
      // the hidden parents are not reported as volumes that no record owns
      const managed = (await driver.listManagedVolumes()).map((x) => x.id);
      expect(managed).not.toContain(a.id);
      expect(managed).toContain(c.id);

      await driver.deleteVolume(c);
      expect(await imageExists(volumeImage(c.id))).toBe(false);
      expect(await imageExists(volumeImage(b.id) + ".deleted")).toBe(false);
      expect(await imageExists(volumeImage(a.id) + ".deleted")).toBe(false);
    });

    it("the clone depth limit flattens the new volume and drops the temporary snapshot", async () => {
      const { driver: shallow } = newDriver({ transport, maxCloneDepth: 1 });
      await shallow.setup();
      try {
        const a = await create();
        const b = volumeRecord();
        await shallow.createClonedVolume(b, a); // depth 1: allowed as a COW clone
        const c = volumeRecord();
        await shallow.createClonedVolume(c, b); // would be depth 2: flattened
        made.push(b, c);
        expect(await rbdJson<{ parent?: { image: string } }>("info", "--pool", pool, "--image", volumeImage(b.id))).toMatchObject({
          parent: { image: volumeImage(a.id) },
        });
        expect(await rbdJson<Record<string, unknown>>("info", "--pool", pool, "--image", volumeImage(c.id))).not.toHaveProperty("parent");
        expect(await rbdJson<unknown[]>("snap", "ls", "--pool", pool, "--image", volumeImage(b.id))).toEqual([]);
      } finally {
        await shallow.close();
      }
    });
  });

  describe("busy image", () => {
    let watcher: ChildProcess | undefined;

    // `rbd watch` holds a watch on the image header as an attached client (qemu, krbd) does
    const watch = async (image: string) => {
      watcher = spawn("rbd", ["--conf", ceph!.CEPH_CONF, "watch", "--pool", pool, "--image", image], { stdio: ["pipe", "pipe", "pipe"] });
      for (let i = 0; i < 100; i++) {
        const st = await rbdJson<{ watchers: unknown[] }>("status", "--pool", pool, "--image", image);
        if (st.watchers.length > 0) return;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error("watcher did not register");
    };
    const unwatch = async () => {
      const w = watcher;
      watcher = undefined;
      if (!w || w.exitCode !== null) return;
      const exited = new Promise((r) => w.once("exit", r));
      w.stdin?.end("\n"); // rbd watch exits cleanly (unwatching) on enter
      await exited;
    };
    afterAll(unwatch);

    it("is retried, then reported as BUSY; the image is still there", async () => {
      const v = await create();
      await watch(volumeImage(v.id));
      const err = await driver.deleteVolume(v).catch((e: unknown) => e);
      expect(isStorageError(err) && err.code).toBe("BUSY");
      expect(isStorageError(err) && err.retryable).toBe(true);
      expect(isStorageError(err) && err.details.resource).toEqual({ kind: "volume", id: v.id });
      expect(await imageExists(volumeImage(v.id))).toBe(true);
      await unwatch();
      await driver.deleteVolume(v);
      expect(await imageExists(volumeImage(v.id))).toBe(false);
    });

    it("succeeds when the watcher goes away while the driver retries", async () => {
      const { driver: patient } = newDriver({ transport, busyRetries: 20, busyRetryIntervalSec: 0.25 });
      await patient.setup();
      try {
        const v = await create();
        await watch(volumeImage(v.id));
        const release = new Promise((r) => setTimeout(r, 600)).then(unwatch);
        await patient.deleteVolume(v);
        await release;
        expect(await imageExists(volumeImage(v.id))).toBe(false);
      } finally {
        await patient.close();
      }
    });
  });
});
