import { describe, expect, it } from "vitest";
import { CommandError, parseConfig, type SnapshotRecord, type VolumeRecord } from "@cinderts/core";
import plugin, { CliRbdClient, RbdConfig, RbdDriver, parseMonAddr } from "../src/index.js";
import { driverContext, has, RecordingRunner } from "./helpers.js";

const C = ["--id", "admin", "--cluster", "ceph", "--conf", "/etc/ceph/ceph.conf"];
const GiB = 1024 ** 3;
const now = new Date().toISOString();

const vol = (id: string, size = 1, extra: Partial<VolumeRecord> = {}): VolumeRecord => ({
  id,
  version: 1,
  backend: "ceph",
  name: null,
  created_at: now,
  updated_at: now,
  metadata: {},
  intent: null,
  status_reason: null,
  provider_location: null,
  provider_id: null,
  provider_auth: null,
  provider_geometry: null,
  size,
  status: "creating",
  source_volume_id: null,
  snapshot_id: null,
  ...extra,
});

const snap = (id: string, volumeId: string, volumeSize = 1): SnapshotRecord => ({
  id,
  version: 1,
  backend: "ceph",
  name: null,
  created_at: now,
  updated_at: now,
  metadata: {},
  intent: null,
  status_reason: null,
  provider_location: null,
  provider_id: null,
  provider_auth: null,
  provider_geometry: null,
  volume_id: volumeId,
  volume_size: volumeSize,
  status: "creating",
});

const info = (name: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ name, size: GiB, order: 22, snapshot_count: 0, features: ["layering"], ...extra });

function makeDriver(script: ConstructorParameters<typeof RecordingRunner>[0] = [], opts: Record<string, unknown> = {}) {
  const runner = new RecordingRunner(script);
  const cfg = parseConfig(RbdConfig, { pool: "volumes", conf: "/etc/ceph/ceph.conf", user: "admin", busyRetryIntervalSec: 0, ...opts }, {
    what: "rbd options",
  });
  const ctx = driverContext(runner);
  const driver = new RbdDriver(cfg, ctx, async () => new CliRbdClient(runner, { cluster: "ceph", user: "admin", conf: "/etc/ceph/ceph.conf", connectTimeoutSec: cfg.connectTimeoutSec }));
  return { driver, runner };
}

async function ready(script: ConstructorParameters<typeof RecordingRunner>[0] = [], opts: Record<string, unknown> = {}) {
  const d = makeDriver([...script, [has("ls", "--format"), { stdout: "[]" }]], opts);
  await d.driver.setup();
  d.runner.calls.length = 0;
  return d;
}

describe("config", () => {
  it("accepts the manifest example of the issue and fills Cinder's defaults", () => {
    const c = parseConfig(RbdConfig, { pool: "volumes", conf: "/etc/ceph/ceph.conf", user: "admin" }, { what: "x" });
    expect(c).toMatchObject({ pool: "volumes", cluster: "ceph", user: "admin", maxCloneDepth: 5, chunkSizeMiB: 4, snapshotsWithDependents: "flatten" });
  });
  it("rejects unknown keys and names that could reach argv as options", () => {
    expect(() => parseConfig(RbdConfig, { pool: "volumes", poool: 1 }, { what: "x" })).toThrow(/poool/);
    expect(() => parseConfig(RbdConfig, { pool: "-rf" }, { what: "x" })).toThrow(/pool/);
    expect(() => parseConfig(RbdConfig, { pool: "v", conf: "relative.conf" }, { what: "x" })).toThrow(/conf/);
    expect(() => parseConfig(RbdConfig, { pool: "v", chunkSizeMiB: 3 }, { what: "x" })).toThrow(/power of two/);
  });
  it("is a driver plugin with id rbd", () => {
    expect(plugin.kind).toBe("driver");
    expect(plugin.id).toBe("rbd");
  });
});

