/** Shared set-up for the tests that run in the QEMU Linux test host (tooling/testbeds/testhost). */
import { silentLogger, type CommandRunner } from "@cinderts/core";
import sshRunner from "@cinderts/runner-ssh";
import { testbedEnv } from "@cinderts/testkit";

export const testhost = testbedEnv("testhost", [
  "TESTHOST_SSH_HOST",
  "TESTHOST_SSH_PORT",
  "TESTHOST_SSH_USER",
  "TESTHOST_SSH_KEY",
  "TESTHOST_SSH_KNOWN_HOSTS",
  "TESTHOST_DATA_DISK",
  "TESTHOST_ISCSI_PORTAL",
]);

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
