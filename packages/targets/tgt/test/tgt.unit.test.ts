import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { type ExportSource, type VolumeRecord } from "@cinderts/core";
import { TgtConfig } from "../src/config.js";
import { TgtTarget } from "../src/target.js";
import { parseShowTarget } from "../src/tgtadm.js";
import { failing, RecordingRunner, targetContext } from "./support.js";

const ID = "0b5f3a52-7c39-4a4e-9d77-2f0a3f5b1c11";
const IQN = `iqn.2010-10.org.openstack:volume-${ID}`;

function volume(extra: Partial<VolumeRecord> = {}): VolumeRecord {
  return {
    id: ID,
    version: 1,
    backend: "b",
    name: null,
    created_at: "",
    updated_at: "",
    metadata: {},
    intent: null,
    status_reason: null,
    provider_location: null,
    provider_id: null,
    provider_auth: null,
    provider_geometry: null,
    size: 1,
    status: "available",
    source_volume_id: null,
    snapshot_id: null,
    ...extra,
  };
}
const source = (v = volume()): ExportSource => ({ volume: v, path: "/dev/vg0/volume-x", sizeBytes: 1 << 30 });
const cfg = (o: Record<string, unknown> = {}) => TgtConfig.parse({ targetIp: "127.0.0.1", targetPort: 13260, controlPort: 13, confDir: "/etc/tgt/conf.d", ...o });
const TGTADM = ["tgtadm", "-C", "13", "--lld", "iscsi"];

describe("parseShowTarget", () => {
  it("reads tids, LUN paths, incoming accounts, ACLs and sessions from real tgtadm output", () => {
    const m = parseShowTarget(readFileSync(new URL("./show-target.txt", import.meta.url), "utf8"));
    const t = m.get("iqn.2010-10.org.openstack:volume-p");
    expect(t).toEqual({
      tid: 3,
      iqn: "iqn.2010-10.org.openstack:volume-p",
      luns: [{ lun: 0 }, { lun: 1, path: "/tmp/cinderts-tgt/luns/p.img" }],
      accounts: ["u1"],
      acls: ["127.0.0.1", "iqn.2024-01.t:host1"],
      sessions: ["iqn.2024-01.t:host1"],
    });
  });
});

