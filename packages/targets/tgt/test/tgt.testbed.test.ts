/**
 * Against the real tgtd of tooling/testbeds/tgt (start.sh; env from /tmp/cinderts-tgt/env).
 * The initiator side is libiscsi's tools, independent of our connector.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, truncateSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newId, type ExportSource, type VolumeRecord } from "@cinderts/core";
import { testbedEnv } from "@cinderts/testkit";
import { TgtConfig } from "../src/config.js";
import { TgtTarget } from "../src/target.js";
import { LocalTestRunner, targetContext } from "./support.js";

const exec = promisify(execFile);
const env = testbedEnv("tgt", ["TGT_CONTROL_PORT", "TGT_PORTAL", "TGT_CONF_DIR", "TGT_LUN_DIR"]);
const HOST1 = "iqn.2024-01.test.cinderts:host1";
const HOST2 = "iqn.2024-01.test.cinderts:host2";

function vol(id: string, auth: string | null = null): VolumeRecord {
  const now = new Date().toISOString();
  return {
    id, version: 1, backend: "tgt", name: null, created_at: now, updated_at: now, metadata: {}, intent: null, status_reason: null,
    provider_location: null, provider_id: null, provider_auth: auth, provider_geometry: null, size: 1, status: "available",
    source_volume_id: null, snapshot_id: null,
  };
}

/** iscsi-inq / iscsi-readcapacity16 exit code and output, never throwing. */
async function libiscsi(tool: string, args: string[]): Promise<{ code: number; out: string }> {
  try {
    const r = await exec(tool, args, { timeout: 20_000 });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === "number" ? err.code : -1, out: `${err.stdout ?? ""}${err.stderr ?? ""}` };
  }
}

// This file restarts tgtd, so it runs its own instance of the testbed (own state dir, control port and portal)
// and never disturbs tests that use the shared one at the same time.
const PRIVATE = { TGT_STATE_DIR: "/tmp/cinderts-tgt-restart", TGT_CONTROL_PORT: "14", TGT_PORT: "13270" };
const testbed = new URL("../../../../tooling/testbeds/tgt/", import.meta.url).pathname;
const bed = (script: string, extra: Record<string, string> = {}) =>
  exec("bash", [join(testbed, script)], { env: { ...process.env, ...PRIVATE, ...extra } });

