/** Shared set-up for the tests that run in the QEMU Linux test host (tooling/testbeds/testhost). */
import { silentLogger, type Backend, type Cinderts, type CommandRunner } from "@cinderts/core";
import iscsi from "@cinderts/connector-iscsi";
import sshRunner from "@cinderts/runner-ssh";
import lio from "@cinderts/target-lio";
import { openContractHarness, testbedEnv } from "@cinderts/testkit";
import lvm from "../src/index.js";

export const testhost = testbedEnv("testhost", [
  "TESTHOST_SSH_HOST",
  "TESTHOST_SSH_PORT",
  "TESTHOST_SSH_USER",
  "TESTHOST_SSH_KEY",
  "TESTHOST_SSH_KNOWN_HOSTS",
  "TESTHOST_DATA_DISK",
  "TESTHOST_ISCSI_PORTAL",
]);

/** Which test-host contracts run: CINDERTS_LVM_CONTRACTS=lio-thick,lio-thin,tgt-thin (default: all three). */
export function contractEnabled(name: "lio-thick" | "lio-thin" | "tgt-thin"): boolean {
  const list = process.env.CINDERTS_LVM_CONTRACTS;
  return !list || list.split(",").map((s) => s.trim()).includes(name);
}

export const VG = "cinder-volumes";
export const THIN_POOL = "cinderts-pool";

export function sshOptions(): Record<string, unknown> {
  return {
    host: testhost!.TESTHOST_SSH_HOST,
    port: Number(testhost!.TESTHOST_SSH_PORT),
    username: testhost!.TESTHOST_SSH_USER,
    privateKeyPath: testhost!.TESTHOST_SSH_KEY,
    knownHostsFile: testhost!.TESTHOST_SSH_KNOWN_HOSTS,
    timeoutMs: 600_000,
  };
}

export function sshRunnerInstance(): CommandRunner {
  return sshRunner.create(sshRunner.configSchema.parse(sshOptions()), { logger: silentLogger });
}

// The VG on the guest's data disk, and a fixed-size thin pool so thick and thin volumes share it.
const PREPARE = String.raw`
disk=$1 vg=$2 pool=$3
if ! vgs "$vg" >/dev/null 2>&1; then pvcreate -q -f "$disk" && vgcreate -q "$vg" "$disk"; fi
if ! lvs "$vg/$pool" >/dev/null 2>&1; then lvcreate -q -T -L 6g "$vg/$pool"; fi
# leftovers of an interrupted run (the guest is a throwaway test machine)
for s in $(iscsiadm -m session 2>/dev/null | sed -n 's/.* \(iqn.2010-10.org.openstack:volume-[^ ]*\) .*/\1/p'); do iscsiadm -m node -T "$s" --logout >/dev/null 2>&1 || :; done
if [ "$4" = 1 ]; then targetctl clear >/dev/null 2>&1 || :; fi
lvremove -q -f -S 'lv_tags=cinderts && lv_attr=~^s' >/dev/null 2>&1 || :
lvremove -q -f -S 'lv_tags=cinderts' >/dev/null 2>&1 || :
`;

/** VG and thin pool exist; leftovers of an interrupted run (sessions, cinderts LVs, LIO config when clearLio) are gone. */
export async function prepareTesthost(runner: CommandRunner, clearLio = false): Promise<void> {
  await runner.run(["sh", "-c", PREPARE, "prepare", testhost!.TESTHOST_DATA_DISK, VG, THIN_POOL, clearLio ? "1" : "0"], { root: true, timeoutMs: 300_000 });
}

/** Where the test host's own tgtd listens (the guest's 3260 belongs to LIO). */
export const GUEST_TGT_PORTAL = { ip: "127.0.0.1", port: 3262 };
export const GUEST_TGT_CONTROL_PORT = 13;
const GUEST_TGT_PACKAGES = ["tgt", "libibverbs1", "librdmacm1", "libconfig-general-perl", "libnl-3-200", "libnl-route-3-200"];

/**
 * Debian packages the image does not carry, installed into the running guest (it has no network): fetched on this
 * machine with `apt-get download` (kept in /tmp/cinderts-guest-debs/<set>, so later boots do not fetch again), sent
 * over the runner and installed with dpkg. The distribution services are kept from starting (policy-rc.d), and
 * update-initramfs is switched off first: the guest boots from the initrd copied out at build time, and
 * regenerating an unused one costs minutes under TCG (measured: 19 min 52 s for multipath-tools' trigger).
 */
