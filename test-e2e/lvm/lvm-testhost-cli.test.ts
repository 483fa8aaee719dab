import { open, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GiB, REPO, ok, okJson, run, sandbox, type ConnectionJson, type Sandbox, type SnapshotJson, type VolumeJson } from "../cli/helpers.js";

/**
 * The CLI as a user runs it, with a manifest naming an LVM backend on the QEMU test host: commands reach the
 * guest over SSH (@cinderts/runner-ssh), volumes are exported by LIO (configfs) on the guest's forwarded portal,
 * and attached on this machine in user space (qemu-storage-daemon + FUSE) through 127.0.0.1:13261.
 */
const keys = ["TESTHOST_SSH_HOST", "TESTHOST_SSH_PORT", "TESTHOST_SSH_KEY", "TESTHOST_SSH_KNOWN_HOSTS", "TESTHOST_ISCSI_PORTAL", "TESTHOST_DATA_DISK"] as const;
const missing = keys.filter((k) => !process.env[k]);
if (missing.length && process.env.CI) throw new Error(`the test host is required in CI: ${missing.join(", ")} not set (tooling/testbeds/testhost/boot.sh start)`);

const guest = (...argv: string[]) => execa(join(REPO, "tooling/testbeds/testhost/run.sh"), argv, { timeout: 300_000 });

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

