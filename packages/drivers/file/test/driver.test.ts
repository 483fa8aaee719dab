import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { access, constants, readdir, stat, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { GiB, assertPlugin, isStorageError, type StorageError } from "@cinderts/core";
import { createLocalRunner } from "@cinderts/runner-local";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import plugin, { FileDriverOptions } from "../src/index.js";
import type { FileDriver } from "../src/driver.js";
import { makeDriver, readAt, recordingTarget, snapshotRecord, volumeRecord, writeAt } from "./helpers.js";

async function failure(p: Promise<unknown> | (() => unknown)): Promise<StorageError> {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    if (isStorageError(e)) return e;
    throw e;
  }
  throw new Error("expected a StorageError");
}

const root = mkdtempSync(join(tmpdir(), "driver-file-test-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshDir = () => join(root, `backend-${n++}`);

describe("driver-file on a temporary directory", () => {
  let d: FileDriver;
  let dir: string;
  beforeAll(async () => {
    dir = freshDir();
    d = await makeDriver({ path: dir });
  });

  it("creates the directory in setup and a sparse file volume-<id> of the volume's size", async () => {
    const v = volumeRecord(2);
    await d.createVolume(v);
    const st = await stat(join(dir, `volume-${v.id}`));
    expect(st.size).toBe(2 * GiB);
    expect(st.blocks * 512).toBeLessThan(1024 * 1024);
    expect(st.mode & 0o777).toBe(0o600);
    expect(d.localPath(v)).toBe(join(dir, `volume-${v.id}`));
    expect(await d.inspectVolume(v)).toBe("present");
  });

  it("refuses ids that could escape the directory or are not ids, before touching anything", async () => {
    for (const id of ["../evil", "a/b", "", ".hidden", "x y", "a\0b", "-rf"]) {
      const err = await failure(d.createVolume(volumeRecord(1, { id })));
      expect(err.code).toBe("INVALID_ARGUMENT");
    }
    expect((await readdir(dir)).some((f) => f.includes("evil"))).toBe(false);
  });

  it("never overwrites an existing volume", async () => {
    const v = volumeRecord(1);
    await d.createVolume(v);
    await writeAt(d.localPath(v), 0, Buffer.from("keep me"));
    expect((await failure(d.createVolume(v))).code).toBe("ALREADY_EXISTS");
    const src = volumeRecord(1);
    await d.createVolume(src);
    expect((await failure(d.createClonedVolume(v, src))).code).toBe("ALREADY_EXISTS");
    expect((await readAt(d.localPath(v), 0, 7)).toString()).toBe("keep me");
  });

  it("deletes idempotently (twice, and a volume that never existed)", async () => {
    const v = volumeRecord(1);
    await d.createVolume(v);
    await d.deleteVolume(v);
    await d.deleteVolume(v);
    await d.deleteVolume(volumeRecord(1));
    expect(await d.inspectVolume(v)).toBe("absent");
  });

  it("extends by growing the file, keeps data, and never shrinks", async () => {
    const v = volumeRecord(1);
    await d.createVolume(v);
    await writeAt(d.localPath(v), 4096, Buffer.from("data before extend"));
    await d.extendVolume(v, 3);
    expect((await stat(d.localPath(v))).size).toBe(3 * GiB);
    expect((await readAt(d.localPath(v), 4096, 18)).toString()).toBe("data before extend");
    // A retried extend (after a crash) to a size the file already has is a no-op, not a shrink.
    await d.extendVolume({ ...v, size: 3 }, 2);
    expect((await stat(d.localPath(v))).size).toBe(3 * GiB);
    expect((await failure(d.extendVolume(volumeRecord(1), 2))).code).toBe("NOT_FOUND");
  });

  it("takes read-only snapshots that keep the data as it was", async () => {
    const v = volumeRecord(1);
    await d.createVolume(v);
    await writeAt(d.localPath(v), 0, Buffer.from("old data"));
    const s = snapshotRecord(v);
    await d.createSnapshot(s, v);
    await writeAt(d.localPath(v), 0, Buffer.from("new data"));
    const path = join(dir, `snapshot-${s.id}`);
    expect((await stat(path)).mode & 0o777).toBe(0o400);
    expect((await readAt(path, 0, 8)).toString()).toBe("old data");
    expect(await d.inspectSnapshot(s)).toBe("present");

    const fromSnap = volumeRecord(2);
    const seen: [number, number][] = [];
    await d.createVolumeFromSnapshot(fromSnap, s, { progress: (a, b) => seen.push([a, b]) });
    expect((await readAt(d.localPath(fromSnap), 0, 8)).toString()).toBe("old data");
    expect((await stat(d.localPath(fromSnap))).size).toBe(2 * GiB);
    expect((await stat(d.localPath(fromSnap))).mode & 0o777).toBe(0o600);
    expect(seen.length).toBeGreaterThan(0);
    const last = seen.at(-1)!;
    expect(last[0]).toBe(last[1]);

    await d.deleteSnapshot(s);
    await d.deleteSnapshot(s);
    expect(await d.inspectSnapshot(s)).toBe("absent");
    // The volume made from it is independent.
    expect((await readAt(d.localPath(fromSnap), 0, 8)).toString()).toBe("old data");
    expect((await failure(d.createVolumeFromSnapshot(volumeRecord(1), s))).code).toBe("NOT_FOUND");
    expect((await failure(d.createSnapshot(snapshotRecord(volumeRecord(1)), volumeRecord(1)))).code).toBe("NOT_FOUND");
  });

  it("clones with the source's data, grown to the clone's size", async () => {
    const src = volumeRecord(1);
    await d.createVolume(src);
    const head = randomBytes(64 * 1024);
    const tail = randomBytes(4096);
    await writeAt(d.localPath(src), 0, head);
    await writeAt(d.localPath(src), GiB - 4096, tail);
    const clone = volumeRecord(2);
    await d.createClonedVolume(clone, src);
    expect((await readAt(d.localPath(clone), 0, head.length)).equals(head)).toBe(true);
    expect((await readAt(d.localPath(clone), GiB - 4096, 4096)).equals(tail)).toBe(true);
    expect((await stat(d.localPath(clone))).size).toBe(2 * GiB);
    expect((await failure(d.createClonedVolume(volumeRecord(1), volumeRecord(1)))).code).toBe("NOT_FOUND");
  });

  it("reports a crash's partial copy as incomplete, lists it, and removes it on delete", async () => {
    const v = volumeRecord(1);
    writeFileSync(join(dir, `.partial-volume-${v.id}`), "half a copy");
    expect(await d.inspectVolume(v)).toBe("incomplete");
    expect((await d.listManagedVolumes()).map((x) => x.id)).toContain(v.id);
    await d.deleteVolume(v);
    expect(await d.inspectVolume(v)).toBe("absent");
    expect((await d.listManagedVolumes()).map((x) => x.id)).not.toContain(v.id);

    // A volume file shorter than the record (killed between open and truncate) is not complete either.
    const short = volumeRecord(1);
    writeFileSync(join(dir, `volume-${short.id}`), "");
    expect(await d.inspectVolume(short)).toBe("incomplete");
    await d.deleteVolume(short);

    const s = snapshotRecord(volumeRecord(1));
    writeFileSync(join(dir, `.partial-snapshot-${s.id}`), "x");
    expect(await d.inspectSnapshot(s)).toBe("incomplete");
    await d.deleteSnapshot(s);
    expect(await d.inspectSnapshot(s)).toBe("absent");
  });

  it("lists managed volumes from volume-* files only, with their sizes", async () => {
    const v = volumeRecord(3);
    await d.createVolume(v);
    writeFileSync(join(dir, "unrelated.img"), "x");
    writeFileSync(join(dir, "volume-"), "x");
    const list = await d.listManagedVolumes();
    expect(list).toContainEqual({ id: v.id, sizeGiB: 3 });
    expect(list.every((x) => x.id.length > 0)).toBe(true);
    expect(list.some((x) => x.id === "unrelated.img")).toBe(false);
  });

  it("reports stats with Cinder's names: one pool named after the backend, provisioned = sum of sizes", async () => {
    const fresh = await makeDriver({ path: freshDir() });
    const a = volumeRecord(2);
    const b = volumeRecord(3);
    await fresh.createVolume(a);
    await fresh.createVolume(b);
    await writeAt(fresh.localPath(a), 0, randomBytes(8 * 1024 * 1024));
    const stats = await fresh.getStats();
    expect(stats).toMatchObject({ volume_backend_name: "files", vendor_name: "cinderts", storage_protocol: "file", driver_version: "0.0.0-test" });
    expect(stats.pools).toHaveLength(1);
    const p = stats.pools[0]!;
    expect(p.pool_name).toBe("files");
    expect(p.thin_provisioning_support).toBe(true);
    expect(p.provisioned_capacity_gb).toBe(5);
    // 8 MiB written = 0.0078 GiB, rounded to two decimals.
    expect(p.allocated_capacity_gb).toBeGreaterThanOrEqual(0.01);
    expect(p.allocated_capacity_gb).toBeLessThan(0.1);
    expect(p.total_capacity_gb as number).toBeGreaterThan(0);
    expect(p.free_capacity_gb as number).toBeLessThanOrEqual(p.total_capacity_gb as number);
  });

  it("gives file connection info for this host, and refuses other hosts clearly", async () => {
    const v = volumeRecord(1);
    await d.createVolume(v);
    const props = { host: hostname(), multipath: false };
    d.validateConnector(props);
    await d.createExport(v, props);
    const info = await d.initializeConnection(v, props);
    expect(info).toEqual({ driver_volume_type: "file", data: { path: d.localPath(v), format: "raw", volume_id: v.id, host: hostname() } });
    await d.terminateConnection(v, props);
    await d.removeExport(v);
    const err = await failure(() => d.validateConnector({ host: "some-other-host", multipath: false }));
    expect(err.code).toBe("INVALID_ARGUMENT");
    expect(err.message).toContain("local files");
    expect(err.message).toContain("some-other-host");
    expect((await failure(d.initializeConnection(volumeRecord(1), props))).code).toBe("NOT_FOUND");
  });
});

describe("driver-file with an iSCSI target configured", () => {
  it("delegates exports and connections to the target with the file's path and size", async () => {
    const target = recordingTarget();
    const d = await makeDriver({ path: freshDir() }, { target });
    expect(target.calls[0]?.op).toBe("setup");
    const v = volumeRecord(2);
    await d.createVolume(v);
    const conn = { host: "initiator-host", initiator: "iqn.1994-05.com.example:host", multipath: false };
    d.validateConnector(conn);
    expect((await failure(() => d.validateConnector({ host: "x", multipath: false }))).code).toBe("INVALID_ARGUMENT");
    expect(await d.createExport(v, conn)).toEqual({ provider_location: "127.0.0.1:3260,1 iqn.test:vol 1" });
    expect((await d.initializeConnection(v, conn)).driver_volume_type).toBe("iscsi");
    await d.extendVolume(v, 3);
    await d.terminateConnection(v, conn);
    await d.removeExport(v);
    expect(target.calls.slice(1)).toEqual([
      { op: "createExport", path: d.localPath(v), sizeBytes: 2 * GiB, volumeId: v.id, connectorHost: "initiator-host" },
      { op: "initializeConnection", path: d.localPath(v), sizeBytes: 2 * GiB, volumeId: v.id, connectorHost: "initiator-host" },
      { op: "extendExport", path: d.localPath(v), sizeBytes: 3 * GiB, volumeId: v.id },
      { op: "terminateConnection", path: d.localPath(v), sizeBytes: 2 * GiB, volumeId: v.id, connectorHost: "initiator-host" },
      { op: "removeExport", path: d.localPath(v), sizeBytes: 2 * GiB, volumeId: v.id },
    ]);
    expect((await d.getStats()).storage_protocol).toBe("iSCSI");
  });
});

describe("driver-file configuration", () => {
  it("is a driver plugin with a strict options schema and defaults", () => {
    const p = assertPlugin({ default: plugin }, "driver", "@cinderts/driver-file");
    expect(p.id).toBe("file");
    expect(FileDriverOptions.parse({ path: "/x" })).toEqual({ path: "/x", reflink: "auto", copyMethod: "cp", copyChunkMiB: 1 });
    expect(FileDriverOptions.safeParse({ path: "/x", bogus: true }).success).toBe(false);
    expect(FileDriverOptions.safeParse({}).success).toBe(false);
    expect(FileDriverOptions.safeParse({ path: "/x", reflink: "sometimes" }).success).toBe(false);
    expect(FileDriverOptions.safeParse({ path: "/x", copyChunkMiB: 0 }).success).toBe(false);
  });

  it("fails setup clearly when path is a file", async () => {
    const file = join(root, "not-a-dir");
    await writeFile(file, "x");
    const err = await failure(makeDriver({ path: file }));
    expect(err.code).toBe("CONFIG_ERROR");
    expect(err.message).toContain(file);
  });

  it("refuses a remote runner for the cp copy method", async () => {
    const local = createLocalRunner();
    const remote = { name: "ssh:root@127.0.0.1:22", run: local.run.bind(local) };
    const err = await failure(makeDriver({ path: freshDir() }, { runner: remote }));
    expect(err.code).toBe("CONFIG_ERROR");
    expect(err.message).toContain("ssh:root@127.0.0.1:22");
    await makeDriver({ path: freshDir(), copyMethod: "node" }, { runner: remote });
  });

  it("keeps volume files private (0600) in a 0700 directory", async () => {
    const dir = freshDir();
    await makeDriver({ path: dir });
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    await access(dir, constants.W_OK);
  });
});
