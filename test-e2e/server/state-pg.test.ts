import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { testbedEnv } from "@cinderts/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO, ok, okJson, sandbox, type Sandbox, type SnapshotJson, type VolumeJson } from "../cli/helpers.js";

const pgEnv = testbedEnv("postgres", ["CINDERTS_PG_URL"]);

interface Dump {
  secrets: boolean;
  volumes: { id: string; version: number }[];
  snapshots: { id: string; version: number }[];
  connections: { id: string; version: number }[];
}
const records = (d: Dump) =>
  (["volumes", "snapshots", "connections"] as const).map((k) =>
    d[k].map(({ version: _v, ...r }) => r).sort((a, b) => (a.id < b.id ? -1 : 1)),
  );

// `cinderts state dump` of the embedded default (SQLite) → `state load` into PostgreSQL → and back into a
// fresh SQLite, through the built CLI as a user runs it.
describe.skipIf(!pgEnv)("CLI state dump/load: SQLite → PostgreSQL → SQLite", () => {
  let a: Sandbox;
  let c: Sandbox;
  const schema = `e2e_state_${process.pid}_${Date.now().toString(36)}`;
  beforeAll(async () => {
    a = await sandbox("pg-state-a");
    c = await sandbox("pg-state-c");
  });
  afterAll(async () => {
    await a?.cleanup();
    await c?.cleanup();
  });

  it("loses nothing, secrets included", async () => {
    const v = await okJson<VolumeJson>(a, ["volume", "create", "--size", "2", "--name", "data ✓", "--metadata", "team=storage"]);
    const s = await okJson<SnapshotJson>(a, ["snapshot", "create", v.id, "--name", "nightly"]);
    const r = await okJson<VolumeJson>(a, ["volume", "create", "--from-snapshot", s.id]);
    await okJson(a, ["volume", "attach", r.id]);
    const dumpA = JSON.parse(await ok(a, ["state", "dump", "--include-secrets"])) as Dump;
    expect(dumpA.volumes).toHaveLength(2);
    const fileA = join(a.dir, "a.json");
    await writeFile(fileA, JSON.stringify(dumpA));

    // Same backend (the embedded default's volumes), PostgreSQL for the records. The plugin is named by path,
    // as a package installed outside the CLI's own dependencies would be.
    const pgManifest = join(a.dir, "pg.json");
    await writeFile(
      pgManifest,
      JSON.stringify({
        persistence: { plugin: join(REPO, "packages/persistence/postgres"), options: { url: pgEnv!.CINDERTS_PG_URL, schema } },
        backends: [{ name: "default", driver: "@cinderts/driver-file", options: { path: a.volumesDir } }],
      }),
    );
    const loaded = await okJson<{ written: Record<string, number> }>(a, ["--manifest", pgManifest, "state", "load", fileA]);
    expect(loaded.written).toEqual({ volumes: 2, snapshots: 1, connections: 1 });
    const dumpPg = JSON.parse(await ok(a, ["--manifest", pgManifest, "state", "dump", "--include-secrets"])) as Dump;
    expect(records(dumpPg)).toStrictEqual(records(dumpA));
    expect(await okJson(a, ["--manifest", pgManifest, "volume", "show", v.id])).toEqual(await okJson(a, ["volume", "show", v.id]));

    const filePg = join(c.dir, "pg.json");
    await writeFile(filePg, JSON.stringify(dumpPg));
    await okJson(c, ["state", "load", filePg]);
    const dumpC = JSON.parse(await ok(c, ["state", "dump", "--include-secrets"])) as Dump;
    expect(records(dumpC)).toStrictEqual(records(dumpA));
  });
});
