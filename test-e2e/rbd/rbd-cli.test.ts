import { existsSync } from "node:fs";
import { open, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GiB, REPO, ok, okJson, run, sandbox, type ConnectionJson, type Sandbox, type SnapshotJson, type VolumeJson } from "../cli/helpers.js";

/**
 * The CLI as a user runs it, with a manifest that has the RBD backend (Ceph testbed) and the file backend side
 * by side in one process; every command is its own process, so attach state crosses process restarts.
 */
const env = ["CEPH_CONF", "CINDERTS_RBD_POOL", "CINDERTS_CEPH_KEYRING"] as const;
const missing = env.filter((k) => !process.env[k]);
if (missing.length && process.env.CI) throw new Error(`the Ceph testbed is required in CI: ${missing.join(", ")} not set (tooling/testbeds/ceph/start.sh)`);

const rbdCli = async (...args: string[]) => (await execa("rbd", ["--conf", process.env.CEPH_CONF!, ...args])).stdout;
const POOL = process.env.CINDERTS_RBD_POOL ?? "volumes";

async function writeAt(path: string, offset: number, text: string): Promise<void> {
  const fh = await open(path, "r+");
  try {
    await fh.write(Buffer.from(text), 0, text.length, offset);
    await fh.sync();
  } finally {
    await fh.close();
  }
}
async function readAt(path: string, offset: number, length: number): Promise<string> {
  const fh = await open(path, "r");
  try {
    const b = Buffer.alloc(length);
    await fh.read(b, 0, length, offset);
    return b.toString();
  } finally {
    await fh.close();
  }
}

/** qemu-storage-daemons serving attaches under `dir` (found by their command line), stopped; their mounts gone. */
async function stopStrayDaemons(dir: string): Promise<void> {
  const { readdir } = await import("node:fs/promises");
  for (const pid of (await readdir("/proc")).filter((p) => /^\d+$/.test(p))) {
    const cmd = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
    if (cmd.startsWith("qemu-storage-daemon") && cmd.includes(dir)) process.kill(Number(pid), "SIGTERM");
  }
  await new Promise((r) => setTimeout(r, 1000));
  const mounts = (await readFile("/proc/self/mountinfo", "utf8")).split("\n").map((l) => l.split(" ")[4] ?? "");
  for (const m of mounts) if (m.startsWith(dir)) await execa("umount", ["-l", m]).catch(() => undefined);
}

const created: string[] = [];

