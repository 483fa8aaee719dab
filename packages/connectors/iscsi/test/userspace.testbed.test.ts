/**
 * User-space attach on this machine: tgt testbed target (file-backed LUN) + qemu-storage-daemon FUSE export.
 */
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it, beforeAll, afterAll } from "vitest";
import { newId, type ConnectionInfo, type ExportSource, type VolumeRecord } from "@cinderts/core";
import { connectorContract, testbedEnv } from "@cinderts/testkit";
import { parsePortal } from "@cinderts/target-iscsi";
import { TgtConfig, TgtTarget } from "@cinderts/target-tgt";
import { IscsiConnectorConfig } from "../src/config.js";
import { IscsiConnector } from "../src/connector.js";
import { LocalTestRunner, targetContext } from "./support.js";

const env = testbedEnv("tgt", ["TGT_CONTROL_PORT", "TGT_PORTAL", "TGT_CONF_DIR", "TGT_LUN_DIR"]);

function vol(id: string, auth: string | null = null): VolumeRecord {
  const now = new Date().toISOString();
  return {
    id, version: 1, backend: "tgt", name: null, created_at: now, updated_at: now, metadata: {}, intent: null, status_reason: null,
    provider_location: null, provider_id: null, provider_auth: auth, provider_geometry: null, size: 1, status: "available",
    source_volume_id: null, snapshot_id: null,
  };
}

interface Setup {
  target: TgtTarget;
  source: ExportSource;
  dir: string;
  connector: (o?: Record<string, unknown>) => IscsiConnector;
}

async function exported(): Promise<Setup> {
  const portal = parsePortal(env!.TGT_PORTAL);
  const runner = new LocalTestRunner();
  const target = new TgtTarget(
    TgtConfig.parse({ targetIp: portal.ip, targetPort: portal.port, controlPort: Number(env!.TGT_CONTROL_PORT), confDir: env!.TGT_CONF_DIR }),
    targetContext(runner),
  );
  const dir = mkdtempSync(join(env!.TGT_LUN_DIR, "c-"));
  const file = join(dir, "lun.img");
  writeFileSync(file, "");
  truncateSync(file, 32 << 20);
  let source: ExportSource = { volume: vol(newId()), path: file, sizeBytes: 32 << 20 };
  const model = await target.createExport(source, { host: "h", multipath: false });
  source = { ...source, volume: { ...source.volume, ...model } as VolumeRecord };
  const connector = (o: Record<string, unknown> = {}) =>
    new IscsiConnector(IscsiConnectorConfig.parse({ method: "userspace", ...o }), targetContext(runner, join(dir, "state")));
  return { target, source, dir, connector };
}

describe.skipIf(!env)("iSCSI connector, user-space (qemu-storage-daemon + FUSE) against tgt", () => {
  connectorContract("iscsi userspace + tgt", async () => {
    const s = await exported();
    const connector = s.connector();
    const props = await connector.getConnectorProperties();
    const connInfo: ConnectionInfo = await s.target.initializeConnection(s.source, { host: "h", multipath: false, initiator: props.initiator });
    return {
      connector,
      connInfo,
      sizeBytes: 32 << 20,
      grow: async () => {
        truncateSync(s.source.path, 48 << 20);
        await s.target.extendExport({ ...s.source, sizeBytes: 48 << 20 });
        return 48 << 20;
      },
      // a fresh instance, as after a process restart: only AttachInfo and the state dir carry over
      restarted: () => s.connector(),
      cleanup: async () => {
        await s.target.removeExport(s.source);
        rmSync(s.dir, { recursive: true, force: true });
      },
    };
  });

  let s: Setup;
  beforeAll(async () => {
    s = await exported();
  });
  afterAll(async () => {
    await s?.target.removeExport(s.source);
    if (s) rmSync(s.dir, { recursive: true, force: true });
  });

  it("keeps a stable generated initiator IQN in the state dir", async () => {
    const a = await s.connector().getConnectorProperties();
    const b = await s.connector().getConnectorProperties();
    expect(a.initiator).toMatch(/^iqn\.2004-10\.com\.cinderts:/);
    expect(b.initiator).toBe(a.initiator);
    expect(a).toMatchObject({ iscsi_method: "userspace", multipath_supported: false });
  });

  it("fails to attach with a wrong CHAP secret, and refuses an initiator without an ACL", async () => {
    const connector = s.connector();
    const initiator = (await connector.getConnectorProperties()).initiator;
    const info = await s.target.initializeConnection(s.source, { host: "h", multipath: false, initiator });
    const wrong = { ...info, data: { ...info.data, auth_password: "NotTheSecret1234" } };
    const err = await connector.connectVolume(wrong).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "BACKEND_ERROR" });
    expect(JSON.stringify((err as Error).cause ?? "")).not.toContain("NotTheSecret1234");
    expect(String((err as { cause?: { message?: string } }).cause?.message)).toMatch(/Authentication failure/);

    const stranger = s.connector({ initiatorName: "iqn.2024-01.test.cinderts:stranger" });
    const err2 = await stranger.connectVolume(info).catch((e: unknown) => e);
    expect(String((err2 as { cause?: { message?: string } }).cause?.message)).toMatch(/Target not found/);

    // the right initiator with the right secret still works
    const ok = await connector.connectVolume(info);
    expect(await connector.checkAttached(ok)).toBe(true);
    await connector.disconnectVolume(info, ok);
  });
});
