/**
 * LVM + tgt in the QEMU test host, driven from this machine through the ssh runner; attach is a real kernel
 * iSCSI login inside the guest (the connector runs there through the same runner).
 */
import { beforeAll, describe } from "vitest";
import { driverContract, runnerIo } from "@cinderts/testkit";
import sshRunner from "@cinderts/runner-ssh";
import tgt from "@cinderts/target-tgt";
import iscsi from "@cinderts/connector-iscsi";
import lvm from "../src/index.js";
import { contractEnabled, ensureGuestTgt, GUEST_TGT_CONTROL_PORT, GUEST_TGT_PORTAL, prepareTesthost, sshOptions, sshRunnerInstance, testhost, THIN_POOL, VG } from "./testhost.js";

describe.skipIf(!testhost || !contractEnabled("tgt-thin"))("LVM + tgt on the test host", () => {
  const runner = testhost ? sshRunnerInstance() : undefined;
  beforeAll(async () => {
    await prepareTesthost(runner!);
    await ensureGuestTgt(runner!);
  }, 900_000);

  driverContract({
    name: "lvm thin + tgt (test host, kernel iSCSI)",
    driver: lvm,
    options: { volumeGroup: VG, provisioning: "thin", thinPool: THIN_POOL },
    runner: { plugin: sshRunner, options: testhost ? sshOptions() : {} },
    target: {
      plugin: tgt,
      options: { targetIp: GUEST_TGT_PORTAL.ip, targetPort: GUEST_TGT_PORTAL.port, controlPort: GUEST_TGT_CONTROL_PORT, confDir: "/etc/tgt/conf.d" },
    },
    connectors: [{ plugin: iscsi, options: { method: "kernel" } }],
    io: runner ? runnerIo(runner) : undefined,
    timeoutMs: 1_200_000,
  });
});