describe.skipIf(missing.length > 0)("RBD and file backends in one manifest, through the CLI", () => {
  let sb: Sandbox;
  const transport = process.env.CINDERTS_RBD_E2E_TRANSPORT ?? "auto";

  beforeAll(async () => {
    sb = await sandbox("rbd");
    const manifest = {
      persistence: { plugin: "@cinderts/persistence-sqlite", options: { path: join(sb.dir, "cinderts.db") } },
      backends: [
        {
          name: "ceph",
          driver: join(REPO, "packages/drivers/rbd"),
          // the keyring travels in the connection info (cinderlib's way), so the secret is in the records: it must
          // still never be printed
          options: { pool: POOL, conf: process.env.CEPH_CONF, user: "admin", transport, keyring: process.env.CINDERTS_CEPH_KEYRING, connectionKeyring: true },
        },
        { name: "files", driver: "@cinderts/driver-file", options: { path: join(sb.dir, "files") } },
      ],
      connectors: [
        { plugin: join(REPO, "packages/connectors/rbd") },
        { plugin: "@cinderts/connector-local" },
      ],
      state_dir: join(sb.dir, "state"),
    };
    await writeFile(join(sb.dir, "work", "cinderts.yaml"), JSON.stringify(manifest, null, 2));
  });
  afterAll(async () => {
    // Nothing of ours may stay attached or in the pool, even when the CLI itself cannot run any more.
    const left = await okJson<VolumeJson[]>(sb, ["volume", "list"]).catch(() => [] as VolumeJson[]);
    for (const v of left) if (v.status !== "deleted") await run(sb, ["volume", "delete", v.id, "--force"]);
    await stopStrayDaemons(sb.dir);
    for (const id of created) await rbdCli("rm", "--no-progress", "--pool", POOL, "--image", `volume-${id}`).catch(() => undefined);
    await sb.cleanup();
  });

  it("lists both backends and their stats", async () => {
    const stats = await okJson<Record<string, { pools: { pool_name: string; total_capacity_gb: unknown }[]; storage_protocol: string }>>(sb, [
      "backend",
      "stats",
      "--refresh",
    ]);
    const all = JSON.stringify(stats);
    expect(all).toContain('"storage_protocol":"ceph"');
    expect(all).toContain(`"pool_name":"${POOL}"`);
  });

  it("create → attach (user-space) → write → snapshot → from snapshot → clone → extend attached → detach in another process → delete", async () => {
    const vol = await okJson<VolumeJson>(sb, ["volume", "create", "--size", "1", "--backend", "ceph", "--name", "e2e-rbd"]);
    created.push(vol.id);
    expect(vol).toMatchObject({ backend: "ceph", size: 1, status: "available" });
    expect((await rbdCli("image-meta", "get", "--pool", POOL, "--image", `volume-${vol.id}`, "cinderts.volume_id")).trim()).toBe(vol.id);
    const file = await okJson<VolumeJson>(sb, ["volume", "create", "--size", "1", "--backend", "files", "--name", "e2e-file"]);
    expect(file).toMatchObject({ backend: "files", status: "available" });

    const conn = await okJson<ConnectionJson>(sb, ["volume", "attach", vol.id]);
    expect(conn).toMatchObject({ volume_id: vol.id, attached: true, protocol: "rbd" });
    const path = conn.path!;
    expect((await stat(path)).size).toBe(GiB);
    await writeAt(path, 0, "OLD rbd data");
    await writeAt(path, GiB - 8, "tail-old");

    // the attach belongs to a qemu-storage-daemon that outlives the CLI process that started it
    const shown = await okJson<ConnectionJson>(sb, ["connection", "show", conn.id]);
    expect(shown.attached).toBe(true);

    const snap = await okJson<SnapshotJson>(sb, ["snapshot", "create", vol.id]);
    await writeAt(path, 0, "NEW rbd data");

    const fromSnap = await okJson<VolumeJson>(sb, ["volume", "create", "--from-snapshot", snap.id]);
    created.push(fromSnap.id);
    expect(fromSnap.backend).toBe("ceph");
    const clone = await okJson<VolumeJson>(sb, ["volume", "create", "--from-volume", vol.id, "--size", "2"]);
    created.push(clone.id);
    expect(clone.size).toBe(2);

    const extended = await okJson<VolumeJson>(sb, ["volume", "extend", vol.id, "--size", "2"]);
    expect(extended).toMatchObject({ size: 2, status: "in-use" });
    expect((await stat(path)).size).toBe(2 * GiB);
    expect(await readAt(path, GiB - 8, 8)).toBe("tail-old");

    await okJson<VolumeJson>(sb, ["volume", "detach", vol.id]);
    expect(existsSync(path)).toBe(false);

    const c1 = await okJson<ConnectionJson>(sb, ["volume", "attach", fromSnap.id]);
    expect(await readAt(c1.path!, 0, 12)).toBe("OLD rbd data");
    await okJson(sb, ["volume", "detach", fromSnap.id]);
    const c2 = await okJson<ConnectionJson>(sb, ["volume", "attach", clone.id]);
    expect(await readAt(c2.path!, 0, 12)).toBe("NEW rbd data");
    expect((await stat(c2.path!)).size).toBe(2 * GiB);
    await okJson(sb, ["volume", "detach", clone.id]);

    // deleting the snapshot flattens its clone; deleting the source keeps it hidden while the clone needs it
    await ok(sb, ["snapshot", "delete", snap.id]);
    await ok(sb, ["volume", "delete", vol.id]);
    expect(await rbdCli("ls", "--pool", POOL)).toContain(`volume-${vol.id}.deleted`);
    await ok(sb, ["volume", "delete", clone.id]);
    await ok(sb, ["volume", "delete", fromSnap.id]);
    await ok(sb, ["volume", "delete", file.id]);
    const images = await rbdCli("ls", "--pool", POOL);
    for (const id of [vol.id, clone.id, fromSnap.id]) expect(images).not.toContain(id);
  });

  it("reconcile finds an RBD image that no record owns", async () => {
    const vol = await okJson<VolumeJson>(sb, ["volume", "create", "--size", "1", "--backend", "ceph"]);
    created.push(vol.id);
    // an orphan: tagged by cinderts, record gone (as after a lost database)
    const orphan = `volume-e2e-orphan-${Date.now()}`;
    await rbdCli("create", "--pool", POOL, "--image", orphan, "--size", "1G");
    await rbdCli("image-meta", "set", "--pool", POOL, "--image", orphan, "cinderts.volume_id", orphan.slice("volume-".length));
    try {
      const r = await run(sb, ["reconcile", "--backend=ceph", "--json"]);
      expect(r.stdout + r.stderr).toContain(orphan.slice("volume-".length));
    } finally {
      await rbdCli("rm", "--no-progress", "--pool", POOL, "--image", orphan);
      await ok(sb, ["volume", "delete", vol.id]);
    }
  });

  it("secrets stay out of the JSON: the keyring is never printed", async () => {
    const keyring = await readFile(process.env.CINDERTS_CEPH_KEYRING!, "utf8");
    const key = /key = (\S+)/.exec(keyring)![1]!;
    const vol = await okJson<VolumeJson>(sb, ["volume", "create", "--size", "1", "--backend", "ceph"]);
    created.push(vol.id);
    const conn = await run(sb, ["volume", "attach", vol.id, "--json"]);
    expect(conn.exitCode).toBe(0);
    const shown = await run(sb, ["connection", "list", "--json"]);
    const dump = await run(sb, ["state", "dump"]);
    expect(dump.exitCode).toBe(0);
    expect(conn.stdout + shown.stdout + dump.stdout).not.toContain(key);
    // the record does hold it (attach needed it), which is why redaction matters
    expect(dump.stdout).toContain('"keyring"');
    await okJson(sb, ["volume", "detach", vol.id]);
    await ok(sb, ["volume", "delete", vol.id]);
  });
});
