import { open, stat } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GiB, diskState, ok, okJson, run, sandbox, type ConnectionJson, type Sandbox, type SnapshotJson, type VolumeJson } from "./helpers.js";

async function writeAt(path: string, text: string): Promise<void> {
  const buf = Buffer.alloc(4096);
  buf.write(text);
  const fh = await open(path, "r+");
  try {
    await fh.write(buf, 0, buf.length, 0);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function readAt(path: string): Promise<string> {
  const buf = Buffer.alloc(4096);
  const fh = await open(path, "r");
  try {
    await fh.read(buf, 0, buf.length, 0);
  } finally {
    await fh.close();
  }
  const end = buf.indexOf(0);
  return buf.subarray(0, end < 0 ? buf.length : end).toString();
}

describe("the full cycle through the CLI on the embedded default (file backend + SQLite)", () => {
  let sb: Sandbox;
  beforeAll(async () => {
    sb = await sandbox("cycle");
  });
  afterAll(async () => {
    await sb.cleanup();
  });

  it("create → attach → write → snapshot → overwrite → from snapshot has the old data → clone has the new → extend attached → detach → delete twice", async () => {
    // create
    const vol = await okJson<VolumeJson>(sb, ["volume", "create", "--size", "1", "--name", "cycle-source"]);
    expect(vol).toMatchObject({ name: "cycle-source", backend: "default", size: 1, status: "available", source_volume_id: null, snapshot_id: null });
    expect(Object.keys(vol)).toEqual(expect.arrayContaining(["id", "name", "backend", "size", "status", "source_volume_id", "snapshot_id", "created_at"]));
    expect(diskState(sb.volumesDir).volumes).toEqual([vol.id]);

    // attach: a local path to write through
    const conn = await okJson<ConnectionJson>(sb, ["volume", "attach", vol.id]);
    expect(conn).toMatchObject({ volume_id: vol.id, attached: true, protocol: "file" });
    expect(conn.path).toBeTruthy();
    expect(Object.keys(conn)).toEqual(expect.arrayContaining(["id", "volume_id", "protocol", "connector", "conn_info", "path", "attached"]));
    expect((await okJson<VolumeJson>(sb, ["volume", "show", vol.id])).status).toBe("in-use");
    const path = conn.path!;
    expect((await stat(path)).size).toBe(1 * GiB);

    await writeAt(path, "OLD data, before the snapshot");
    const snap = await okJson<SnapshotJson>(sb, ["snapshot", "create", vol.id, "--name", "cycle-snap"]);
    expect(snap).toMatchObject({ name: "cycle-snap", volume_id: vol.id, volume_size: 1, status: "available" });
    await writeAt(path, "NEW data, after the snapshot");

    // volume from the snapshot: the data as it was when the snapshot was taken
    const restored = await okJson<VolumeJson>(sb, ["volume", "create", "--from-snapshot", snap.id, "--name", "restored"]);
    expect(restored).toMatchObject({ snapshot_id: snap.id, size: 1, status: "available", backend: "default" });
    const restoredConn = await okJson<ConnectionJson>(sb, ["volume", "attach", restored.id]);
    expect(await readAt(restoredConn.path!)).toBe("OLD data, before the snapshot");

    // clone: the data as it is now
    const clone = await okJson<VolumeJson>(sb, ["volume", "create", "--from-volume", vol.id, "--size", "2", "--name", "clone"]);
    expect(clone).toMatchObject({ source_volume_id: vol.id, size: 2, status: "available" });
    const cloneConn = await okJson<ConnectionJson>(sb, ["volume", "attach", clone.id]);
    expect(await readAt(cloneConn.path!)).toBe("NEW data, after the snapshot");
    expect((await stat(cloneConn.path!)).size).toBe(2 * GiB);

    // extend while attached: the attached path grows
    const extended = await okJson<VolumeJson>(sb, ["volume", "extend", vol.id, "--size", "3"]);
    expect(extended).toMatchObject({ id: vol.id, size: 3, status: "in-use" });
    expect((await stat(path)).size).toBe(3 * GiB);
    expect(await readAt(path)).toBe("NEW data, after the snapshot");

    const conns = await okJson<ConnectionJson[]>(sb, ["connection", "list"]);
    expect(conns.map((c) => c.volume_id).sort()).toEqual([vol.id, restored.id, clone.id].sort());

    // detach every attach
    for (const id of [vol.id, restored.id, clone.id]) {
      const v = await okJson<VolumeJson>(sb, ["volume", "detach", id]);
      expect(v.status).toBe("available");
    }
    expect(await okJson<ConnectionJson[]>(sb, ["connection", "list"])).toEqual([]);

    // delete: refused while the snapshot exists, then snapshot, volumes, and everything twice
    const refused = await run(sb, ["volume", "delete", vol.id]);
    expect(refused.exitCode).toBe(5);
    expect(refused.stderr).toMatch(/^cinderts: volume .* has 1 snapshot\(s\); delete them first or use force\n$/);

    for (const id of [restored.id, clone.id]) {
      expect((await okJson<VolumeJson>(sb, ["volume", "delete", id])).status).toBe("deleted");
    }
    for (let i = 0; i < 2; i++) expect((await okJson<SnapshotJson>(sb, ["snapshot", "delete", snap.id])).status).toBe("deleted");
    expect((await okJson<VolumeJson>(sb, ["volume", "delete", vol.id])).status).toBe("deleted");
    // deleting again succeeds (idempotent), exit 0
    expect(await ok(sb, ["volume", "delete", vol.id])).toBe(`volume ${vol.id} deleted\n`);
    expect((await okJson<VolumeJson>(sb, ["volume", "show", vol.id])).status).toBe("deleted");

    expect(await okJson<VolumeJson[]>(sb, ["volume", "list"])).toEqual([]);
    expect(await okJson<SnapshotJson[]>(sb, ["snapshot", "list"])).toEqual([]);
    expect((await okJson<VolumeJson[]>(sb, ["volume", "list", "--all"])).map((v) => v.status)).toEqual(["deleted", "deleted", "deleted"]);
    // nothing left on disk either
    const disk = diskState(sb.volumesDir);
    expect(disk).toEqual({ volumes: [], snapshots: [], partial: [], other: [] });
  });

  it("prints the human forms and --quiet ids", async () => {
    const id = (await ok(sb, ["volume", "create", "--size", "1", "--name", "quiet", "-q"])).trim();
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    const table = await ok(sb, ["volume", "list"]);
    expect(table.split("\n")[0]).toMatch(/^ID\s+NAME\s+BACKEND\s+SIZE_GIB\s+STATUS$/);
    expect(table).toContain(id);
    expect((await ok(sb, ["volume", "list", "--quiet"])).split("\n")).toContain(id);
    const show = await ok(sb, ["volume", "show", id]);
    expect(show).toMatch(new RegExp(`^id\\s+${id}$`, "m"));
    expect(show).toMatch(/^status\s+available$/m);
    expect(await ok(sb, ["volume", "delete", id, "--quiet"])).toBe("");
  });

  it("backend list/stats, driver list, connector show/validate speak Cinder's and the issue's field names", async () => {
    const backends = await okJson<{ name: string; driver: string }[]>(sb, ["backend", "list"]);
    expect(backends).toEqual([expect.objectContaining({ name: "default", driver: "@cinderts/driver-file" })]);

    const stats = await okJson<Record<string, unknown>>(sb, ["backend", "stats", "default", "--refresh"]);
    expect(stats).toMatchObject({ volume_backend_name: "default", storage_protocol: expect.any(String), vendor_name: expect.any(String), driver_version: expect.any(String) });
    const pool = (stats.pools as Record<string, unknown>[])[0]!;
    for (const k of ["pool_name", "total_capacity_gb", "free_capacity_gb", "provisioned_capacity_gb", "allocated_capacity_gb", "thin_provisioning_support"]) {
      expect(pool).toHaveProperty(k);
    }
    expect(await okJson<unknown[]>(sb, ["backend", "stats"])).toHaveLength(1);

    const drivers = await okJson<{ id: string; package: string; backends: string[]; options_schema: { type: string; properties: Record<string, unknown> } }[]>(sb, ["driver", "list"]);
    const file = drivers.find((d) => d.package === "@cinderts/driver-file")!;
    expect(file).toMatchObject({ id: "file", backends: ["default"] });
    expect(file.options_schema.type).toBe("object");
    expect(Object.keys(file.options_schema.properties)).toContain("path");

    const props = await okJson<{ host: string }>(sb, ["connector", "show"]);
    expect(props.host).toBeTruthy();
    const valid = await okJson<{ valid: boolean; backend: string }>(sb, ["connector", "validate", "--backend", "default", "--connector", "-"], {
      input: JSON.stringify(props),
    });
    expect(valid).toMatchObject({ valid: true, backend: "default" });
  });

  it("volume connect maps to a host given as JSON and prints conn_info; connection disconnect undoes it, twice", async () => {
    const v = await okJson<VolumeJson>(sb, ["volume", "create", "--size", "1"]);
    // A file backend serves only its own host: another host is refused by the driver's connector check.
    const other = await run(sb, ["volume", "connect", v.id, "--connector", "-"], { input: JSON.stringify({ host: "other-host" }) });
    expect(other.exitCode).toBe(2);
    expect(other.stderr).toMatch(/^cinderts: backend default serves volumes as local files on host .*; host "other-host" cannot open them.*\n$/);
    expect(await okJson(sb, ["connection", "list", "--volume", v.id])).toEqual([]);

    const props = await okJson<{ host: string }>(sb, ["connector", "show"]);
    const conn = await okJson<ConnectionJson>(sb, ["volume", "connect", v.id, "--connector", "-"], { input: JSON.stringify(props) });
    expect(conn).toMatchObject({ volume_id: v.id, attached: false, protocol: "file", connector: expect.objectContaining({ host: props.host }) });
    expect(conn.conn_info?.driver_volume_type).toBe("file");
    expect(conn.conn_info?.data.path).toBe(`${sb.volumesDir}/volume-${v.id}`);
    expect(conn).not.toHaveProperty("path");
    expect((await okJson<VolumeJson>(sb, ["volume", "show", v.id])).status).toBe("in-use");
    expect(await okJson<ConnectionJson[]>(sb, ["connection", "list", "--volume", v.id])).toHaveLength(1);
    for (let i = 0; i < 2; i++) expect(await okJson(sb, ["connection", "disconnect", conn.id])).toEqual({ id: conn.id, disconnected: true });
    expect((await okJson<VolumeJson>(sb, ["volume", "show", v.id])).status).toBe("available");
    await ok(sb, ["volume", "delete", v.id]);
  });
});