describe("TgtTarget (recording runner)", () => {
  it("createExport allocates the next tid, creates LUN 1, a CHAP account and the fragment, with exact argv", async () => {
    let shown = "Target 4: iqn.2010-10.org.openstack:other\n";
    const runner = new RecordingRunner((argv) => {
      if (argv.includes("show")) return { stdout: shown };
      if (argv.includes("new") && argv.includes("target")) shown += `Target 5: ${IQN}\n`;
    });
    const t = new TgtTarget(cfg(), targetContext(runner));
    const model = await t.createExport(source(), { host: "h", multipath: false });
    const argvs = runner.calls.map((c) => c.argv);
    const user = model.provider_auth!.split(" ")[1]!;
    const pass = model.provider_auth!.split(" ")[2]!;
    expect(model.provider_location).toBe(`127.0.0.1:13260,5 ${IQN} 1`);
    expect(user).toMatch(/^[2-9A-HJ-NP-Za-km-z]{20}$/);
    expect(pass).toMatch(/^[2-9A-HJ-NP-Za-km-z]{16}$/);
    expect(argvs).toEqual([
      [...TGTADM, "--op", "show", "--mode", "target"],
      [...TGTADM, "--op", "show", "--mode", "target"],
      [...TGTADM, "--op", "new", "--mode", "target", "--tid", "5", "-T", IQN],
      [...TGTADM, "--op", "new", "--mode", "logicalunit", "--tid", "5", "--lun", "1", "-b", "/dev/vg0/volume-x"],
      [...TGTADM, "--op", "new", "--mode", "account", "--user", user, "--password", pass],
      [...TGTADM, "--op", "bind", "--mode", "account", "--tid", "5", "--user", user],
      ["sh", "-c", 'umask 077 && cat > "$1.tmp" && mv -f "$1.tmp" "$1"', "sh", `/etc/tgt/conf.d/volume-${ID}.conf`],
    ]);
    // the secret only travels as masked argv and in the fragment's stdin
    expect(runner.calls[4]!.opts?.secrets).toEqual([pass]);
    expect(runner.calls[6]!.opts?.input).toBe(
      [
        `# written by @cinderts/target-tgt for volume ${ID}; restored by tgt-admin -e`,
        `<target ${IQN}>`,
        "\tbacking-store /dev/vg0/volume-x",
        `\tincominguser ${user} ${pass}`,
        "\tinitiator-address 255.255.255.255/32",
        "</target>",
        "",
      ].join("\n"),
    );
    expect(runner.calls.every((c) => c.opts?.root === true)).toBe(true);
  });

  it("retries with a fresh tid when another process took it between show and new", async () => {
    let shows = 0;
    const runner = new RecordingRunner((argv) => {
      if (argv.includes("show")) return { stdout: ++shows >= 3 ? "Target 1: iqn.2010-10.org.openstack:x\n" : "" };
      if (argv.includes("new") && argv.includes("target") && argv.includes("1")) failing(argv, "tgtadm: this target already exists");
    });
    const t = new TgtTarget(cfg({ chap: false, confDir: null }), targetContext(runner));
    const model = await t.createExport(source(), { host: "h", multipath: false });
    expect(model.provider_location).toBe(`127.0.0.1:13260,2 ${IQN} 1`);
    const news = runner.calls.filter((c) => c.argv.includes("new") && c.argv.includes("target")).map((c) => c.argv.at(-3));
    expect(news).toEqual(["1", "2"]);
  });

  it("reuses the CHAP credentials stored in provider_auth", async () => {
    const runner = new RecordingRunner((argv) => (argv.includes("show") ? { stdout: `Target 1: ${IQN}\n` } : undefined));
    const t = new TgtTarget(cfg({ confDir: null }), targetContext(runner));
    const model = await t.createExport(source(volume({ provider_auth: "CHAP AAAAAAAAAAAAAAAAAAAA bbbbbbbbbbbbbbbb" })), { host: "h", multipath: false });
    expect(model.provider_auth).toBe("CHAP AAAAAAAAAAAAAAAAAAAA bbbbbbbbbbbbbbbb");
    expect(runner.calls.map((c) => c.argv.slice(5))).toContainEqual(["--op", "new", "--mode", "account", "--user", "AAAAAAAAAAAAAAAAAAAA", "--password", "bbbbbbbbbbbbbbbb"]);
  });

  it("initializeConnection binds the initiator IQN and returns Cinder's connection info", async () => {
    const state = `Target 2: ${IQN}\n    LUN information:\n        LUN: 0\n        LUN: 1\n            Backing store path: /dev/vg0/volume-x\n    Account information:\n        AAAAAAAAAAAAAAAAAAAA\n    ACL information:\n`;
    const runner = new RecordingRunner((argv) => (argv.includes("show") ? { stdout: state } : undefined));
    const t = new TgtTarget(cfg({ confDir: null, secondaryIps: ["127.0.0.2"] }), targetContext(runner));
    const info = await t.initializeConnection(source(volume({ provider_auth: "CHAP AAAAAAAAAAAAAAAAAAAA bbbbbbbbbbbbbbbb" })), {
      host: "h",
      initiator: "iqn.2024-01.test.local:host1",
      multipath: false,
    });
    expect(runner.calls.map((c) => c.argv).filter((a) => !a.includes("show"))).toEqual([
      [...TGTADM, "--op", "bind", "--mode", "target", "--tid", "2", "--initiator-name", "iqn.2024-01.test.local:host1"],
    ]);
    expect(info).toEqual({
      driver_volume_type: "iscsi",
      data: {
        target_discovered: false,
        target_portal: "127.0.0.1:13260",
        target_iqn: IQN,
        target_lun: 1,
        target_portals: ["127.0.0.1:13260", "127.0.0.2:13260"],
        target_iqns: [IQN, IQN],
        target_luns: [1, 1],
        volume_id: ID,
        encrypted: false,
        access_mode: "rw",
        auth_method: "CHAP",
        auth_username: "AAAAAAAAAAAAAAAAAAAA",
        auth_password: "bbbbbbbbbbbbbbbb",
      },
    });
  });

  it("refuses connectors without an initiator IQN and odd names before running anything", async () => {
    const runner = new RecordingRunner();
    const t = new TgtTarget(cfg(), targetContext(runner));
    expect(() => t.validateConnector({ host: "h", multipath: false })).toThrow(/initiator/);
    await expect(t.initializeConnection(source(), { host: "h", initiator: "--force", multipath: false })).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    await expect(
      t.createExport({ ...source(), path: "/dev/x;rm -rf /" }, { host: "h", multipath: false }),
    ).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    expect(runner.calls.filter((c) => !c.argv.includes("show"))).toEqual([]);
  });

  it("extendExport re-creates LUN 1 so tgt reads the new size", async () => {
    const state = `Target 7: ${IQN}\n    LUN information:\n        LUN: 0\n        LUN: 1\n            Backing store path: /dev/vg0/volume-x\n`;
    const runner = new RecordingRunner((argv) => (argv.includes("show") ? { stdout: state } : undefined));
    await new TgtTarget(cfg({ bsType: "aio" }), targetContext(runner)).extendExport(source());
    expect(runner.calls.map((c) => c.argv).slice(1)).toEqual([
      [...TGTADM, "--op", "delete", "--mode", "logicalunit", "--tid", "7", "--lun", "1"],
      [...TGTADM, "--op", "new", "--mode", "logicalunit", "--tid", "7", "--lun", "1", "-b", "/dev/vg0/volume-x", "--bstype", "aio"],
    ]);
  });

  it("removeExport force-deletes the target, its accounts and the fragment; a missing target is fine", async () => {
    const state = `Target 7: ${IQN}\n    Account information:\n        AAAAAAAAAAAAAAAAAAAA\n`;
    const runner = new RecordingRunner((argv) => (argv.includes("show") ? { stdout: state } : undefined));
    await new TgtTarget(cfg(), targetContext(runner)).removeExport(source());
    expect(runner.calls.map((c) => c.argv).slice(1)).toEqual([
      [...TGTADM, "--op", "delete", "--mode", "target", "--tid", "7", "--force"],
      [...TGTADM, "--op", "delete", "--mode", "account", "--user", "AAAAAAAAAAAAAAAAAAAA"],
      ["rm", "-f", `/etc/tgt/conf.d/volume-${ID}.conf`],
    ]);
    const empty = new RecordingRunner();
    await new TgtTarget(cfg({ confDir: null }), targetContext(empty)).removeExport(source());
    expect(empty.calls.map((c) => c.argv)).toEqual([[...TGTADM, "--op", "show", "--mode", "target"]]);
  });
});
