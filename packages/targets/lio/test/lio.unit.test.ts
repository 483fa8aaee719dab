import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { ExportSource, VolumeRecord } from "@cinderts/core";
import { LioConfig } from "../src/config.js";
import { LIO_SCRIPT } from "../src/script.js";
import { LioTarget } from "../src/target.js";
import { RecordingRunner, targetContext } from "./support.js";

const ID = "0b5f3a52-7c39-4a4e-9d77-2f0a3f5b1c11";
const IQN = `iqn.2010-10.org.openstack:volume-${ID}`;
const vol = (auth: string | null = null): VolumeRecord => ({
  id: ID, version: 1, backend: "b", name: null, created_at: "", updated_at: "", metadata: {}, intent: null, status_reason: null,
  provider_location: null, provider_id: null, provider_auth: auth, provider_geometry: null, size: 1, status: "available",
  source_volume_id: null, snapshot_id: null,
});
const source = (auth: string | null = null): ExportSource => ({ volume: vol(auth), path: `/dev/vg0/volume-${ID}`, sizeBytes: 1 << 30 });
const cfg = (o: Record<string, unknown> = {}) => LioConfig.parse({ targetIp: "192.0.2.10", ...o });
const ROOT = "/sys/kernel/config/target";
const SAVE = "/etc/rtslib-fb-target/saveconfig.json";

describe("LioTarget (recording runner)", () => {
  it("ships the configfs script verbatim and passes values only as arguments", () => {
    expect(LIO_SCRIPT).toBe(readFileSync(new URL("../src/lio-configfs.sh", import.meta.url), "utf8"));
    expect(LIO_SCRIPT).toContain("flock -w 120 9");
  });

  it("exports in ONE call: storage object, target, LUN 0, portal; provider_location in Cinder's LIO form", async () => {
    const r = new RecordingRunner();
    const model = await new LioTarget(cfg(), targetContext(r)).createExport(source(), { host: "h", multipath: false });
    expect(r.calls).toHaveLength(1);
    const [sh, c, script, name, root, save, op, ...args] = r.calls[0]!.argv;
    expect([sh, c, script === LIO_SCRIPT, name, root, save, op]).toEqual(["sh", "-c", true, "lio", ROOT, SAVE, "export"]);
    expect(args[0]).toBe(IQN);
    expect(args[1]).toBe(`/dev/vg0/volume-${ID}`);
    expect(args[2]).toBe(String(1 << 30));
    expect(args[3]).toMatch(/^[0-9a-f-]{36}$/);
    expect(args.slice(4, 6)).toEqual([IQN, "1"]);
    expect(args[6]).toMatch(/^[0-9a-f]{10}$/);
    expect(args.slice(7)).toEqual(["192.0.2.10:3260"]);
    expect(model.provider_location).toBe(`192.0.2.10:3260,${IQN} ${IQN} 0`);
    expect(model.provider_auth).toMatch(/^CHAP [2-9A-HJ-NP-Za-km-z]{20} [2-9A-HJ-NP-Za-km-z]{16}$/);
  });

  it("binds where told (port forward) while advertising targetIp:targetPort", async () => {
    const r = new RecordingRunner();
    const model = await new LioTarget(cfg({ targetIp: "127.0.0.1", targetPort: 13261, bindIp: "10.0.2.15", bindPort: 3260 }), targetContext(r)).createExport(source(), { host: "h", multipath: false });
    expect(r.calls[0]!.argv.slice(14)).toEqual(["10.0.2.15:3260"]);
    expect(model.provider_location).toBe(`127.0.0.1:13261,${IQN} ${IQN} 0`);
  });

  it("initializeConnection adds the ACL with CHAP on stdin, never in argv", async () => {
    const r = new RecordingRunner();
    const info = await new LioTarget(cfg(), targetContext(r)).initializeConnection(source("CHAP AAAAAAAAAAAAAAAAAAAA bbbbbbbbbbbbbbbb"), {
      host: "h",
      multipath: false,
      initiator: "iqn.1993-08.org.debian:01:abc",
    });
    const allow = r.calls[1]!;
    expect(allow.argv.slice(6, 10)).toEqual(["allow", IQN, "iqn.1993-08.org.debian:01:abc", "1"]);
    expect(allow.argv.join(" ")).not.toContain("bbbbbbbbbbbbbbbb");
    expect(allow.opts?.input).toBe("AAAAAAAAAAAAAAAAAAAA\nbbbbbbbbbbbbbbbb\n");
    expect(info.data).toMatchObject({ target_iqn: IQN, target_lun: 0, target_portal: "192.0.2.10:3260", auth_password: "bbbbbbbbbbbbbbbb" });
  });

  it("terminate removes one ACL (or all), remove drops target and backstore; no saveconfig when disabled", async () => {
    const r = new RecordingRunner();
    const t = new LioTarget(cfg({ saveFile: null }), targetContext(r));
    await t.terminateConnection(source(), { host: "h", multipath: false, initiator: "iqn.1993-08.org.debian:01:abc" });
    await t.terminateConnection(source(), undefined);
    await t.removeExport(source());
    expect(r.calls.map((c) => c.argv.slice(4))).toEqual([
      [ROOT, "", "deny", IQN, "iqn.1993-08.org.debian:01:abc"],
      [ROOT, "", "deny", IQN, "*"],
      [ROOT, "", "remove", IQN, IQN],
    ]);
  });

  it("refuses a connector without initiator and odd export paths before running anything", async () => {
    const r = new RecordingRunner();
    const t = new LioTarget(cfg(), targetContext(r));
    await expect(t.initializeConnection(source("CHAP AAAAAAAAAAAAAAAAAAAA bbbbbbbbbbbbbbbb"), { host: "h", multipath: false })).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    await expect(t.createExport({ ...source(), path: "/dev/x $(reboot)" }, { host: "h", multipath: false })).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    expect(r.calls).toEqual([]);
  });
});
