/**
 * LIO configuration survives a restart of the storage host: exports made by the LVM driver through
 * @cinderts/target-lio are cleared and restored exactly as Debian's rtslib-fb-targetctl service does at
 * shutdown and boot (`targetctl clear`, then `targetctl restore` of /etc/rtslib-fb-target/saveconfig.json), and
 * configfs — read here by the test's own script, not by the product's `show` — must hold the same target, LUN,
 * backing LV, unit serial, ACLs and CHAP credentials afterwards; a kernel login with the connection info then
 * reads what was written before. What terminate/remove took away must not come back.
 */
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Backend, Cinderts, ConnectionRecord, HostConnector } from "@cinderts/core";
import { runnerIo } from "@cinderts/testkit";
import { openThinLioHarness, prepareTesthost, removeVolumes, sshRunnerInstance, testhost, VG } from "./testhost.js";

const GiB = 1024 ** 3;
const OTHER_INITIATOR = "iqn.2004-10.com.cinderts:restart-other-host";

// One line per fact, straight from configfs: what LIO serves right now for this IQN.
const LIO_STATE = readFileSync(new URL("./lio-state.sh", import.meta.url), "utf8");

interface LioState {
  target?: string;
  enable?: string;
  authentication?: string;
  generateNodeAcls?: string;
  portals: string[];
  luns: { index: string; storageObject: string; device: string; serial: string }[];
  acls: Record<string, { userid: string; password: string; mapped: string }>;
}

