#!/usr/bin/env node
/**
 * @cinderts/driver-lvm figures in the QEMU test host (tooling/testbeds/testhost; source its env file first),
 * everything sent from this machine over ONE SSH connection (@cinderts/runner-ssh):
 *  1. per-operation latency of the driver (create, snapshot, clone, export+connect, disconnect, delete) beside the
 *     raw commands a person would type for the same result, sent over the same SSH connection;
 *  2. an export through LIO: our configfs script (one call) beside targetcli (one process per command, as
 *     cinder-rtstool does, and all commands piped into one targetcli);
 *  3. block-copy clone throughput (thick clone of a volume full of data) beside dd with the same block size.
 * Env: BENCH_RUNS (3), BENCH_VG (cinder-volumes), BENCH_CLONE_GIB (1), BENCH_SECTIONS (1,2,3). Build first: pnpm turbo run build --filter @cinderts/bench-lvm...
 */
import { randomUUID } from "node:crypto";

async function load(name, relDist) {
  try {
    return await import(name);
  } catch (e) {
    if (e?.code !== "ERR_MODULE_NOT_FOUND") throw e;
    return import(new URL(relDist, import.meta.url).href);
  }
}
const core = await load("@cinderts/core", "../../packages/core/dist/index.js");
const { default: lvmPlugin } = await load("@cinderts/driver-lvm", "../../packages/drivers/lvm/dist/index.js");
const { default: lioPlugin } = await load("@cinderts/target-lio", "../../packages/targets/lio/dist/index.js");
const { default: iscsiPlugin } = await load("@cinderts/connector-iscsi", "../../packages/connectors/iscsi/dist/index.js");
const { default: sshPlugin } = await load("@cinderts/runner-ssh", "../../packages/runners/ssh/dist/index.js");

const env = process.env;
for (const k of ["TESTHOST_SSH_HOST", "TESTHOST_SSH_PORT", "TESTHOST_SSH_KEY", "TESTHOST_SSH_KNOWN_HOSTS", "TESTHOST_DATA_DISK"]) {
  if (!env[k]) {
    console.error(`${k} is not set: boot the test host (tooling/testbeds/testhost/boot.sh start) and source its env file`);
    process.exit(2);
  }
}
const RUNS = Number(env.BENCH_RUNS ?? 3);
const VG = env.BENCH_VG ?? "cinder-volumes";
const CLONE_GIB = Number(env.BENCH_CLONE_GIB ?? 1);
const GiB = 1024 ** 3;
const SECTIONS = new Set((env.BENCH_SECTIONS ?? "1,2,3").split(","));

const runner = sshPlugin.create(
  sshPlugin.configSchema.parse({
    host: env.TESTHOST_SSH_HOST,
    port: Number(env.TESTHOST_SSH_PORT),
    username: env.TESTHOST_SSH_USER ?? "root",
    privateKeyPath: env.TESTHOST_SSH_KEY,
    knownHostsFile: env.TESTHOST_SSH_KNOWN_HOSTS,
    timeoutMs: 900_000,
  }),
  { logger: core.silentLogger },
);
const raw = (argv, opts = {}) => runner.run(argv, { root: true, ...opts });
const kv = { get: async () => undefined, set: async () => undefined, delete: async () => undefined, list: async () => [] };
const base = { logger: core.silentLogger, runner, locks: new core.InProcessLockManager(), stateDir: "/tmp", kv, backendName: "bench", nodeId: "bench", baseDir: "/tmp" };
const target = lioPlugin.create(lioPlugin.configSchema.parse({ targetIp: "127.0.0.1", targetPort: 3260 }), base);
const driver = lvmPlugin.create(lvmPlugin.configSchema.parse({ volumeGroup: VG, volumeClear: "none" }), { ...base, target });
const connector = iscsiPlugin.create(iscsiPlugin.configSchema.parse({ method: "kernel" }), base);

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (ms) => (ms < 1000 ? `${ms.toFixed(0)} ms` : `${(ms / 1000).toFixed(2)} s`);
async function timed(fn) {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}
function table(title, header, rows) {
  const all = [header, ...rows];
  const w = header.map((_, i) => Math.max(...all.map((r) => String(r[i]).length)));
  console.log(`\n${title}`);
  for (const [n, r] of all.entries()) {
    console.log(r.map((c, i) => String(c).padEnd(w[i])).join("  "));
    if (n === 0) console.log(w.map((x) => "-".repeat(x)).join("  "));
  }
}
const rec = (id, size = 1) => ({
  id, version: 1, backend: "bench", name: null, created_at: "", updated_at: "", metadata: {}, intent: null, status_reason: null,
  provider_location: null, provider_id: null, provider_auth: null, provider_geometry: null, size, status: "available",
  source_volume_id: null, snapshot_id: null,
});
const snapRec = (id, vid) => ({ ...rec(id), volume_id: vid, volume_size: 1, status: "available" });

