import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fails, ok, okJson, sandbox, type Sandbox, type SnapshotJson, type VolumeJson } from "./helpers.js";

interface Dump {
  format: string;
  version: number;
  secrets: boolean;
  backends: { name: string; driver: string; options: Record<string, unknown> }[];
  volumes: (VolumeJson & { version: number })[];
  snapshots: (SnapshotJson & { backend: string; version: number })[];
  connections: { id: string; backend: string; version: number }[];
}

const withoutVersion = <T extends { id: string; version: number }>(list: T[]) =>
  list.map(({ version: _v, ...r }) => r).sort((a, b) => (a.id < b.id ? -1 : 1));

describe("state dump → state load round trip", () => {
  let a: Sandbox;
  let b: Sandbox;
  beforeAll(async () => {
    a = await sandbox("state-a");
    b = await sandbox("state-b");
  });
  afterAll(async () => {
    await a.cleanup();
    await b.cleanup();
  });

  it("a dump of one state loads into a fresh one and dumps back the same records", async () => {
    const v = await okJson<VolumeJson>(a, ["volume", "create", "--size", "2", "--name", "data", "--metadata", "team=storage"]);
    const s = await okJson<SnapshotJson>(a, ["snapshot", "create", v.id, "--name", "nightly"]);
    const c = await okJson<VolumeJson>(a, ["volume", "create", "--from-snapshot", s.id, "--name", "restored"]);
    await okJson(a, ["volume", "attach", c.id]);
    const deleted = await okJson<VolumeJson>(a, ["volume", "create", "--size", "1"]);
    await ok(a, ["volume", "delete", deleted.id]);

    // A dump is JSON with or without --json.
    const text = await ok(a, ["state", "dump"]);
    const dump = JSON.parse(text) as Dump;
    expect(dump).toMatchObject({ format: "cinderts-state", version: 1, secrets: false });
    expect(dump.backends).toEqual([expect.objectContaining({ name: "default", driver: "@cinderts/driver-file" })]);
    expect(dump.volumes.map((x) => x.id).sort()).toEqual([v.id, c.id, deleted.id].sort());
    expect(dump.snapshots.map((x) => x.id)).toEqual([s.id]);
    expect(dump.connections).toHaveLength(1);
    const file = join(b.dir, "dump.json");
    await writeFile(file, text);

    // --check reads and validates, writes nothing.
    const checked = await okJson<{ persisted: boolean; volumes: number }>(b, ["state", "load", file, "--check"]);
    expect(checked).toMatchObject({ persisted: false, volumes: 3 });
    expect(await okJson<VolumeJson[]>(b, ["volume", "list", "--all"])).toEqual([]);

    const loaded = await okJson<{ written: Record<string, number> }>(b, ["state", "load", file]);
    expect(loaded.written).toEqual({ volumes: 3, snapshots: 1, connections: 1 });

    // What a user sees is the same on both sides…
    for (const args of [["volume", "list", "--all"], ["snapshot", "list", "--all"], ["connection", "list"], ["volume", "show", v.id]]) {
      expect(await okJson(b, args)).toEqual(await okJson(a, args));
    }
    // …and so is the dump, record for record (versions count writes, which a load does not replay).
    const back = JSON.parse(await ok(b, ["state", "dump"])) as Dump;
    expect(withoutVersion(back.volumes)).toEqual(withoutVersion(dump.volumes));
    expect(withoutVersion(back.snapshots)).toEqual(withoutVersion(dump.snapshots));
    expect(withoutVersion(back.connections)).toEqual(withoutVersion(dump.connections));
    expect(back.backends).toEqual([{ ...dump.backends[0], options: { ...dump.backends[0]!.options, path: join(b.dataDir, "volumes") } }]);

    // Loading again is an upsert: nothing duplicated.
    await okJson(b, ["state", "load", file]);
    expect(await okJson<VolumeJson[]>(b, ["volume", "list", "--all"])).toHaveLength(3);
  });

  it("refuses a dump with records of backends this manifest does not have, writing nothing", async () => {
    const fresh = await sandbox("state-c");
    try {
      const dump = JSON.parse(await ok(a, ["state", "dump"])) as Dump;
      for (const r of [...dump.volumes, ...dump.snapshots, ...dump.connections]) r.backend = "elsewhere";
      const file = join(fresh.dir, "other.json");
      await writeFile(file, JSON.stringify(dump));
      const r = await fails(fresh, ["state", "load", file], 2);
      expect(r).toBe("cinderts: the dump has records of backends not in this manifest: elsewhere");
      expect(await okJson<VolumeJson[]>(fresh, ["volume", "list", "--all"])).toEqual([]);
    } finally {
      await fresh.cleanup();
    }
  });
});
