import { describe, expect, it } from "vitest";
import { GiB, InProcessLockManager, silentLogger, type DriverContext, type SnapshotRecord, type Target, type VolumeRecord } from "@cinderts/core";
import { LvmConfig } from "../src/config.js";
import { LvmDriver, names } from "../src/driver.js";
import { failing, RecordingRunner } from "./support.js";

const V = "8c1f7d2e-1111-4a4e-9d77-2f0a3f5b1c11";
const S = "5e9a0b1c-2222-4a4e-9d77-2f0a3f5b1c11";
const N = "3d2c1b0a-3333-4a4e-9d77-2f0a3f5b1c11";

function vol(id: string, size = 1): VolumeRecord {
  return {
    id, version: 1, backend: "b", name: null, created_at: "", updated_at: "", metadata: {}, intent: null, status_reason: null,
    provider_location: null, provider_id: null, provider_auth: null, provider_geometry: null, size, status: "available",
    source_volume_id: null, snapshot_id: null,
  };
}
const snap = (id: string, size = 1): SnapshotRecord => ({
  id, version: 1, backend: "b", name: null, created_at: "", updated_at: "", metadata: {}, intent: null, status_reason: null,
  provider_location: null, provider_id: null, provider_auth: null, provider_geometry: null, volume_id: V, volume_size: size, status: "available",
});

const lvsJson = (rows: Record<string, string>[]) => JSON.stringify({ report: [{ lv: rows }] });
const lvRow = (name: string, size: number, attr = "-wi-a-----", origin = "", pool = "") => ({
  lv_name: name, lv_size: String(size), lv_attr: attr, pool_lv: pool, origin, data_percent: "", lv_tags: "cinderts",
});

function driver(runner: RecordingRunner, o: Record<string, unknown> = {}, target?: Target) {
  const ctx: DriverContext = {
    logger: silentLogger, runner, locks: new InProcessLockManager(), stateDir: "/tmp", backendName: "lvm1", nodeId: "test-node", baseDir: "/tmp",
    kv: { get: async () => undefined, set: async () => undefined, delete: async () => undefined, list: async () => [] },
    ...(target ? { target } : {}),
  };
  return new LvmDriver(LvmConfig.parse({ volumeGroup: "vg0", ...o }), ctx);
}
const LVS = (target: string) => ["env", "LC_ALL=C", "lvs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o", "lv_name,lv_size,lv_attr,pool_lv,origin,data_percent,lv_tags", target];