await raw(["sh", "-c", 'vgs "$1" >/dev/null 2>&1 || { pvcreate -q -f "$2" && vgcreate -q "$1" "$2"; }', "prep", VG, env.TESTHOST_DATA_DISK]);
await driver.setup();
// As cinder-rtstool does (-a <ip>), targetcli gets an explicit portal instead of its default 0.0.0.0:3260, which
// would also take the port from every other address.
await raw(["targetcli", "set", "global", "auto_add_default_portal=false"]);
const props = await connector.getConnectorProperties();
const initiator = props.initiator;

// ── 1. per-operation latency ──
if (SECTIONS.has("1")) {
const ops = { create: [[], []], snapshot: [[], []], clone: [[], []], "export+connect": [[], []], disconnect: [[], []], delete: [[], []] };
for (let i = 0; i < RUNS; i++) {
  const v = rec(randomUUID());
  const s = snapRec(randomUUID(), v.id);
  const c = rec(randomUUID());
  ops.create[0].push(await timed(() => driver.createVolume(v)));
  ops.snapshot[0].push(await timed(() => driver.createSnapshot(s, v)));
  ops.clone[0].push(await timed(() => driver.createVolumeFromSnapshot(c, s)));
  let model, info, attach;
  ops["export+connect"][0].push(
    await timed(async () => {
      model = await driver.createExport(v, props);
      info = await driver.initializeConnection({ ...v, ...model }, props);
      attach = await connector.connectVolume(info);
    }),
  );
  ops.disconnect[0].push(
    await timed(async () => {
      await connector.disconnectVolume(info, attach);
      await driver.terminateConnection({ ...v, ...model }, props);
      await driver.removeExport({ ...v, ...model });
    }),
  );
  ops.delete[0].push(
    await timed(async () => {
      await driver.deleteVolume(c);
      await driver.deleteSnapshot(s, v);
      await driver.deleteVolume(v);
    }),
  );

  // the same results by hand: plain LVM, targetcli (as cinder-rtstool's steps), iscsiadm
  const lv = `raw${i}-${randomUUID().slice(0, 8)}`;
  const iqn = `iqn.2010-10.org.openstack:${lv}`;
  const portal = "127.0.0.1:3260";
  const node = ["iscsiadm", "-m", "node", "-T", iqn, "-p", portal];
  ops.create[1].push(await timed(() => raw(["lvcreate", "-q", "-n", lv, "-L", "1g", VG])));
  ops.snapshot[1].push(await timed(() => raw(["lvcreate", "-q", "--name", `${lv}-s`, "--snapshot", `${VG}/${lv}`, "-L", "1g"])));
  ops.clone[1].push(
    await timed(async () => {
      await raw(["lvcreate", "-q", "-n", `${lv}-c`, "-L", "1g", VG]);
      await raw(["dd", `if=/dev/${VG}/${lv}-s`, `of=/dev/${VG}/${lv}-c`, "bs=1M", "iflag=direct", "oflag=direct", "status=none"]);
    }),
  );
  ops["export+connect"][1].push(
    await timed(async () => {
      await raw(["targetcli", "/backstores/block", "create", `name=${lv}`, `dev=/dev/${VG}/${lv}`]);
      await raw(["targetcli", "/iscsi", "create", iqn]);
      await raw(["targetcli", `/iscsi/${iqn}/tpg1/portals`, "create", "127.0.0.1", "3260"]);
      await raw(["targetcli", `/iscsi/${iqn}/tpg1/luns`, "create", `/backstores/block/${lv}`]);
      await raw(["targetcli", `/iscsi/${iqn}/tpg1/acls`, "create", initiator]);
      await raw(["targetcli", `/iscsi/${iqn}/tpg1/acls/${initiator}`, "set", "auth", "userid=benchuser", "password=benchsecret1234"]);
      await raw(["targetcli", `/iscsi/${iqn}/tpg1`, "set", "attribute", "authentication=1"]);
      await raw(["targetcli", "saveconfig"]);
      await raw([...node, "-o", "new"]);
      await raw([...node, "-o", "update", "-n", "node.session.auth.authmethod", "-v", "CHAP"]);
      await raw([...node, "-o", "update", "-n", "node.session.auth.username", "-v", "benchuser"]);
      await raw([...node, "-o", "update", "-n", "node.session.auth.password", "-v", "benchsecret1234"]);
      await raw([...node, "--login"]);
      await raw(["sh", "-c", 'while [ ! -e "$1" ]; do sleep 0.1; done', "w", `/dev/disk/by-path/ip-${portal}-iscsi-${iqn}-lun-0`]);
    }),
  );
  ops.disconnect[1].push(
    await timed(async () => {
      await raw([...node, "--logout"]);
      await raw([...node, "-o", "delete"]);
      await raw(["targetcli", "/iscsi", "delete", iqn]);
      await raw(["targetcli", "/backstores/block", "delete", lv]);
      await raw(["targetcli", "saveconfig"]);
    }),
  );
  ops.delete[1].push(
    await timed(async () => {
      await raw(["lvremove", "-q", "-f", `${VG}/${lv}-c`]);
      await raw(["lvremove", "-q", "-f", `${VG}/${lv}-s`]);
      await raw(["lvremove", "-q", "-f", `${VG}/${lv}`]);
    }),
  );
}
table(
  `1. per operation, median of ${RUNS} (thick 1 GiB volume; LIO; kernel iSCSI in the guest; one SSH connection from this machine)`,
  ["operation", "cinderts driver", "raw commands (targetcli, lvcreate, iscsiadm)"],
  Object.entries(ops).map(([k, [a, b]]) => [k, fmt(median(a)), fmt(median(b))]),
);
}

