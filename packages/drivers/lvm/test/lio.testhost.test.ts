/**
 * LVM + LIO in the QEMU test host, driven from this machine through the ssh runner; attach is a real kernel
 * iSCSI login inside the guest (the connector runs there through the same runner).
 */
import { beforeAll, describe } from "vitest";
import { driverContract, runnerIo } from "@cinderts/testkit";
import sshRunner from "@cinderts/runner-ssh";
import lio from "@cinderts/target-lio";
import iscsi from "@cinderts/connector-iscsi";
import lvm from "../src/index.js";
import { contractEnabled, prepareTesthost, sshOptions, sshRunnerInstance, testhost, THIN_POOL, VG } from "./testhost.js";

describe.skipIf(!testhost)("LVM + LIO on the test host", () => {
  const runner = testhost ? sshRunnerInstance() : undefined;
  beforeAll(async () => prepareTesthost(runner!), 300_000);

  for (const provisioning of (["thick", "thin"] as const).filter((p) => contractEnabled(`lio-${p}`))) {
    driverContract({
      name: `lvm ${provisioning} + lio (test host, kernel iSCSI)`,
      driver: lvm,
      options: { volumeGroup: VG, provisioning, thinPool: THIN_POOL, volumeClearSizeMiB: 16 },
      runner: { plugin: sshRunner, options: testhost ? sshOptions() : {} },
      target: { plugin: lio, options: { targetIp: "127.0.0.1", targetPort: 3260 } },
      connectors: [{ plugin: iscsi, options: { method: "kernel" } }],
      io: runner ? runnerIo(runner) : undefined,
      timeoutMs: 1_200_000,
    });
  }
});