describe("LvmDriver (recording runner)", () => {
  it("escapes LVM's reserved snapshot prefix and names like Cinder", () => {
    expect(names.volume(V)).toBe(`volume-${V}`);
    expect(names.snapshot(S)).toBe(`_snapshot-${S}`);
    expect(names.cloneSnap(N)).toBe(`clone-snap-${N}`);
    expect(() => names.volume("x/../../etc")).toThrow(/cannot be used/);
  });

  it("creates thick and thin volumes with exact lvcreate argv", async () => {
    const r = new RecordingRunner();
    await driver(r).createVolume(vol(V, 2));
    await driver(r, { provisioning: "thin" }).createVolume(vol(N, 3));
    expect(r.calls.map((c) => c.argv)).toEqual([
      ["env", "LC_ALL=C", "lvcreate", "-n", `volume-${V}`, "--addtag", "cinderts", "-L", "2g", "vg0"],
      ["env", "LC_ALL=C", "lvcreate", "-T", "-V", "3g", "-n", `volume-${N}`, "--addtag", "cinderts", "vg0/vg0-pool"],
    ]);
    expect(r.calls.every((c) => c.opts?.root === true)).toBe(true);
  });

  it("deletes idempotently, wiping thick volumes first; refuses thick origins with snapshots", async () => {
    const gone = new RecordingRunner((argv) => (argv.includes("lvs") ? failing(argv, `  Failed to find logical volume "vg0/volume-${V}"`, 5) : undefined));
    await driver(gone).deleteVolume(vol(V));
    expect(gone.calls).toHaveLength(1);

    const r = new RecordingRunner((argv) => (argv.includes("lvs") ? { stdout: lvsJson([lvRow(`volume-${V}`, 32 << 20)]) } : undefined));
    await driver(r, { copyChunkMiB: 16 }).deleteVolume(vol(V));
    expect(r.calls.map((c) => c.argv)).toEqual([
      LVS(`vg0/volume-${V}`),
      ["dd", "if=/dev/zero", `of=/dev/vg0/volume-${V}`, "bs=1M", "count=16", "skip=0", "seek=0", "oflag=direct", "conv=notrunc", "status=none"],
      ["dd", "if=/dev/zero", `of=/dev/vg0/volume-${V}`, "bs=1M", "count=16", "skip=0", "seek=16", "oflag=direct", "conv=notrunc", "status=none"],
      ["env", "LC_ALL=C", "lvremove", "--config", "activation { retry_deactivation = 1 }", "-f", `vg0/volume-${V}`],
    ]);

    const origin = new RecordingRunner((argv) =>
      argv.includes("lvs")
        ? { stdout: lvsJson([lvRow(`volume-${V}`, GiB, "owi-a-s---"), lvRow(`_snapshot-${S}`, GiB, "swi-a-s---", `volume-${V}`)]) }
        : undefined,
    );
    const err = await driver(origin).deleteVolume(vol(V)).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "HAS_DEPENDENTS", dependents: [{ kind: "snapshot", id: S }] });
    expect(origin.calls.some((c) => c.argv.includes("lvremove"))).toBe(false);
  });

  it("thin volumes are never wiped", async () => {
    const r = new RecordingRunner((argv) => (argv.includes("lvs") ? { stdout: lvsJson([lvRow(`volume-${V}`, GiB, "Vwi-a-tz--", "", "vg0-pool")]) } : undefined));
    await driver(r, { provisioning: "thin" }).deleteVolume(vol(V));
    expect(r.calls.map((c) => c.argv[0] === "dd")).not.toContain(true);
  });

  it("snapshots: thick gets a COW size, thin none", async () => {
    const r = new RecordingRunner((argv) => (argv.includes("lvs") ? { stdout: lvsJson([lvRow(`volume-${V}`, GiB)]) } : undefined));
    await driver(r).createSnapshot(snap(S), vol(V));
    await driver(r, { provisioning: "thin" }).createSnapshot(snap(S), vol(V));
    const creates = r.calls.map((c) => c.argv).filter((a) => a.includes("lvcreate"));
    expect(creates).toEqual([
      ["env", "LC_ALL=C", "lvcreate", "--name", `_snapshot-${S}`, "--snapshot", "--addtag", "cinderts", `vg0/volume-${V}`, "-L", "1024m", "--chunksize", "64k"],
      ["env", "LC_ALL=C", "lvcreate", "--name", `_snapshot-${S}`, "--snapshot", "--addtag", "cinderts", `vg0/volume-${V}`],
    ]);
  });

  it("thin clone is a thin snapshot with activation skip cleared, then grown", async () => {
    let lvsCalls = 0;
    const r = new RecordingRunner((argv) => {
      if (!argv.includes("lvs")) return;
      lvsCalls++;
      return { stdout: lvsJson([lvRow(lvsCalls === 1 ? `volume-${V}` : `volume-${N}`, GiB, "Vwi-a-tz--")]) };
    });
    const progress: number[] = [];
    await driver(r, { provisioning: "thin" }).createClonedVolume(vol(N, 2), vol(V, 1), { progress: (d) => progress.push(d) });
    expect(r.calls.map((c) => c.argv).filter((a) => !a.includes("lvs"))).toEqual([
      ["env", "LC_ALL=C", "lvcreate", "--name", `volume-${N}`, "--snapshot", "--addtag", "cinderts", `vg0/volume-${V}`],
      ["env", "LC_ALL=C", "lvchange", "-a", "y", "--yes", "-k", "n", `vg0/volume-${N}`],
      ["env", "LC_ALL=C", "lvextend", "-L", "2g", `vg0/volume-${N}`],
    ]);
    expect(progress).toEqual([GiB]);
  });

  it("thick clone copies from a temporary COW snapshot in chunks with progress, and always drops it", async () => {
    const r = new RecordingRunner((argv) => {
      if (argv.includes("lvs") && argv.at(-1) === `vg0/clone-snap-${N}`) {
        return { stdout: lvsJson([{ ...lvRow(`clone-snap-${N}`, 64 << 20, "swi-a-s---", `volume-${V}`), data_percent: "0.00" }]) };
      }
      if (argv.includes("lvs")) return { stdout: lvsJson([lvRow(`volume-${V}`, 64 << 20)]) };
      if (argv[0] === "dd" && argv.includes("seek=32")) failing(argv, "dd: error writing: No space left on device", 1);
    });
    const progress: number[] = [];
    const err = await driver(r, { copyChunkMiB: 16 })
      .createClonedVolume(vol(N, 1), vol(V, 1), { progress: (d) => progress.push(d) })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "COMMAND_FAILED" });
    const argvs = r.calls.map((c) => c.argv).filter((a) => !a.includes("lvs"));
    expect(argvs[0]).toEqual(["env", "LC_ALL=C", "lvcreate", "--name", `clone-snap-${N}`, "--snapshot", "--addtag", "cinderts", `vg0/volume-${V}`, "-L", "64m", "--chunksize", "64k"]);
    expect(argvs).toContainEqual(["dd", `if=/dev/vg0/clone-snap-${N}`, `of=/dev/vg0/volume-${N}`, "bs=1M", "count=16", "skip=16", "seek=16", "iflag=direct", "oflag=direct", "conv=notrunc", "status=none"]);
    expect(progress).toEqual([16 << 20, 32 << 20]);
    // the half-copied volume and the temporary snapshot are both removed, the unused snapshot's COW wiped by its margin only
    expect(argvs.filter((a) => a.includes("lvremove")).map((a) => a.at(-1))).toEqual([`vg0/volume-${N}`, `vg0/clone-snap-${N}`]);
    expect(argvs.filter((a) => a[0] === "dd" && a[1] === "if=/dev/zero")).toEqual([
      ["dd", "if=/dev/zero", `of=/dev/mapper/vg0-clone--snap--${N.replace(/-/g, "--")}-cow`, "bs=1M", "count=2", "skip=0", "seek=0", "oflag=direct", "conv=notrunc", "status=none"],
    ]);
  });

  it("deleting a thick snapshot wipes the used prefix of its COW store, not its whole size", async () => {
    const cowRow = (percent: string) => ({ ...lvRow(`_snapshot-${S}`, 100 << 20, "swi-a-s---", `volume-${V}`), data_percent: percent });
    const wipes = async (percent: string) => {
      const r = new RecordingRunner((argv) => (argv.includes("lvs") ? { stdout: lvsJson([cowRow(percent)]) } : undefined));
      await driver(r).deleteSnapshot(snap(S), vol(V));
      expect(r.calls.at(-1)!.argv.slice(2, 3)).toEqual(["lvremove"]);
      return r.calls.filter((c) => c.argv[0] === "dd").map((c) => c.argv.find((a) => a.startsWith("count=")));
    };
    // 10.12 % of 100 MiB used (10 MiB of data + metadata): 10.13 % + 1 MiB margin -> 12 blocks of 1 MiB
    expect(await wipes("10.12")).toEqual(["count=12"]);
    expect(await wipes("100.00")).toEqual(["count=100"]);
    expect(await wipes("0.00")).toEqual(["count=2"]);
  });

  it("exports the LV device through the target helper after activating it", async () => {
    const calls: string[] = [];
    const target = {
      protocol: "iscsi",
      setup: async () => undefined,
      createExport: async (src: { path: string; sizeBytes: number }) => {
        calls.push(`export ${src.path} ${src.sizeBytes}`);
        return { provider_location: "loc", provider_auth: null };
      },
      initializeConnection: async () => ({ driver_volume_type: "iscsi", data: {} }),
      terminateConnection: async () => undefined,
      removeExport: async () => undefined,
      extendExport: async (src: { sizeBytes: number }) => void calls.push(`extend ${src.sizeBytes}`),
      validateConnector: (c: { initiator?: string }) => {
        if (!c.initiator) throw new Error("no initiator");
      },
    } as unknown as Target;
    const r = new RecordingRunner((argv) => (argv.includes("lvs") ? { stdout: lvsJson([lvRow(`volume-${V}`, GiB)]) } : undefined));
    const d = driver(r, {}, target);
    expect(await d.createExport(vol(V, 1), { host: "h", multipath: false })).toEqual({ provider_location: "loc", provider_auth: null });
    expect(r.calls[0]!.argv).toEqual(["env", "LC_ALL=C", "lvchange", "-a", "y", "--yes", "-K", `vg0/volume-${V}`]);
    await d.extendVolume(vol(V, 1), 2);
    expect(r.calls.at(-1)!.argv).toEqual(["env", "LC_ALL=C", "lvextend", "-L", "2g", `vg0/volume-${V}`]);
    expect(calls).toEqual([`export /dev/vg0/volume-${V} ${GiB}`, `extend ${2 * GiB}`]);
    expect(() => d.validateConnector({ host: "h", multipath: false })).toThrow(/initiator/);
    expect(() => driver(r).validateConnector({ host: "h", multipath: false, initiator: "iqn.2024-01.x:y" })).toThrow(/target helper/);
  });

  it("stats come from the vgs/lvs JSON reports (thin: pool usage and provisioned sum)", async () => {
    const r = new RecordingRunner((argv) => {
      if (argv.includes("vgs")) return { stdout: JSON.stringify({ report: [{ vg: [{ vg_name: "vg0", vg_size: String(20 * GiB), vg_free: String(4 * GiB), lv_count: "3", vg_uuid: "u" }] }] }) };
      if (argv.includes("lvs"))
        return {
          stdout: lvsJson([
            { ...lvRow("vg0-pool", 10 * GiB, "twi-aotz--"), data_percent: "25.00" },
            lvRow(`volume-${V}`, 3 * GiB, "Vwi-a-tz--", "", "vg0-pool"),
            lvRow(`volume-${N}`, 5 * GiB, "Vwi-a-tz--", "", "vg0-pool"),
          ]),
        };
    });
    const stats = await driver(r, { provisioning: "thin" }).getStats();
    expect(r.calls[0]!.argv).toEqual(["env", "LC_ALL=C", "vgs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o", "vg_name,vg_size,vg_free,lv_count,vg_uuid", "vg0"]);
    expect(stats.pools[0]).toMatchObject({
      pool_name: "lvm1",
      total_capacity_gb: 10,
      free_capacity_gb: 7.5,
      provisioned_capacity_gb: 8,
      thin_provisioning_support: true,
      thick_provisioning_support: false,
      total_volumes: 2,
    });
  });
});