// ── 2. LIO export: configfs script vs targetcli ──
if (SECTIONS.has("2")) {
const lioRows = { configfs: [], "targetcli, one process per command": [], "targetcli, one process, commands on stdin": [] };
for (let i = 0; i < RUNS; i++) {
  const lv = `lio${i}-${randomUUID().slice(0, 8)}`;
  await raw(["lvcreate", "-q", "-n", lv, "-L", "64m", VG]);
  const v = rec(randomUUID());
  const src = { volume: v, path: `/dev/${VG}/${lv}`, sizeBytes: 64 << 20 };
  lioRows.configfs.push(
    await timed(async () => {
      const m = await target.createExport(src, props);
      await target.initializeConnection({ ...src, volume: { ...v, ...m } }, props);
    }),
  );
  await target.removeExport(src);
  const iqn = `iqn.2010-10.org.openstack:${lv}`;
  const cmds = [
    ["/backstores/block", "create", `name=${lv}`, `dev=/dev/${VG}/${lv}`],
    ["/iscsi", "create", iqn],
    [`/iscsi/${iqn}/tpg1/portals`, "create", "127.0.0.1", "3260"],
    [`/iscsi/${iqn}/tpg1/luns`, "create", `/backstores/block/${lv}`],
    [`/iscsi/${iqn}/tpg1/acls`, "create", initiator],
    [`/iscsi/${iqn}/tpg1/acls/${initiator}`, "set", "auth", "userid=benchuser", "password=benchsecret1234"],
    [`/iscsi/${iqn}/tpg1`, "set", "attribute", "authentication=1"],
    ["saveconfig"],
  ];
  lioRows["targetcli, one process per command"].push(await timed(async () => { for (const c of cmds) await raw(["targetcli", ...c]); }));
  await raw(["targetcli", "/iscsi", "delete", iqn]);
  await raw(["targetcli", "/backstores/block", "delete", lv]);
  lioRows["targetcli, one process, commands on stdin"].push(
    await timed(() => raw(["targetcli"], { input: [...cmds.map((c) => c.join(" ")), "exit", ""].join("\n") })),
  );
  await raw(["targetcli", "/iscsi", "delete", iqn]);
  await raw(["targetcli", "/backstores/block", "delete", lv]);
  await raw(["targetcli", "saveconfig"]);
  await raw(["lvremove", "-q", "-f", `${VG}/${lv}`]);
}
table(`2. LIO export with CHAP ACL and saved config, median of ${RUNS}`, ["method", "time"], Object.entries(lioRows).map(([k, xs]) => [k, fmt(median(xs))]));
}

// ── 3. clone throughput ──
if (SECTIONS.has("3")) {
const src = rec(randomUUID(), CLONE_GIB);
await driver.createVolume(src);
await raw(["dd", "if=/dev/urandom", `of=/dev/${VG}/volume-${src.id}`, "bs=1M", `count=${CLONE_GIB * 1024}`, "oflag=direct", "status=none"]);
const cl = [];
const dd = [];
for (let i = 0; i < RUNS; i++) {
  const dst = rec(randomUUID(), CLONE_GIB);
  cl.push(await timed(() => driver.createClonedVolume(dst, src)));
  await driver.deleteVolume(dst);
  const lv = `dd${i}-${randomUUID().slice(0, 8)}`;
  await raw(["lvcreate", "-q", "-n", lv, "-L", `${CLONE_GIB}g`, VG]);
  dd.push(await timed(() => raw(["dd", `if=/dev/${VG}/volume-${src.id}`, `of=/dev/${VG}/${lv}`, "bs=1M", "iflag=direct", "oflag=direct", "status=none"])));
  await raw(["lvremove", "-q", "-f", `${VG}/${lv}`]);
}
await driver.deleteVolume(src);
const mbps = (ms) => `${((CLONE_GIB * 1024) / (ms / 1000)).toFixed(0)} MiB/s`;
table(`3. block-copy clone of a ${CLONE_GIB} GiB thick volume full of data, median of ${RUNS} (bs=1M, O_DIRECT)`, ["method", "time", "throughput"], [
  ["driver createClonedVolume (temp snapshot + chunked dd)", fmt(median(cl)), mbps(median(cl))],
  ["dd alone", fmt(median(dd)), mbps(median(dd))],
]);
}
await runner.close?.();