describe.skipIf(!env)("TgtTarget against the tgt testbed", () => {
  const portal = { ip: "127.0.0.1", port: Number(PRIVATE.TGT_PORT) };
  const cfg = TgtConfig.parse({
    targetIp: portal.ip,
    targetPort: portal.port,
    controlPort: Number(PRIVATE.TGT_CONTROL_PORT),
    confDir: `${PRIVATE.TGT_STATE_DIR}/conf.d`,
  });
  const lunDir = `${PRIVATE.TGT_STATE_DIR}/luns`;
  const target = new TgtTarget(cfg, targetContext(new LocalTestRunner()));
  let dir: string;
  let source: ExportSource;

  beforeAll(async () => {
    await bed("start.sh");
    dir = mkdtempSync(join(lunDir, "t-"));
    const file = join(dir, "lun.img");
    writeFileSync(file, "");
    truncateSync(file, 64 << 20);
    source = { volume: vol(newId()), path: file, sizeBytes: 64 << 20 };
    await target.setup();
  });
  afterAll(async () => {
    if (source) await target.removeExport(source).catch(() => undefined);
    await bed("stop.sh", { PURGE: "1" });
  });

  const url = (user: string, pass: string, lun = 1) =>
    `iscsi://${user}%${pass}@${portal.ip}:${portal.port}/${cfg.iqnPrefix}volume-${source.volume.id}/${lun}`;

  it("exports with CHAP, admits only the initialized initiator, refuses a wrong secret, follows extend, persists, removes", async () => {
    const model = await target.createExport(source, { host: "h", multipath: false });
    const [, user, pass] = model.provider_auth!.split(" ") as [string, string, string];
    source = { ...source, volume: vol(source.volume.id, model.provider_auth!) };
    expect(model.provider_location).toMatch(new RegExp(`^${portal.ip}:${portal.port},\\d+ ${cfg.iqnPrefix}volume-${source.volume.id} 1$`));
    // idempotent
    expect((await target.createExport(source, { host: "h", multipath: false })).provider_location).toBe(model.provider_location);

    // no ACL yet: nobody gets in, even with the right secret
    expect((await libiscsi("iscsi-inq", ["-i", HOST1, url(user, pass)])).code).not.toBe(0);

    const info = await target.initializeConnection(source, { host: "h", initiator: HOST1, multipath: false });
    expect(info.data).toMatchObject({ target_portal: `${portal.ip}:${portal.port}`, target_lun: 1, auth_username: user, auth_password: pass });
    const ok = await libiscsi("iscsi-readcapacity16", ["-i", HOST1, url(user, pass)]);
    expect(ok).toMatchObject({ code: 0 });
    expect(ok.out).toContain(`Total size:${64 << 20}`);

    // CHAP: a wrong secret fails to log in
    const wrong = await libiscsi("iscsi-inq", ["-i", HOST1, url(user, "WrongSecret12345")]);
    expect(wrong.code).not.toBe(0);
    expect(wrong.out).toMatch(/Authentication failure/);
    // ACL: another initiator is refused even with the right secret
    const other = await libiscsi("iscsi-inq", ["-i", HOST2, url(user, pass)]);
    expect(other.code).not.toBe(0);
    expect(other.out).toMatch(/Target not found/);

    // extend: tgt only sees the new size after the LUN is re-created
    truncateSync(source.path, 128 << 20);
    await target.extendExport({ ...source, sizeBytes: 128 << 20 });
    expect((await libiscsi("iscsi-readcapacity16", ["-i", HOST1, url(user, pass)])).out).toContain(`Total size:${128 << 20}`);

    // persistence: the fragment restores the target (ACL and CHAP included) on a tgtd restart
    const fragment = join(cfg.confDir!, `volume-${source.volume.id}.conf`);
    expect(existsSync(fragment)).toBe(true);
    await bed("stop.sh");
    await bed("start.sh");
    expect((await libiscsi("iscsi-readcapacity16", ["-i", HOST1, url(user, pass)])).code).toBe(0);
    expect((await libiscsi("iscsi-inq", ["-i", HOST2, url(user, pass)])).code).not.toBe(0);

    // terminate removes this initiator's ACL
    await target.terminateConnection(source, { host: "h", initiator: HOST1, multipath: false });
    expect((await libiscsi("iscsi-inq", ["-i", HOST1, url(user, pass)])).code).not.toBe(0);

    await target.removeExport(source);
    await target.removeExport(source); // idempotent
    expect(existsSync(fragment)).toBe(false);
    expect((await target.targets()).has(`${cfg.iqnPrefix}volume-${source.volume.id}`)).toBe(false);
  });

  it("allocates distinct tids under concurrency", async () => {
    const sources = Array.from({ length: 6 }, () => {
      const f = join(dir, `c-${newId()}.img`);
      writeFileSync(f, "");
      truncateSync(f, 1 << 20);
      return { volume: vol(newId()), path: f, sizeBytes: 1 << 20 } satisfies ExportSource;
    });
    // separate TgtTarget instances = separate lock managers, as separate processes would have
    const targets = sources.map(() => new TgtTarget(cfg, targetContext(new LocalTestRunner())));
    const models = await Promise.all(sources.map((s, i) => targets[i]!.createExport(s, { host: "h", multipath: false })));
    const tids = models.map((m) => m.provider_location!.split(",")[1]!.split(" ")[0]);
    expect(new Set(tids).size).toBe(sources.length);
    const live = await target.targets();
    for (const s of sources) expect(live.get(`${cfg.iqnPrefix}volume-${s.volume.id}`)?.luns.find((l) => l.lun === 1)?.path).toBe(s.path);
    await Promise.all(sources.map((s) => target.removeExport(s)));
  });
});