async function installGuestDebs(runner: CommandRunner, set: string, packages: readonly string[], dpkgFlags: readonly string[] = []): Promise<void> {
  const { execFileSync } = await import("node:child_process");
  const { mkdirSync, readdirSync, readFileSync } = await import("node:fs");
  const dir = `/tmp/cinderts-guest-debs/${set}`;
  mkdirSync(dir, { recursive: true });
  const debs = () => readdirSync(dir).filter((x) => x.endsWith(".deb"));
  if (!packages.every((p) => debs().some((f) => f.startsWith(`${p}_`)))) {
    const download = () => execFileSync("apt-get", ["download", ...packages], { cwd: dir, stdio: "pipe" });
    try {
      download();
    } catch {
      execFileSync("apt-get", ["update", "-q"], { stdio: "pipe" });
      download();
    }
  }
  const guestDir = `/tmp/cinderts-debs-${set}`;
  await runner.run(["mkdir", "-p", guestDir], { root: true });
  for (const f of debs()) {
    await runner.run(["sh", "-c", 'cat > "$1"', "put", `${guestDir}/${f}`], { root: true, input: readFileSync(`${dir}/${f}`) });
  }
  await runner.run(
    [
      "sh",
      "-c",
      'd=$1; shift; printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && ' +
        "sed -i 's/^update_initramfs=.*/update_initramfs=no/' /etc/initramfs-tools/update-initramfs.conf 2>/dev/null; " +
        'dpkg -i "$@" "$d"/*.deb; rc=$?; rm -f /usr/sbin/policy-rc.d; exit $rc',
      "install",
      guestDir,
      ...dpkgFlags,
    ],
    { root: true, timeoutMs: 600_000 },
  );
}

/**
 * tgt in the test host. The image may not carry it: then Debian's packages are installed at test time
 * (installGuestDebs). tgt-admin's perl dependencies are left out (--force-depends): the tests drive tgtd with
 * tgtadm only; restore through tgt-admin is tested on this machine (tgt testbed). Our own tgtd then runs on 127.0.0.1:3262 with control port 13, like the tgt testbed.
 */
export async function ensureGuestTgt(runner: CommandRunner): Promise<void> {
  const has = await runner.run(["sh", "-c", "command -v tgtd"], { root: true, okExitCodes: [0, 1, 127] });
  if (has.exitCode !== 0) await installGuestDebs(runner, "tgt", GUEST_TGT_PACKAGES, ["--force-depends"]);
  const C = String(GUEST_TGT_CONTROL_PORT);
  await runner.run(
    ["sh", "-c", 'tgtadm -C "$1" --op show --mode system >/dev/null 2>&1 || { mkdir -p /var/run/tgtd && tgtd -C "$1" --iscsi "portal=$2" && sleep 1; }; tgtadm -C "$1" --op show --mode system >/dev/null', "tgtd", C, `${GUEST_TGT_PORTAL.ip}:${GUEST_TGT_PORTAL.port}`],
    { root: true, timeoutMs: 120_000 },
  );
}

/** What the image lacks for dm-multipath (lsb-base, libaio1, liburcu8, libjson-c5, libedit2 are in it). */
const GUEST_MULTIPATH_PACKAGES = ["multipath-tools", "kpartx", "sg3-utils-udev"];

/**
 * multipathd running in the test host with Debian's stock configuration (no /etc/multipath.conf:
 * find_multipaths "strict", LIO-ORG from the built-in hardware table). Installed at test time rather than baked
 * into the image: an image change costs every CI machine a rebuild (3–16 min measured) and would start multipathd
 * at every boot under the other suites, which expect plain /dev/sdX; installing here costs ~0.4 MB and a dpkg run.
 */
export async function ensureGuestMultipath(runner: CommandRunner): Promise<void> {
  const has = await runner.run(["sh", "-c", "command -v multipathd"], { root: true, okExitCodes: [0, 1, 127] });
  if (has.exitCode !== 0) await installGuestDebs(runner, "multipath", GUEST_MULTIPATH_PACKAGES);
  await runner.run(["sh", "-c", "systemctl start multipathd.service && multipathd show status >/dev/null"], { root: true, timeoutMs: 120_000 });
}

/** Back to a guest without multipath for the suites that follow: unused maps flushed, daemon and socket stopped, WWIDs forgotten. */
export async function stopGuestMultipath(runner: CommandRunner): Promise<void> {
  await runner.run(
    ["sh", "-c", "command -v multipathd >/dev/null || exit 0; multipath -F >/dev/null 2>&1; systemctl stop multipathd.socket multipathd.service; multipath -W >/dev/null 2>&1; :"],
    { root: true, timeoutMs: 120_000 },
  );
}

/**
 * The harness of the LIO test-host files: thin LVM over SSH, LIO on 127.0.0.1:3260, the kernel iSCSI connector
 * (run in the guest through the same runner). Extra options go to the target and the connector.
 */
export function openThinLioHarness(extra: { lio?: Record<string, unknown>; iscsi?: Record<string, unknown> } = {}): Promise<Cinderts> {
  return openContractHarness({
    driver: lvm,
    options: { volumeGroup: VG, provisioning: "thin", thinPool: THIN_POOL },
    runner: { plugin: sshRunner, options: sshOptions() },
    target: { plugin: lio, options: { targetIp: "127.0.0.1", targetPort: 3260, ...extra.lio } },
    connectors: [{ plugin: iscsi, options: { method: "kernel", ...extra.iscsi } }],
  });
}

/** Disconnect and delete the volumes a test file made, whatever state a failed test left them in. */
export async function removeVolumes(backend: Backend, ids: readonly string[]): Promise<void> {
  for (const id of ids) {
    for (const c of await backend.listConnections({ volume_id: id }).catch(() => [])) await backend.disconnect(c.id, { force: true }).catch(() => undefined);
    await backend.deleteVolume(id).catch(() => undefined);
  }
}
