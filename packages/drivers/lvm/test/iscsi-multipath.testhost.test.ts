/**
 * dm-multipath through @cinderts/connector-iscsi on the test host: LIO exports the volume on two portals
 * (127.0.0.1:3260 and 127.0.0.1:3261, `secondaryPortals`), the connector (multipath: true) logs in on both inside
 * the guest and attaches the dm map that multipathd builds over the two SCSI disks. multipathd runs with Debian's
 * stock configuration (find_multipaths "strict"), installed at test time (see ensureGuestMultipath).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Backend, Cinderts } from "@cinderts/core";
import { runnerIo } from "@cinderts/testkit";
import { ensureGuestMultipath, openThinLioHarness, prepareTesthost, sshRunnerInstance, stopGuestMultipath, testhost } from "./testhost.js";

const GiB = 1024 ** 3;
const PORTALS = ["127.0.0.1:3260", "127.0.0.1:3261"];

// For a dm device: its dm uuid, its slaves, and for each slave the by-path links that resolve to it.
const DM_INFO = String.raw`
d=$1
echo "uuid|$(cat /sys/block/$d/dm/uuid)"
for s in /sys/block/$d/slaves/*; do
  n=$(basename "$s")
  for l in /dev/disk/by-path/*; do if [ "$(readlink -f "$l")" = "/dev/$n" ]; then echo "slave|$n|$(basename "$l")|$(blockdev --getsize64 /dev/$n)"; fi; done
done
`;
// What is left on the host of a target: sessions, by-path links, SCSI disks and multipath maps with that WWID.
const LEFTOVERS = String.raw`
iqn=$1 wwid=$2
iscsiadm -m session 2>/dev/null | grep -F " $iqn " | sed 's/^/session|/'
ls /dev/disk/by-path/ | grep -F -- "-iscsi-$iqn-" | sed 's/^/link|/'
for w in /sys/block/sd*/device/wwid; do if [ -e "$w" ] && [ "$(cat "$w")" = "naa.$wwid" ]; then echo "disk|$w"; fi; done
for u in /sys/block/dm-*/dm/uuid; do if [ -e "$u" ] && [ "$(cat "$u")" = "mpath-3$wwid" ]; then echo "map|$u"; fi; done
:
`;

describe.skipIf(!testhost)("iSCSI multipath on the test host (LIO on two portals, multipathd)", () => {
  const runner = testhost ? sshRunnerInstance() : undefined;
  const io = runner ? runnerIo(runner) : undefined;
  let ct: Cinderts;
  let backend: Backend;
  const volumes: string[] = [];
  const sh = (script: string, ...args: string[]) => runner!.run(["sh", "-c", script, "sh", ...args], { root: true, timeoutMs: 300_000 });

  beforeAll(async () => {
    await prepareTesthost(runner!);
    await ensureGuestMultipath(runner!);
    ct = await openThinLioHarness({ lio: { secondaryPortals: ["127.0.0.1:3261"] }, iscsi: { multipath: true } });
    backend = ct.backend("contract");
  }, 900_000);

  afterAll(async () => {
    for (const id of volumes) {
      await backend.detachVolume(id, { force: true }).catch(() => undefined);
      await backend.deleteVolume(id).catch(() => undefined);
    }
    await ct?.close();
    if (runner) await stopGuestMultipath(runner);
    await runner?.close?.();
  }, 600_000);

  it(
    "attach gives /dev/dm-N over one sd per portal; data reads back through either path; extend while attached grows the map; detach flushes the map and logs out both sessions",
    async () => {
      const vol = await backend.createVolume({ size: 1, name: "multipath" });
      volumes.push(vol.id);
      const iqn = `iqn.2010-10.org.openstack:volume-${vol.id}`;

      const conn = await backend.attach(vol.id);
      expect(conn.connector).toMatchObject({ multipath: true, multipath_supported: true });
      expect(conn.conn_info!.data).toMatchObject({ target_portals: PORTALS, target_iqns: [iqn, iqn], target_luns: [0, 0], auth_method: "CHAP" });
      const path = conn.attach_info!.path;
      const dm = /^\/dev\/(dm-\d+)$/.exec(path)?.[1];
      expect(dm, `attached path ${path}`).toBeDefined();

      // A multipath map whose two slaves are the LUN seen through each portal.
      const info = (await sh(DM_INFO, dm!)).stdout.trim().split("\n").map((l) => l.split("|"));
      const uuid = info.find((f) => f[0] === "uuid")?.[1] ?? "";
      expect(uuid).toMatch(/^mpath-36001405[0-9a-f]{25}$/);
      const wwid = uuid.slice("mpath-3".length);
      const slaves = info.filter((f) => f[0] === "slave");
      expect(slaves.map((f) => f[2]).sort()).toEqual(PORTALS.map((p) => `ip-${p}-iscsi-${iqn}-lun-0`));
      expect(new Set(slaves.map((f) => f[1])).size).toBe(2);
      const sessions = (await runner!.run(["iscsiadm", "-m", "session"], { root: true })).stdout;
      expect(PORTALS.map((p) => sessions.includes(`${p},1 ${iqn} `))).toEqual([true, true]);

      // Written through the map, read back through the map and through each path on its own.
      const payload = Buffer.from(`multipath ${vol.id} `.repeat(300).slice(0, 8192));
      await io!.write(path, 3 * 4096, payload);
      expect((await io!.read(path, 3 * 4096, payload.length)).equals(payload)).toBe(true);
      for (const [, sd] of slaves) expect((await io!.read(`/dev/${sd}`, 3 * 4096, payload.length)).equals(payload)).toBe(true);

      // Extend while attached: the LV, both paths and the map follow.
      await backend.extendVolume({ id: vol.id, size: 2 });
      expect(await io!.size(path)).toBe(2 * GiB);
      const grown = (await sh(DM_INFO, dm!)).stdout.trim().split("\n").map((l) => l.split("|")).filter((f) => f[0] === "slave");
      expect(grown.map((f) => Number(f[3]))).toEqual([2 * GiB, 2 * GiB]);
      expect((await io!.read(path, 3 * 4096, payload.length)).equals(payload)).toBe(true);

      expect((await sh(LEFTOVERS, iqn, wwid)).stdout.trim().split("\n").length).toBe(2 + 2 + 2 + 1);
      await backend.detachVolume(vol.id);
      expect((await sh(LEFTOVERS, iqn, wwid)).stdout.trim()).toBe("");

      await backend.deleteVolume(vol.id);
      volumes.splice(volumes.indexOf(vol.id), 1);
    },
    1_200_000,
  );
});
