/**
 * The driver contract with file-backed LUNs on this machine: @cinderts/driver-file exports its volume files
 * through tgt (tgt testbed), and @cinderts/connector-iscsi attaches them in user space (qemu-storage-daemon +
 * FUSE), since this kernel has no iSCSI initiator.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe } from "vitest";
import driverFile from "@cinderts/driver-file";
import iscsi from "@cinderts/connector-iscsi";
import runnerLocal from "@cinderts/runner-local";
import { driverContract, testbedEnv } from "@cinderts/testkit";
import { parsePortal } from "@cinderts/target-iscsi";
import tgt from "@cinderts/target-tgt";

const env = testbedEnv("tgt", ["TGT_CONTROL_PORT", "TGT_PORTAL", "TGT_CONF_DIR", "TGT_LUN_DIR"]);

describe.skipIf(!env)("file driver exported through tgt, user-space iSCSI attach", () => {
  const dir = env ? mkdtempSync(join(env.TGT_LUN_DIR, "file-")) : "/nonexistent";
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const portal = parsePortal(env?.TGT_PORTAL ?? "127.0.0.1:13260");
  driverContract({
    name: "driver-file + tgt + iscsi user-space",
    driver: driverFile,
    options: { path: join(dir, "volumes") },
    runner: { plugin: runnerLocal },
    target: {
      plugin: tgt,
      options: { targetIp: portal.ip, targetPort: portal.port, controlPort: Number(env?.TGT_CONTROL_PORT ?? 13), confDir: env?.TGT_CONF_DIR ?? null },
    },
    connectors: [{ plugin: iscsi, options: { method: "userspace", stateDir: join(dir, "attach") } }],
    timeoutMs: 180_000,
  });
});
