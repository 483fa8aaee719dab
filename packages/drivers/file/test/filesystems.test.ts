/**
 * The copy paths on real filesystems made by the test: reflink on btrfs and xfs (loop devices), the
 * sparse copy on ext4 (loop device) and tmpfs. Needs root; skipped locally without it, failing in CI.
 */
import { randomBytes } from "node:crypto";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { GiB, isStorageError } from "@cinderts/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FileDriverInput } from "../src/config.js";
import type { FileDriver } from "../src/driver.js";
import { allocatedBytes, createFs, sharedBytes, skipUnlessFs, type FsFixture, type FsType } from "./fs-fixture.js";
import { makeDriver, readAt, snapshotRecord, volumeRecord, writeAt } from "./helpers.js";

const MiB = 1024 * 1024;
const CHUNKS = 24;
const CHUNK = 2 * MiB;

/** Random 2 MiB chunks spread over a 1 GiB volume (the rest are holes); returns what was written. */
async function fillSparse(path: string): Promise<{ offset: number; data: Buffer }[]> {
  const written = [];
  const stride = Math.floor(GiB / CHUNKS / MiB) * MiB;
  for (let i = 0; i < CHUNKS; i++) {
    const data = randomBytes(CHUNK);
    await writeAt(path, i * stride, data);
    written.push({ offset: i * stride, data });
  }
  return written;
}

async function sameData(path: string, written: { offset: number; data: Buffer }[]): Promise<boolean> {
  for (const w of written) if (!(await readAt(path, w.offset, w.data.length)).equals(w.data)) return false;
  // A stretch between chunks is a hole in the source: it must read as zeros in the copy too.
  const gap = await readAt(path, written[0]!.offset + CHUNK, MiB);
  return gap.equals(Buffer.alloc(MiB));
}

function progressRecorder() {
  const seen: [number, number][] = [];
  return {
    seen,
    progress: (done: number, total: number) => seen.push([done, total]),
    check() {
      expect(seen.length).toBeGreaterThan(0);
      for (let i = 1; i < seen.length; i++) expect(seen[i]![0]).toBeGreaterThanOrEqual(seen[i - 1]![0]);
      const [done, total] = seen.at(-1)!;
      expect(done).toBe(total);
      expect(total).toBeGreaterThan(0);
    },
  };
}

function withFs(type: FsType, body: (get: () => FsFixture) => void) {
  describe.skipIf(skipUnlessFs(type))(`on ${type}`, () => {
    let fx: FsFixture;
    beforeAll(async () => {
      fx = await createFs(type);
    });
    afterAll(async () => {
      await fx?.cleanup();
    });
    body(() => fx);
  });
}

let dirs = 0;
async function driverOn(fx: FsFixture, opts: Omit<FileDriverInput, "path"> = {}): Promise<FileDriver> {
  return makeDriver({ path: join(fx.mountpoint, `backend-${dirs++}`), ...opts });
}

for (const type of ["btrfs", "xfs"] as const) {
  withFs(type, (fx) => {
    it("detects reflink support and clones by sharing extents (nothing copied)", async () => {
      const d = await driverOn(fx());
      expect(d.reflinkSupported).toBe(true);
      expect((await d.getStats()).pools[0]!.reflink_support).toBe(true);
      const src = volumeRecord(1);
      await d.createVolume(src);
      const written = await fillSparse(d.localPath(src));
      const clone = volumeRecord(2);
      const rec = progressRecorder();
      await d.createClonedVolume(clone, src, { progress: rec.progress });
      rec.check();
      expect(await sameData(d.localPath(clone), written)).toBe(true);
      expect((await stat(d.localPath(clone))).size).toBe(2 * GiB);
      // Every data extent of the clone is shared with the source: the clone took no new data blocks.
      expect(await sharedBytes(d.localPath(clone))).toBeGreaterThanOrEqual(CHUNKS * CHUNK);
      expect(await sharedBytes(d.localPath(src))).toBeGreaterThanOrEqual(CHUNKS * CHUNK);
      // Writing to the clone unshares only what is written; the source keeps its data.
      const fresh = randomBytes(4096);
      await writeAt(d.localPath(clone), written[0]!.offset, fresh);
      expect((await readAt(d.localPath(src), written[0]!.offset, 4096)).equals(written[0]!.data.subarray(0, 4096))).toBe(true);
    });

    it("snapshots and volumes from snapshots are reflinks too", async () => {
      const d = await driverOn(fx());
      const v = volumeRecord(1);
      await d.createVolume(v);
      const written = await fillSparse(d.localPath(v));
      const s = snapshotRecord(v);
      await d.createSnapshot(s, v);
      const snapPath = join(d.dir, `snapshot-${s.id}`);
      expect(await sharedBytes(snapPath)).toBeGreaterThanOrEqual(CHUNKS * CHUNK);
      await writeAt(d.localPath(v), written[1]!.offset, Buffer.alloc(CHUNK, 1));
      const fromSnap = volumeRecord(1);
      await d.createVolumeFromSnapshot(fromSnap, s);
      expect(await sameData(d.localPath(fromSnap), written)).toBe(true);
      expect(await sharedBytes(d.localPath(fromSnap))).toBeGreaterThanOrEqual(CHUNKS * CHUNK);
    });

    it("with reflink: never, copies for real but keeps the holes", async () => {
      const d = await driverOn(fx(), { reflink: "never" });
      expect(d.reflinkSupported).toBe(false);
      const src = volumeRecord(1);
      await d.createVolume(src);
      const written = await fillSparse(d.localPath(src));
      const clone = volumeRecord(1);
      await d.createClonedVolume(clone, src);
      expect(await sameData(d.localPath(clone), written)).toBe(true);
      expect(await sharedBytes(d.localPath(clone))).toBe(0);
      const a = await allocatedBytes(d.localPath(clone));
      expect(a).toBeGreaterThanOrEqual(CHUNKS * CHUNK);
      expect(a).toBeLessThanOrEqual((await allocatedBytes(d.localPath(src))) + 4 * MiB);
    });

    it("reflink: always starts here", async () => {
      const d = await driverOn(fx(), { reflink: "always" });
      expect(d.reflinkSupported).toBe(true);
    });
  });
}