describe("cli argv", () => {
  it("setup lists the pool's image names once; a missing pool is a ConfigError", async () => {
    const { driver, runner } = makeDriver([[has("ls"), { exitCode: 2, stderr: "rbd: error opening pool 'volumes': (2) No such file or directory" }]]);
    await expect(driver.setup()).rejects.toMatchObject({ code: "CONFIG_ERROR", message: expect.stringMatching(/pool volumes does not exist/) });
    expect(runner.calls).toEqual([["rbd", ...C, "ls", "--format", "json", "--pool", "volumes"]]);
  });

  it("adds the rados timeouts when connectTimeoutSec >= 0", async () => {
    const runner = new RecordingRunner();
    const c = new CliRbdClient(runner, { cluster: "ceph", user: "cinder", connectTimeoutSec: 10, keyring: "/k" });
    await c.flatten("volumes", "volume-a");
    expect(runner.calls[0]).toEqual([
      "rbd", "--id", "cinder", "--cluster", "ceph", "--keyring", "/k",
      "--rados-osd-op-timeout", "10", "--rados-mon-op-timeout", "10", "--client-mount-timeout", "10",
      "flatten", "--no-progress", "--pool", "volumes", "--image", "volume-a",
    ]);
  });

  it("create: thin image with the chunk size, then the owner tag", async () => {
    const { driver, runner } = await ready();
    await driver.createVolume(vol("v1", 2));
    expect(runner.calls).toEqual([
      ["rbd", ...C, "create", "--pool", "volumes", "--image", "volume-v1", "--size", `${2 * GiB}B`, "--object-size", "4194304B", "--image-format", "2"],
      ["rbd", ...C, "image-meta", "set", "--pool", "volumes", "--image", "volume-v1", "cinderts.volume_id", "v1"],
    ]);
  });

  it("create: a failed tag removes the image again", async () => {
    const { driver, runner } = await ready([[has("image-meta", "set"), { exitCode: 1, stderr: "boom" }]]);
    await expect(driver.createVolume(vol("v1"))).rejects.toMatchObject({ code: "BACKEND_ERROR" });
    expect(runner.calls.at(-1)).toEqual(["rbd", ...C, "rm", "--no-progress", "--pool", "volumes", "--image", "volume-v1"]);
  });

  it("create: refuses ids that would change the image spec", async () => {
    const { driver, runner } = await ready();
    await expect(driver.createVolume(vol("a@b"))).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    await expect(driver.createVolume(vol("../x"))).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    expect(runner.calls).toEqual([]);
  });

  it("extend: rbd resize to the new size in bytes", async () => {
    const { driver, runner } = await ready();
    await driver.extendVolume(vol("v1"), 3);
    expect(runner.calls).toEqual([["rbd", ...C, "resize", "--no-progress", "--pool", "volumes", "--image", "volume-v1", "--size", `${3 * GiB}B`]]);
  });

  it("delete: an image already gone is success after one info", async () => {
    const { driver, runner } = await ready([[has("info"), { exitCode: 2, stderr: "rbd: error opening image volume-v1: (2) No such file or directory" }]]);
    await driver.deleteVolume(vol("v1"));
    expect(runner.calls).toEqual([["rbd", ...C, "info", "--format", "json", "--pool", "volumes", "--image", "volume-v1"]]);
  });

  it("delete of a volume made in this process is a plain remove, without the info first", async () => {
    const { driver, runner } = await ready();
    await driver.createVolume(vol("v1"));
    runner.calls.length = 0;
    await driver.deleteVolume(vol("v1"));
    expect(runner.calls).toEqual([["rbd", ...C, "rm", "--no-progress", "--pool", "volumes", "--image", "volume-v1"]]);
  });

  it("delete without the info falls back to the full path when the image has snapshots", async () => {
    let removes = 0;
    const { driver, runner } = await ready([
      [
        has("rm"),
        (argv) => {
          if (++removes === 1) throw new CommandError([...argv], 39, "rbd: delete error: (39) Directory not empty");
          return { stdout: "", stderr: "", exitCode: 0 };
        },
      ],
      [has("info"), { stdout: info("volume-v1", { snapshot_count: 1 }) }],
      [has("snap", "ls"), { stdout: JSON.stringify([{ name: "volume-gone.clone_snap", size: GiB, protected: "true" }]) }],
      [has("children"), { stdout: "[]" }],
    ]);
    await driver.createVolume(vol("v1"));
    runner.calls.length = 0;
    await driver.deleteVolume(vol("v1"));
    const steps = runner.calls.map((a) => a.slice(1 + C.length, 3 + C.length).join(" "));
    // the temporary clone snapshot whose clone is gone is dropped, then the image goes
    expect(steps).toEqual(["rm --no-progress", "info --format", "snap ls", "children --format", "snap unprotect", "snap rm", "rm --no-progress"]);
  });

  it("delete: busy image is retried busyRetries times, then BusyError", async () => {
    const { driver, runner } = await ready(
      [
        [has("info"), { stdout: info("volume-v1") }],
        [has("rm"), { exitCode: 16, stderr: "rbd: error: image still has watchers" }],
      ],
      { busyRetries: 2 },
    );
    await expect(driver.deleteVolume(vol("v1"))).rejects.toMatchObject({ code: "BUSY", retryable: true });
    expect(runner.calls.filter(has("rm"))).toHaveLength(3);
  });

  it("delete: a volume whose clone snapshot has children is renamed .deleted", async () => {
    const { driver, runner } = await ready([
      [has("info"), { stdout: info("volume-a", { snapshot_count: 1 }) }],
      [has("snap", "ls"), { stdout: JSON.stringify([{ name: "volume-b.clone_snap", size: GiB, protected: "true" }]) }],
      [has("children"), { stdout: JSON.stringify([{ pool: "volumes", image: "volume-b" }]) }],
    ]);
    await driver.deleteVolume(vol("a"));
    expect(runner.calls.at(-1)).toEqual(["rbd", ...C, "rename", "--pool", "volumes", "--image", "volume-a", "--dest-pool", "volumes", "--dest", "volume-a.deleted"]);
    expect(runner.calls.some(has("rm"))).toBe(false);
  });

  it("delete of the last clone removes its clone snapshot and the .deleted parent", async () => {
    const parent = { pool: "volumes", image: "volume-a.deleted", snapshot: "volume-b.clone_snap" };
    const { driver, runner } = await ready([
      [(a) => has("info")(a) && a.includes("volume-b"), { stdout: info("volume-b", { parent }) }],
      [(a) => has("info")(a) && a.includes("volume-a.deleted"), { stdout: info("volume-a.deleted") }],
      [has("children"), { stdout: "[]" }],
    ]);
    await driver.deleteVolume(vol("b"));
    const tail = (argv: string[]) => argv.slice(1 + C.length);
    expect(runner.calls.map(tail)).toEqual([
      ["info", "--format", "json", "--pool", "volumes", "--image", "volume-b"],
      ["rm", "--no-progress", "--pool", "volumes", "--image", "volume-b"],
      ["children", "--format", "json", "--pool", "volumes", "--image", "volume-a.deleted", "--snap", "volume-b.clone_snap"],
      ["snap", "unprotect", "--pool", "volumes", "--image", "volume-a.deleted", "--snap", "volume-b.clone_snap"],
      ["snap", "rm", "--no-progress", "--pool", "volumes", "--image", "volume-a.deleted", "--snap", "volume-b.clone_snap"],
      ["info", "--format", "json", "--pool", "volumes", "--image", "volume-a.deleted"],
      ["rm", "--no-progress", "--pool", "volumes", "--image", "volume-a.deleted"],
    ]);
  });

  it("snapshot: create then protect", async () => {
    const { driver, runner } = await ready();
    await driver.createSnapshot(snap("s1", "v1"), vol("v1"));
    expect(runner.calls).toEqual([
      ["rbd", ...C, "snap", "create", "--no-progress", "--pool", "volumes", "--image", "volume-v1", "--snap", "snapshot-s1"],
      ["rbd", ...C, "snap", "protect", "--pool", "volumes", "--image", "volume-v1", "--snap", "snapshot-s1"],
    ]);
  });

  it("delete snapshot with clones: flattens them by default, then unprotect + rm", async () => {
    const { driver, runner } = await ready([
      [has("children"), { stdout: JSON.stringify([{ pool: "volumes", image: "volume-c1" }, { pool: "volumes", image: "volume-c2" }]) }],
    ]);
    await driver.deleteSnapshot(snap("s1", "v1"), vol("v1"));
    const flattens = runner.calls.filter(has("flatten")).map((a) => a.at(-1));
    expect(flattens.sort()).toEqual(["volume-c1", "volume-c2"]);
    expect(runner.calls.at(-2)).toEqual(["rbd", ...C, "snap", "unprotect", "--pool", "volumes", "--image", "volume-v1", "--snap", "snapshot-s1"]);
    expect(runner.calls.at(-1)).toEqual(["rbd", ...C, "snap", "rm", "--no-progress", "--pool", "volumes", "--image", "volume-v1", "--snap", "snapshot-s1"]);
  });

  it("delete snapshot with clones and snapshotsWithDependents=refuse: HasDependentsError naming them, nothing changed", async () => {
    const { driver, runner } = await ready(
      [[has("children"), { stdout: JSON.stringify([{ pool: "volumes", image: "volume-c1" }, { pool: "other", image: "img" }]) }]],
      { snapshotsWithDependents: "refuse" },
    );
    const err = await driver.deleteSnapshot(snap("s1", "v1"), vol("v1")).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: "HAS_DEPENDENTS",
      dependents: [
        { kind: "volume", id: "c1" },
        { kind: "image", id: "other/img" },
      ],
    });
    expect(runner.calls.every(has("children"))).toBe(true);
  });

  it("delete snapshot: not protected (EINVAL) and already gone (ENOENT) are fine", async () => {
    const a = await ready([
      [has("children"), { stdout: "[]" }],
      [has("unprotect"), { exitCode: 22, stderr: "rbd: unprotecting snap failed: (22) Invalid argument" }],
    ]);
    await a.driver.deleteSnapshot(snap("s1", "v1"), vol("v1"));
    expect(a.runner.calls.some(has("snap", "rm"))).toBe(true);
    const b = await ready([[has("children"), { exitCode: 2, stderr: "(2) No such file or directory" }], [has("unprotect"), { exitCode: 2 }]]);
    await b.driver.deleteSnapshot(snap("s1", "v1"), vol("v1"));
    expect(b.runner.calls.some(has("snap", "rm"))).toBe(false);
  });

  it("volume from snapshot: clone of the protected snapshot, tag, grow, flatten when configured", async () => {
    const { driver, runner } = await ready([[has("info"), { stdout: info("volume-v1") }]], { flattenVolumeFromSnapshot: true });
    await driver.createVolumeFromSnapshot(vol("n1", 2), snap("s1", "v1", 1));
    expect(runner.calls.map((a) => a.slice(1 + C.length))).toEqual([
      ["info", "--format", "json", "--pool", "volumes", "--image", "volume-v1"],
      ["clone", "--pool", "volumes", "--image", "volume-v1", "--snap", "snapshot-s1", "--dest-pool", "volumes", "--dest", "volume-n1", "--object-size", "4194304B"],
      ["image-meta", "set", "--pool", "volumes", "--image", "volume-n1", "cinderts.volume_id", "n1"],
      ["resize", "--no-progress", "--pool", "volumes", "--image", "volume-n1", "--size", `${2 * GiB}B`],
      ["flatten", "--no-progress", "--pool", "volumes", "--image", "volume-n1"],
    ]);
  });

  it("clone volume: temp .clone_snap on the source, protected, cloned; flattened at the depth limit", async () => {
    const chain = (img: string) => (img === "volume-src" ? { parent: { pool: "volumes", image: "volume-p", snapshot: "x" } } : {});
    const { driver, runner } = await ready(
      [[has("info"), (a) => ({ stdout: info(a.at(-1)!, chain(a.at(-1)!)), stderr: "", exitCode: 0 })], [has("children"), { stdout: "[]" }]],
      { maxCloneDepth: 1 },
    );
    await driver.createClonedVolume(vol("dst"), vol("src"));
    expect(runner.calls.map((a) => a.slice(1 + C.length))).toEqual([
      ["info", "--format", "json", "--pool", "volumes", "--image", "volume-src"],
      ["info", "--format", "json", "--pool", "volumes", "--image", "volume-p"],
      ["snap", "create", "--no-progress", "--pool", "volumes", "--image", "volume-src", "--snap", "volume-dst.clone_snap"],
      ["snap", "protect", "--pool", "volumes", "--image", "volume-src", "--snap", "volume-dst.clone_snap"],
      ["clone", "--pool", "volumes", "--image", "volume-src", "--snap", "volume-dst.clone_snap", "--dest-pool", "volumes", "--dest", "volume-dst", "--object-size", "4194304B"],
      ["image-meta", "set", "--pool", "volumes", "--image", "volume-dst", "cinderts.volume_id", "dst"],
      ["flatten", "--no-progress", "--pool", "volumes", "--image", "volume-dst"],
      ["snap", "unprotect", "--pool", "volumes", "--image", "volume-src", "--snap", "volume-dst.clone_snap"],
      ["snap", "rm", "--no-progress", "--pool", "volumes", "--image", "volume-src", "--snap", "volume-dst.clone_snap"],
    ]);
  });

  it("clones of volumes made in this process skip the source's info; the depth limit still cuts the chain", async () => {
    const { driver, runner } = await ready([], { maxCloneDepth: 2 });
    await driver.createVolume(vol("a"));
    await driver.createVolumeFromSnapshot(vol("b"), snap("sa", "a")); // depth 1
    await driver.createClonedVolume(vol("c"), vol("b")); // depth 2
    await driver.createVolumeFromSnapshot(vol("d"), snap("sc", "c")); // would be 3: flattened
    await driver.createClonedVolume(vol("e"), vol("d")); // d is flat: depth 1, not flattened
    const steps = runner.calls.map((a) => a.slice(1 + C.length));
    expect(steps.filter((s) => s[0] === "info")).toEqual([]);
    expect(steps.filter((s) => s[0] === "flatten")).toEqual([["flatten", "--no-progress", "--pool", "volumes", "--image", "volume-d"]]);
  });

  it("after a delete, a volume of the same name is read from Ceph again", async () => {
    const { driver, runner } = await ready([
      [has("info"), (a) => ({ stdout: info(a.at(-1)!, a.at(-1) === "volume-a" ? { parent: { pool: "volumes", image: "volume-z", snapshot: "x" } } : {}), stderr: "", exitCode: 0 })],
    ], { maxCloneDepth: 1 });
    await driver.createVolume(vol("a"));
    await driver.deleteVolume(vol("a")); // reads info (it is gone from the cache too)
    runner.calls.length = 0;
    // volume-a now (per Ceph) is a clone of volume-z: depth 1, so a clone of it is flattened at maxCloneDepth 1
    await driver.createVolumeFromSnapshot(vol("b"), snap("s", "a"));
    const steps = runner.calls.map((a) => a.slice(1 + C.length));
    expect(steps[0]).toEqual(["info", "--format", "json", "--pool", "volumes", "--image", "volume-a"]);
    expect(steps.some((s) => s[0] === "flatten")).toBe(true);
  });

  it("clone volume with maxCloneDepth 0 is a full copy with the owner tag rewritten", async () => {
    const { driver, runner } = await ready([], { maxCloneDepth: 0 });
    await driver.createClonedVolume(vol("dst"), vol("src"));
    expect(runner.calls.map((a) => a.slice(1 + C.length))).toEqual([
      ["cp", "--no-progress", "--pool", "volumes", "--image", "volume-src", "--dest-pool", "volumes", "--dest", "volume-dst"],
      ["image-meta", "set", "--pool", "volumes", "--image", "volume-dst", "cinderts.volume_id", "dst"],
    ]);
  });
});

