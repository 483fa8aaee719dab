import { describe, expect, it } from "vitest";
import type { ConnectionInfo } from "@cinderts/core";
import { IscsiConnectorConfig } from "../src/config.js";
import { IscsiConnector } from "../src/connector.js";
import { byPath } from "../src/conninfo.js";
import { RecordingRunner, targetContext } from "./support.js";

const IQN = "iqn.2010-10.org.openstack:volume-abc";
const info: ConnectionInfo = {
  driver_volume_type: "iscsi",
  data: {
    target_portal: "127.0.0.1:3260",
    target_iqn: IQN,
    target_lun: 0,
    auth_method: "CHAP",
    auth_username: "chapuser0000000000000",
    auth_password: "chapsecret123456",
  },
};
const NODE = ["iscsiadm", "-m", "node", "-T", IQN, "-p", "127.0.0.1:3260"];

function connector(runner: RecordingRunner) {
  return new IscsiConnector(IscsiConnectorConfig.parse({ method: "kernel" }), targetContext(runner));
}

describe("IscsiConnector kernel path (recording runner)", () => {
  it("creates the node, sets CHAP, logs in, waits for the by-path link and reports /dev/sdX", async () => {
    const r = new RecordingRunner((argv) => {
      if (argv.join(" ") === NODE.join(" ")) return { exitCode: 21, stderr: "iscsiadm: No records found" };
      if (argv[1] === "-m" && argv[2] === "session") return { exitCode: 21 };
      if (argv[0] === "sh" && argv[3] === "wait") return { stdout: "/dev/sdc\n" };
    });
    const attach = await connector(r).connectVolume(info);
    expect(attach).toMatchObject({ connector: "iscsi", method: "kernel", path: "/dev/sdc", handle: { devices: ["sdc"], paths: [{ portal: "127.0.0.1:3260", iqn: IQN, lun: 0 }] } });
    const argvs = r.calls.map((c) => c.argv);
    expect(argvs.slice(0, 8)).toEqual([
      NODE,
      [...NODE, "--interface", "default", "--op", "new"],
      [...NODE, "--op", "update", "-n", "node.session.auth.authmethod", "-v", "CHAP"],
      [...NODE, "--op", "update", "-n", "node.session.auth.username", "-v", "chapuser0000000000000"],
      [...NODE, "--op", "update", "-n", "node.session.auth.password", "-v", "chapsecret123456"],
      ["iscsiadm", "-m", "session"],
      [...NODE, "--login"],
      [...NODE, "--op", "update", "-n", "node.startup", "-v", "automatic"],
    ]);
    expect(argvs[8]!.slice(3, 5)).toEqual(["wait", byPath({ portal: "127.0.0.1:3260", iqn: IQN, lun: 0 })]);
    expect(r.calls[4]!.opts?.secrets).toEqual(["chapsecret123456"]);
    expect(byPath({ portal: "[::1]:3260", iqn: IQN, lun: 1 })).toBe(`/dev/disk/by-path/ip-::1:3260-iscsi-${IQN}-lun-1`);
  });

  it("reuses a live session instead of logging in again", async () => {
    const r = new RecordingRunner((argv) => {
      if (argv[1] === "-m" && argv[2] === "session") return { stdout: `tcp: [3] 127.0.0.1:3260,1 ${IQN} (non-flash)\n` };
      if (argv[0] === "sh" && argv[3] === "wait") return { stdout: "/dev/sdb\n" };
    });
    await connector(r).connectVolume({ ...info, data: { ...info.data, auth_method: undefined } });
    expect(r.calls.map((c) => c.argv).some((a) => a.includes("--login"))).toBe(false);
  });

  it("disconnect flushes and deletes the disk, and logs out only when no other LUN of the target remains", async () => {
    const handle = { paths: [{ portal: "127.0.0.1:3260", iqn: IQN, lun: 0 }], devices: ["sdc"] };
    const attach = { connector: "iscsi", method: "kernel", path: "/dev/sdc", host: "h", handle };
    let others = "";
    const r = new RecordingRunner((argv) => {
      if (argv[0] === "sh" && argv[3] === "wait") return { stdout: "/dev/sdc\n" };
      if (argv[0] === "sh" && argv[3] === "luns") return { stdout: others };
    });
    await connector(r).disconnectVolume(info, attach);
    expect(r.calls.map((c) => c.argv).filter((a) => a[0] !== "sh")).toEqual([
      ["blockdev", "--flushbufs", "/dev/sdc"],
      ["tee", "-a", "/sys/block/sdc/device/delete"],
      [...NODE, "--op", "update", "-n", "node.startup", "-v", "manual"],
      [...NODE, "--logout"],
      [...NODE, "--op", "delete"],
    ]);
    expect(r.calls.find((c) => c.argv[0] === "tee")!.opts?.input).toBe("1");

    others = `/dev/disk/by-path/ip-127.0.0.1:3260-iscsi-${IQN}-lun-1\n`;
    const r2 = new RecordingRunner((argv) => {
      if (argv[0] === "sh" && argv[3] === "wait") return { stdout: "/dev/sdc\n" };
      if (argv[0] === "sh" && argv[3] === "luns") return { stdout: others };
    });
    await connector(r2).disconnectVolume(info, attach);
    expect(r2.calls.some((c) => c.argv.includes("--logout"))).toBe(false);
  });

  it("multipath: logs in on every portal, has the dm map formed over both disks, flushes it by device node, resizes it on extend", async () => {
    const mpInfo: ConnectionInfo = {
      ...info,
      data: { ...info.data, target_portals: ["127.0.0.1:3260", "127.0.0.1:3261"], target_iqns: [IQN, IQN], target_luns: [0, 0] },
    };
    const NODE2 = ["iscsiadm", "-m", "node", "-T", IQN, "-p", "127.0.0.1:3261"];
    const disk: Record<string, string> = { "127.0.0.1:3260": "/dev/sdc\n", "127.0.0.1:3261": "/dev/sdd\n" };
    const r = new RecordingRunner((argv) => {
      if (argv[1] === "-m" && argv[2] === "session") return { exitCode: 21 };
      if (argv[0] === "sh" && argv[2]!.startsWith("cat /etc/iscsi")) return { stdout: "InitiatorName=iqn.1993-08.org.debian:01:abc\n" };
      if (argv[0] === "sh" && argv[3] === "wait") return { stdout: disk[/ip-([0-9.:]+)-iscsi/.exec(argv[4]!)![1]!] };
      if (argv[0] === "sh" && argv[3] === "mpath") return { stdout: "dm-3 2\n" };
      if (argv[0] === "sh" && argv[3] === "mpath-of") return { stdout: "dm-3\n" };
      if (argv[0] === "blockdev" && argv[1] === "--getsize64") return { stdout: "2147483648\n" };
    });
    const c = new IscsiConnector(IscsiConnectorConfig.parse({ method: "kernel", multipath: true }), targetContext(r));
    expect(await c.getConnectorProperties()).toMatchObject({ multipath: true, multipath_supported: true });
    const attach = await c.connectVolume(mpInfo);
    expect(attach).toMatchObject({ path: "/dev/dm-3", handle: { devices: ["sdc", "sdd"], multipath: "dm-3" } });
    const argvs = r.calls.map((x) => x.argv);
    expect(argvs.filter((a) => a.includes("--login"))).toEqual([[...NODE, "--login"], [...NODE2, "--login"]]);
    expect(argvs.find((a) => a[3] === "mpath")!.slice(4)).toEqual(["50", "sdc", "sdd"]);

    r.calls.length = 0;
    expect(await c.extendVolume(mpInfo, attach)).toBe(2147483648);
    expect(r.calls.map((x) => x.argv).filter((a) => a[0] !== "sh")).toEqual([
      [...NODE, "--rescan"],
      [...NODE2, "--rescan"],
      ["multipathd", "resize", "map", "dm-3"],
      ["blockdev", "--getsize64", "/dev/dm-3"],
    ]);

    r.calls.length = 0;
    await c.disconnectVolume(mpInfo, attach);
    const off = r.calls.map((x) => x.argv).filter((a) => a[0] !== "sh" && !a.includes("--op"));
    expect(off).toEqual([
      ["multipath", "-f", "/dev/dm-3"],
      ["blockdev", "--flushbufs", "/dev/sdc"],
      ["tee", "-a", "/sys/block/sdc/device/delete"],
      [...NODE, "--logout"],
      ["blockdev", "--flushbufs", "/dev/sdd"],
      ["tee", "-a", "/sys/block/sdd/device/delete"],
      [...NODE2, "--logout"],
    ]);
  });

  it("rejects connection info that would smuggle options into iscsiadm or qemu", async () => {
    const r = new RecordingRunner();
    await expect(connector(r).connectVolume({ ...info, data: { ...info.data, target_iqn: "--op=delete" } })).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    await expect(connector(r).connectVolume({ ...info, data: { ...info.data, auth_password: "a,b" } })).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    expect(r.calls.filter((c) => c.argv[0] === "iscsiadm")).toEqual([]);
  });
});