for (const type of ["ext4", "tmpfs"] as const) {
  withFs(type, (fx) => {
    for (const copyMethod of ["cp", "node"] as const) {
      it(`clones by a sparse copy (${copyMethod}): same data, holes kept, progress reported`, async () => {
        const d = await driverOn(fx(), { copyMethod });
        expect(d.reflinkSupported).toBe(false);
        const src = volumeRecord(1);
        await d.createVolume(src);
        const written = await fillSparse(d.localPath(src));
        const clone = volumeRecord(2);
        const rec = progressRecorder();
        await d.createClonedVolume(clone, src, { progress: rec.progress });
        rec.check();
        expect(await sameData(d.localPath(clone), written)).toBe(true);
        expect((await stat(d.localPath(clone))).size).toBe(2 * GiB);
        const srcAlloc = await allocatedBytes(d.localPath(src));
        const cloneAlloc = await allocatedBytes(d.localPath(clone));
        expect(cloneAlloc).toBeGreaterThanOrEqual(CHUNKS * CHUNK);
        // Holes kept: allocated blocks of the clone ≈ of the source (not 1 GiB).
        expect(Math.abs(cloneAlloc - srcAlloc)).toBeLessThanOrEqual(4 * MiB);
        expect((await readdir(d.dir)).filter((f) => f.startsWith(".partial-"))).toEqual([]);
      });
    }

    it("a snapshot and a volume from it keep the data as at snapshot time, with holes", async () => {
      const d = await driverOn(fx());
      const v = volumeRecord(1);
      await d.createVolume(v);
      const written = await fillSparse(d.localPath(v));
      const s = snapshotRecord(v);
      await d.createSnapshot(s, v);
      await writeAt(d.localPath(v), written[0]!.offset, Buffer.alloc(CHUNK, 7));
      const fromSnap = volumeRecord(1);
      await d.createVolumeFromSnapshot(fromSnap, s);
      expect(await sameData(d.localPath(fromSnap), written)).toBe(true);
      expect(await allocatedBytes(d.localPath(fromSnap))).toBeLessThanOrEqual(CHUNKS * CHUNK + 4 * MiB);
    });

    it("an aborted copy leaves neither the volume nor a partial file", async () => {
      const d = await driverOn(fx());
      const src = volumeRecord(1);
      await d.createVolume(src);
      await fillSparse(d.localPath(src));
      const clone = volumeRecord(1);
      const ac = new AbortController();
      ac.abort(new Error("stop"));
      await expect(d.createClonedVolume(clone, src, { signal: ac.signal })).rejects.toThrow();
      expect(await d.inspectVolume(clone)).toBe("absent");
      expect((await readdir(d.dir)).filter((f) => f.startsWith(".partial-"))).toEqual([]);
    });

    it("reflink: always refuses to start, saying why", async () => {
      const err = await driverOn(fx(), { reflink: "always" }).catch((e: unknown) => e);
      expect(isStorageError(err) && err.code).toBe("CONFIG_ERROR");
      expect(String((err as Error).message)).toContain("does not support reflinks");
    });
  });
}