describe("connection info and stats", () => {
  const monDump = JSON.stringify({
    epoch: 1,
    fsid: "11111111-2222-3333-4444-555555555555",
    mons: [
      { name: "a", addr: "127.0.0.1:6789/0" },
      { name: "b", addr: "[::1]:6790/0" },
    ],
  });

  it("parses monitor addresses as Cinder does", () => {
    expect(parseMonAddr("10.0.0.1:6789/0")).toEqual({ host: "10.0.0.1", port: "6789" });
    expect(parseMonAddr("[fe80::1]:6789/0")).toEqual({ host: "fe80::1", port: "6789" });
  });

  it("initializeConnection returns the reference's RBD connection info, no keyring unless asked", async () => {
    const { driver, runner } = await ready([[has("mon", "dump"), { stdout: "dumped monmap epoch 1\n" + monDump }]]);
    const ci = await driver.initializeConnection(vol("v1"), { host: "h1", multipath: false });
    expect(ci).toEqual({
      driver_volume_type: "rbd",
      data: {
        name: "volumes/volume-v1",
        hosts: ["127.0.0.1", "::1"],
        ports: ["6789", "6790"],
        cluster_name: "ceph",
        auth_enabled: true,
        auth_username: "admin",
        secret_type: "ceph",
        secret_uuid: "11111111-2222-3333-4444-555555555555",
        volume_id: "v1",
        discard: true,
        access_mode: "rw",
      },
    });
    expect(runner.calls).toEqual([["ceph", ...C, "mon", "dump", "--format", "json"]]);
  });

  it("connectionKeyring: the keyring contents are read once at setup and sent", async () => {
    const { driver, runner } = makeDriver(
      [
        [has("ls", "--format"), { stdout: "[]" }],
        [has("cat"), { stdout: "[client.admin]\n\tkey = AQBsecret==\n" }],
        [has("mon", "dump"), { stdout: monDump }],
      ],
      { connectionKeyring: true, keyring: "/etc/ceph/ceph.client.admin.keyring" },
    );
    await driver.setup();
    expect(runner.calls[0]).toEqual(["cat", "--", "/etc/ceph/ceph.client.admin.keyring"]);
    const ci = await driver.initializeConnection(vol("v1"), { host: "h1", multipath: false });
    expect(ci.data.keyring).toBe("[client.admin]\n\tkey = AQBsecret==\n");
  });

  it("stats: Cinder's numbers in a pools list; a quota caps total and free", async () => {
    const df = JSON.stringify({
      stats: { total_bytes: 100 * GiB },
      pools: [{ name: "volumes", stats: { stored: 10 * GiB, bytes_used: 11 * GiB, max_avail: 50 * GiB } }],
    });
    const ls = JSON.stringify([
      { image: "volume-a", size: 2 * GiB },
      { image: "volume-a", snapshot: "s", size: 2 * GiB },
      { image: "volume-b", size: GiB / 2 },
    ]);
    const base: ConstructorParameters<typeof RecordingRunner>[0] = [
      [has("ls", "--long"), { stdout: ls }],
      [has("df"), { stdout: df }],
      [has("mon", "dump"), { stdout: monDump }],
    ];
    const a = await ready([...base, [has("get-quota"), { stdout: JSON.stringify({ quota_max_bytes: 0 }) }]]);
    const s = await a.driver.getStats({ refresh: true });
    expect(s).toMatchObject({ vendor_name: "Open Source", storage_protocol: "ceph", volume_backend_name: "ceph" });
    expect(s.pools).toEqual([
      expect.objectContaining({
        pool_name: "volumes",
        total_capacity_gb: 60,
        free_capacity_gb: 50,
        provisioned_capacity_gb: 3,
        thin_provisioning_support: true,
        backend_state: "up",
        location_info: "ceph:/etc/ceph/ceph.conf:11111111-2222-3333-4444-555555555555:admin:volumes",
      }),
    ]);
    const b = await ready([...base, [has("get-quota"), { stdout: JSON.stringify({ quota_max_bytes: 15 * GiB }) }]]);
    expect((await b.driver.getStats()).pools[0]).toMatchObject({ total_capacity_gb: 15, free_capacity_gb: 5 });
    expect(b.runner.calls).toContainEqual(["ceph", ...C, "osd", "pool", "get-quota", "volumes", "--format", "json"]);
  });

  it("stats: a failing cluster reports unknown capacities and backend_state down", async () => {
    const { driver } = await ready([[has("df"), { exitCode: 110, stderr: "(110) Connection timed out" }]]);
    const s = await driver.getStats();
    expect(s.pools[0]).toMatchObject({ total_capacity_gb: "unknown", free_capacity_gb: "unknown", backend_state: "down" });
  });
});

describe("inventory", () => {
  it("lists images with our owner tag, skipping .deleted parents and foreign images", async () => {
    const { driver } = await ready([
      [has("ls", "--long"), { stdout: JSON.stringify([{ image: "volume-a", size: GiB }, { image: "volume-b.deleted", size: GiB }, { image: "other", size: GiB }]) }],
      [(a) => has("image-meta", "list")(a) && a.includes("volume-a"), { stdout: JSON.stringify({ "cinderts.volume_id": "a" }) }],
      [(a) => has("image-meta", "list")(a) && a.includes("other"), { stdout: "{}" }],
    ]);
    expect(await driver.listManagedVolumes()).toEqual([{ id: "a", sizeGiB: 1, backendName: "ceph" }]);
  });
});