describe.skipIf(missing.length > 0)("LVM backend on the test host, through the CLI", () => {
  let sb: Sandbox;
  const VG = "cinder-volumes";
  const POOL = "cinderts-pool";

  beforeAll(async () => {
    sb = await sandbox("lvm");
    await guest("sh", "-c", 'vgs "$1" >/dev/null 2>&1 || { pvcreate -q -f "$3" && vgcreate -q "$1" "$3"; }; lvs "$1/$2" >/dev/null 2>&1 || lvcreate -q -T -L 6g "$1/$2"', "prep", VG, POOL, process.env.TESTHOST_DATA_DISK!);
    // QEMU's user network forwards 127.0.0.1:13261 here to the guest's own address, port 3260
    const addr = (await guest("ip", "-4", "-o", "addr", "show", "scope", "global")).stdout.match(/inet (\d+\.\d+\.\d+\.\d+)/)?.[1];
    expect(addr).toBeTruthy();
    const [portalIp, portalPort] = process.env.TESTHOST_ISCSI_PORTAL!.split(":");
    const manifest = {
      persistence: { plugin: "@cinderts/persistence-sqlite", options: { path: join(sb.dir, "cinderts.db") } },
      backends: [
        {
          name: "lvm",
          driver: join(REPO, "packages/drivers/lvm"),
          options: { volumeGroup: VG, provisioning: "thin", thinPool: POOL },
          runner: {
            plugin: join(REPO, "packages/runners/ssh"),
            options: {
              host: process.env.TESTHOST_SSH_HOST,
              port: Number(process.env.TESTHOST_SSH_PORT),
              username: process.env.TESTHOST_SSH_USER ?? "root",
              privateKeyPath: process.env.TESTHOST_SSH_KEY,
              knownHostsFile: process.env.TESTHOST_SSH_KNOWN_HOSTS,
              timeoutMs: 600_000,
            },
          },
          target: {
            plugin: join(REPO, "packages/targets/lio"),
            options: { targetIp: portalIp, targetPort: Number(portalPort), bindIp: addr, bindPort: 3260 },
          },
        },
      ],
      connectors: [{ plugin: join(REPO, "packages/connectors/iscsi"), options: { method: "userspace" } }],
      state_dir: join(sb.dir, "state"),
    };
    await writeFile(join(sb.dir, "work", "cinderts.yaml"), JSON.stringify(manifest, null, 2));
  });
  afterAll(async () => {
    const left = await okJson<VolumeJson[]>(sb, ["volume", "list"]).catch(() => []);
    for (const v of left) if (v.status !== "deleted") await run(sb, ["volume", "delete", v.id, "--force"]);
    await sb.cleanup();
  });

  it("stats name the LVM pool", async () => {
    const stats = await okJson<{ pools: { pool_name: string; thin_provisioning_support: boolean }[]; storage_protocol: string }>(sb, ["backend", "stats", "lvm", "--refresh"]);
    expect(stats).toMatchObject({ storage_protocol: "iSCSI", pools: [{ pool_name: "lvm", thin_provisioning_support: true }] });
  });

  it("create → attach over iSCSI → write → snapshot → from snapshot → clone → extend attached → detach → delete", async () => {
    const vol = await okJson<VolumeJson>(sb, ["volume", "create", "--size", "1", "--backend", "lvm", "--name", "e2e-lvm"]);
    expect(vol).toMatchObject({ backend: "lvm", size: 1, status: "available" });
    expect((await guest("lvs", "--noheadings", "-o", "lv_name", `${VG}/volume-${vol.id}`)).stdout.trim()).toBe(`volume-${vol.id}`);

    const conn = await okJson<ConnectionJson>(sb, ["volume", "attach", vol.id]);
    expect(conn).toMatchObject({ volume_id: vol.id, attached: true, protocol: "iscsi" });
    expect(conn.conn_info?.data).toMatchObject({ target_portal: process.env.TESTHOST_ISCSI_PORTAL, target_lun: 0, auth_method: "CHAP" });
    const path = conn.path!;
    expect((await stat(path)).size).toBe(GiB);
    await writeAt(path, 0, "OLD lvm data");
    await writeAt(path, GiB - 8, "tail-old");
    // the bytes are on the logical volume in the guest
    expect((await guest("dd", `if=/dev/${VG}/volume-${vol.id}`, "bs=12", "count=1", "status=none")).stdout).toBe("OLD lvm data");

    const snap = await okJson<SnapshotJson>(sb, ["snapshot", "create", vol.id]);
    await writeAt(path, 0, "NEW lvm data");
    const fromSnap = await okJson<VolumeJson>(sb, ["volume", "create", "--from-snapshot", snap.id]);
    const clone = await okJson<VolumeJson>(sb, ["volume", "create", "--from-volume", vol.id, "--size", "2"]);
    expect(clone.size).toBe(2);

    const extended = await okJson<VolumeJson>(sb, ["volume", "extend", vol.id, "--size", "2"]);
    expect(extended).toMatchObject({ size: 2, status: "in-use" });
    expect((await stat(path)).size).toBe(2 * GiB);
    expect(await readAt(path, GiB - 8, 8)).toBe("tail-old");

    await okJson<VolumeJson>(sb, ["volume", "detach", vol.id]);
    const c1 = await okJson<ConnectionJson>(sb, ["volume", "attach", fromSnap.id]);
    expect(await readAt(c1.path!, 0, 12)).toBe("OLD lvm data");
    await okJson(sb, ["volume", "detach", fromSnap.id]);
    const c2 = await okJson<ConnectionJson>(sb, ["volume", "attach", clone.id]);
    expect(await readAt(c2.path!, 0, 12)).toBe("NEW lvm data");
    await okJson(sb, ["volume", "detach", clone.id]);

    await ok(sb, ["snapshot", "delete", snap.id]);
    for (const id of [vol.id, fromSnap.id, clone.id]) await ok(sb, ["volume", "delete", id]);
    const lvs = (await guest("lvs", "--noheadings", "-o", "lv_name", VG)).stdout;
    for (const id of [vol.id, fromSnap.id, clone.id, snap.id]) expect(lvs).not.toContain(id);
    // the LIO configuration saved for targetctl restore holds none of them any more
    const saved = (await guest("cat", "/etc/rtslib-fb-target/saveconfig.json")).stdout;
    expect(saved).not.toContain(vol.id);
  });
});