describe.skipIf(!testhost)("LIO exports across a storage host restart (test host)", () => {
  const runner = testhost ? sshRunnerInstance() : undefined;
  const io = runner ? runnerIo(runner) : undefined;
  let ct: Cinderts;
  let backend: Backend;
  let connector: HostConnector;
  const volumes: string[] = [];

  const sh = (script: string, ...args: string[]) => runner!.run(["sh", "-c", script, "sh", ...args], { root: true, timeoutMs: 300_000 });

  async function lioState(iqn: string): Promise<LioState> {
    const out = (await sh(LIO_STATE, iqn)).stdout;
    const st: LioState = { portals: [], luns: [], acls: {} };
    for (const line of out.split("\n")) {
      const [kind, ...f] = line.split("|");
      if (kind === "target") st.target = f[0];
      else if (kind === "enable") st.enable = f[0];
      else if (kind === "authentication") st.authentication = f[0];
      else if (kind === "generate_node_acls") st.generateNodeAcls = f[0];
      else if (kind === "portal") st.portals.push(f[0]!);
      else if (kind === "lun") st.luns.push({ index: f[0]!, storageObject: f[1]!, device: f[2]!, serial: f[3]! });
      else if (kind === "acl") st.acls[f[0]!] = { userid: f[1]!, password: f[2]!, mapped: f[3]!.trim() };
    }
    return st;
  }

  /** Shutdown and boot of the storage host as far as LIO is concerned: the distribution unit's ExecStop, then ExecStart. */
  async function restartStorageHost(iqn: string): Promise<void> {
    await sh("systemctl stop rtslib-fb-targetctl.service");
    // The clear must really have emptied configfs, or the restore would prove nothing.
    expect(await lioState(iqn)).toEqual({ portals: [], luns: [], acls: {} });
    await sh("systemctl start rtslib-fb-targetctl.service && systemctl is-active rtslib-fb-targetctl.service");
  }

  beforeAll(async () => {
    await prepareTesthost(runner!);
    // The unit must be active for its ExecStop to run, as on a host that booted with it.
    await sh("systemctl is-active rtslib-fb-targetctl.service");
    ct = await openThinLioHarness();
    backend = ct.backend("contract");
    connector = ct.connectorFor("iscsi");
  }, 300_000);

  afterAll(async () => {
    await removeVolumes(backend, volumes);
    await ct?.close();
    await runner?.close?.();
  }, 600_000);

  it(
    "target, LUN on the right LV, ACLs and CHAP come back after targetctl clear + restore; the data reads back through a kernel login; what terminate and remove took away stays away",
    async () => {
      const vol = await backend.createVolume({ size: 1, name: "restart" });
      volumes.push(vol.id);
      const iqn = `iqn.2010-10.org.openstack:volume-${vol.id}`;
      const lv = `/dev/${VG}/volume-${vol.id}`;

      // Attach from the guest (export, ACL with CHAP, kernel login), write, and log out again: the export and ACL
      // stay, as on a storage host that goes down while its client is shut down.
      let conn: ConnectionRecord = await backend.attach(vol.id);
      const initiator = conn.connector.initiator!;
      const data = conn.conn_info!.data as Record<string, unknown>;
      expect(data).toMatchObject({ target_iqn: iqn, target_portal: "127.0.0.1:3260", target_lun: 0, auth_method: "CHAP" });
      const payload = Buffer.from(`written before the restart ${vol.id} `.repeat(200).slice(0, 4096));
      await io!.write(conn.attach_info!.path, GiB / 2, payload);
      conn = await backend.detach(conn.id);
      // A second host's connection, so that terminating the first one leaves the export in place.
      const other = await backend.connect({ volume_id: vol.id, connector: { host: "other-host", initiator: OTHER_INITIATOR, multipath: false } });

      const before = await lioState(iqn);
      expect(before).toMatchObject({ target: iqn, enable: "1", authentication: "1", generateNodeAcls: "0", portals: ["127.0.0.1:3260"] });
      expect(before.luns).toHaveLength(1);
      expect(before.luns[0]).toMatchObject({ index: "0", storageObject: iqn, device: lv });
      expect(before.luns[0]!.serial).toMatch(/^[0-9a-f-]{36}$/);
      const chap = { userid: data.auth_username, password: data.auth_password };
      expect(before.acls).toEqual({
        [initiator]: { ...chap, mapped: expect.stringMatching(/^lun_0->lun_0$/) },
        [OTHER_INITIATOR]: { ...chap, mapped: expect.stringMatching(/^lun_0->lun_0$/) },
      });

      await restartStorageHost(iqn);
      expect(await lioState(iqn)).toEqual(before);

      // Without CHAP the restored target refuses the guest; with the connection info it serves the data written before.
      const noAuth = Object.fromEntries(Object.entries(data).filter(([k]) => !k.startsWith("auth_")));
      await expect(connector.connectVolume({ ...conn.conn_info!, data: noAuth })).rejects.toThrow();
      const again = await connector.connectVolume(conn.conn_info!);
      expect(again.path).toMatch(/^\/dev\/sd[a-z]+$/);
      expect(await io!.size(again.path)).toBe(GiB);
      expect((await io!.read(again.path, GiB / 2, payload.length)).equals(payload)).toBe(true);
      await connector.disconnectVolume(conn.conn_info!, again);

      // terminate_connection for the guest: its ACL goes, and a restart does not bring it back.
      await backend.disconnect(conn.id);
      const afterTerminate = await lioState(iqn);
      expect(Object.keys(afterTerminate.acls)).toEqual([OTHER_INITIATOR]);
      await restartStorageHost(iqn);
      expect(await lioState(iqn)).toEqual(afterTerminate);

      // The last connection goes: target and storage object are removed, and stay removed after a restart.
      await backend.disconnect(other.id);
      expect(await lioState(iqn)).toEqual({ portals: [], luns: [], acls: {} });
      await restartStorageHost(iqn);
      const leftovers = await sh('ls -d /sys/kernel/config/target/core/*/"$1" 2>/dev/null || :', iqn);
      expect(leftovers.stdout.trim()).toBe("");
      expect(await lioState(iqn)).toEqual({ portals: [], luns: [], acls: {} });

      await backend.deleteVolume(vol.id);
      volumes.splice(volumes.indexOf(vol.id), 1);
    },
    1_200_000,
  );
});
