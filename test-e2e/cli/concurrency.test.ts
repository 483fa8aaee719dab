import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { diskState, okJson, run, sandbox, type RunResult, type Sandbox, type SnapshotJson, type VolumeJson } from "./helpers.js";

/** A failure must be clean: one line, a documented exit code, no stack. */
function expectCleanFailure(r: RunResult, codes: number[]): void {
  expect(codes, r.stderr).toContain(r.exitCode);
  expect(r.stdout).toBe("");
  expect(r.stderr.trimEnd().split("\n"), r.stderr).toHaveLength(1);
}

/** Records and files agree: a file for every live record, no file without one, no half-made copy. */
async function expectConsistent(sb: Sandbox): Promise<{ volumes: VolumeJson[]; snapshots: SnapshotJson[] }> {
  const volumes = await okJson<VolumeJson[]>(sb, ["volume", "list", "--all"]);
  const snapshots = await okJson<SnapshotJson[]>(sb, ["snapshot", "list", "--all"]);
  for (const r of [...volumes, ...snapshots]) expect(["available", "deleted"], `${r.id} is ${r.status}`).toContain(r.status);
  const disk = diskState(sb.volumesDir);
  expect(disk.volumes).toEqual(volumes.filter((v) => v.status === "available").map((v) => v.id).sort());
  expect(disk.snapshots).toEqual(snapshots.filter((s) => s.status === "available").map((s) => s.id).sort());
  expect(disk.partial).toEqual([]);
  return { volumes, snapshots };
}

describe("several CLI processes on one SQLite state at once", () => {
  let sb: Sandbox;
  beforeEach(async () => {
    sb = await sandbox("concurrency");
  });
  afterEach(async () => {
    await sb.cleanup();
  });

  it("2 × N concurrent snapshot/clone/create processes on the same volume all succeed or fail cleanly; records match the files", async () => {
    const vol = await okJson<VolumeJson>(sb, ["volume", "create", "--size", "1", "--name", "shared"]);
    const N = 4;
    const snapshotJobs: Promise<RunResult>[] = [];
    const volumeJobs: Promise<RunResult>[] = [];
    for (let i = 0; i < N; i++) {
      // Two streams at once: snapshots of the volume (its lock), and new volumes, half of them clones of it.
      snapshotJobs.push(run(sb, ["snapshot", "create", vol.id, "--name", `s${i}`, "--json"]));
      volumeJobs.push(run(sb, i % 2 ? ["volume", "create", "--from-volume", vol.id, "--json"] : ["volume", "create", "--size", "1", "--json"]));
    }
    const [snaps, vols] = await Promise.all([Promise.all(snapshotJobs), Promise.all(volumeJobs)]);

    const madeSnaps: string[] = [];
    const madeVols: string[] = [vol.id];
    for (const r of snaps) {
      if (r.exitCode === 0) madeSnaps.push((JSON.parse(r.stdout) as SnapshotJson).id);
      else expectCleanFailure(r, [5, 6]); // CONFLICT / BUSY / LOCK_TIMEOUT
    }
    for (const r of vols) {
      if (r.exitCode === 0) madeVols.push((JSON.parse(r.stdout) as VolumeJson).id);
      else expectCleanFailure(r, [5, 6]);
    }
    // Locks make them wait for each other, so on one machine every one of them gets through.
    expect(madeSnaps).toHaveLength(N);
    expect(madeVols).toHaveLength(N + 1);

    const { volumes, snapshots } = await expectConsistent(sb);
    expect(volumes.map((v) => v.id).sort()).toEqual(madeVols.sort());
    expect(snapshots.map((s) => s.id).sort()).toEqual(madeSnaps.sort());

    // And tear it all down concurrently: snapshots and clones at once, then the source.
    const deletes = await Promise.all([
      ...madeSnaps.map((id) => run(sb, ["snapshot", "delete", id])),
      ...madeVols.filter((id) => id !== vol.id).map((id) => run(sb, ["volume", "delete", id])),
    ]);
    for (const r of deletes) expect(r.exitCode, r.stderr).toBe(0);
    expect((await run(sb, ["volume", "delete", vol.id])).exitCode).toBe(0);
    await expectConsistent(sb);
    expect(diskState(sb.volumesDir).volumes).toEqual([]);
  });

  it("a delete racing a snapshot of the same volume: never both, never a half state", async () => {
    for (let round = 0; round < 3; round++) {
      const vol = await okJson<VolumeJson>(sb, ["volume", "create", "--size", "1"]);
      const [del, snap] = await Promise.all([run(sb, ["volume", "delete", vol.id]), run(sb, ["snapshot", "create", vol.id, "--json"])]);
      if (del.exitCode === 0) {
        // The delete won: the snapshot found the volume deleted (or gone).
        expectCleanFailure(snap, [4, 5]);
      } else {
        // The snapshot won: the delete is refused because of it.
        expect(snap.exitCode, snap.stderr).toBe(0);
        expectCleanFailure(del, [5]);
        expect(del.stderr).toMatch(/has 1 snapshot/);
        const s = JSON.parse(snap.stdout) as SnapshotJson;
        expect((await run(sb, ["snapshot", "delete", s.id])).exitCode).toBe(0);
        expect((await run(sb, ["volume", "delete", vol.id])).exitCode).toBe(0);
      }
      await expectConsistent(sb);
    }
  });
});
