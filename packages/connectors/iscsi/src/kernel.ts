import { BackendError, isStorageError, type AttachInfo, type CommandRunner, type Logger, type RunOptions } from "@cinderts/core";
import { byPath, type IscsiPath, type ParsedConn } from "./conninfo.js";

// Waits on the host itself (one runner call instead of a poll per round trip); prints the resolved device.
const WAIT_DEVICE =
  'p=$1; n=$2; i=0; while [ "$i" -lt "$n" ]; do if [ -e "$p" ]; then readlink -f "$p"; exit 0; fi; sleep 0.2; i=$((i+1)); done; exit 1';
// Other LUNs of the same target still present on this host (after our device was deleted and udev settled).
const OTHER_LUNS =
  'udevadm settle -t 10 >/dev/null 2>&1 || :; for p in /dev/disk/by-path/ip-"$1"-iscsi-"$2"-lun-*; do if [ -e "$p" ] && [ "$p" != "$3" ]; then echo "$p"; fi; done';
// mp DISK: the dm-multipath map (dm-N) holding that disk, if any.
const MP_FN = `mp() { for h in /sys/block/"$1"/holders/dm-*; do if [ -e "$h" ]; then case $(cat "$h/dm/uuid" 2>/dev/null) in mpath-*) echo "\${h##*/}"; return 0 ;; esac; fi; done; return 1; }`;
// The dm-multipath map holding these SCSI disks: "dm-N JOINED" once every disk is in it (or, when the wait runs out,
// the map the first disk is in). multipathd's default find_multipaths "strict" only builds maps for WWIDs it already
// knows, so after the first miss it is told, as os-brick does: `multipath -a` (remember the WWID) and
// `multipathd add path` for each disk not yet in a map.
const MPATH_FORM = `n=$1; shift
${MP_FN}
i=0 told=
while :; do
  dm=$(mp "$1") || dm=
  joined=0
  if [ -n "$dm" ]; then for d in "$@"; do if [ "$(mp "$d")" = "$dm" ]; then joined=$((joined+1)); fi; done; fi
  if [ -n "$dm" ] && [ "$joined" -eq "$#" ]; then echo "$dm $joined"; exit 0; fi
  if [ -z "$told" ]; then
    told=1
    multipath -a "/dev/$1" >/dev/null 2>&1 || :
    for d in "$@"; do mp "$d" >/dev/null || multipathd add path "$d" >/dev/null 2>&1 || :; done
    continue
  fi
  i=$((i+1))
  if [ "$i" -ge "$n" ]; then if [ -n "$dm" ]; then echo "$dm $joined"; exit 0; fi; exit 1; fi
  sleep 0.2
done`;
// The multipath maps (dm-N) holding the disks behind these by-path links, found afresh: after a reboot the recorded
// dm-N may name another map.
const MPATH_OF = `${MP_FN}
for p in "$@"; do
  [ -e "$p" ] || continue
  d=$(readlink -f "$p"); mp "\${d##*/}" || :
done | sort -u`;
const MPATH_WAIT_MS = 10_000;
const SD = /^sd[a-z]+$/;
const DM = /^dm-\d+$/;

export interface KernelHandle {
  paths: IscsiPath[];
  /** sdX per path, in paths order ("" when that path did not log in). */
  devices: string[];
  multipath?: string;
}

/** open-iscsi through iscsiadm: the steps and exit codes follow os-brick's ISCSIConnector. */
export class KernelInitiator {
  constructor(
    private readonly runner: CommandRunner,
    private readonly log: Logger,
    private readonly o: { root: boolean; deviceTimeoutMs: number; multipath: boolean },
  ) {}

  private run(argv: string[], opts: RunOptions = {}) {
    return this.runner.run(argv, { root: this.o.root, ...opts });
  }

  private node(p: IscsiPath, ...rest: string[]): string[] {
    return ["iscsiadm", "-m", "node", "-T", p.iqn, "-p", p.portal, ...rest];
  }

  /** `iscsiadm -m session` lines: `tcp: [sid] ip:port,tpgt iqn (non-flash)`. */
  async sessions(): Promise<{ sid: string; portal: string; iqn: string }[]> {
    const r = await this.run(["iscsiadm", "-m", "session"], { okExitCodes: [0, 21] });
    const out: { sid: string; portal: string; iqn: string }[] = [];
    for (const line of r.stdout.split("\n")) {
      const m = /^(?:tcp|iser): \[(\d+)\] (\S+),\d+ (\S+)/.exec(line.trim());
      if (m) out.push({ sid: m[1]!, portal: m[2]!, iqn: m[3]! });
    }
    return out;
  }

  async multipathAvailable(): Promise<boolean> {
    try {
      await this.run(["multipathd", "show", "status"]);
      return true;
    } catch {
      return false;
    }
  }

  private async loginPath(p: IscsiPath, conn: ParsedConn): Promise<string> {
    const show = await this.run(this.node(p), { okExitCodes: [0, 21, 255] });
    if (show.exitCode !== 0) await this.run(this.node(p, "--interface", "default", "--op", "new"));
    if (conn.chap) {
      const secrets = [conn.chap.password];
      await this.run(this.node(p, "--op", "update", "-n", "node.session.auth.authmethod", "-v", "CHAP"));
      await this.run(this.node(p, "--op", "update", "-n", "node.session.auth.username", "-v", conn.chap.user));
      await this.run(this.node(p, "--op", "update", "-n", "node.session.auth.password", "-v", conn.chap.password), { secrets });
    }
    const live = (await this.sessions()).some((s) => s.iqn === p.iqn && s.portal.toLowerCase() === p.portal.toLowerCase());
    if (!live) {
      await this.run(this.node(p, "--login"), { okExitCodes: [0, 15] });
      await this.run(this.node(p, "--op", "update", "-n", "node.startup", "-v", "automatic"));
    }
    const tries = String(Math.ceil(this.o.deviceTimeoutMs / 200));
    let r = await this.run(["sh", "-c", WAIT_DEVICE, "wait", byPath(p), String(Math.ceil(Number(tries) / 2))], { okExitCodes: [0, 1] });
    if (r.exitCode !== 0) {
      // The LUN may have been mapped after the session started (or udev missed it): rescan once, wait again.
      await this.run(this.node(p, "--rescan"), { okExitCodes: [0, 21] });
      r = await this.run(["sh", "-c", WAIT_DEVICE, "wait", byPath(p), String(Math.ceil(Number(tries) / 2))], { okExitCodes: [0, 1] });
    }
    const dev = r.stdout.trim().replace(/^\/dev\//, "");
    if (r.exitCode !== 0 || !SD.test(dev)) {
      throw new BackendError(`logged in to ${p.iqn} at ${p.portal} but LUN ${p.lun} did not appear as a disk`, { retryable: true });
    }
    return dev;
  }

  async connect(conn: ParsedConn, host: string): Promise<AttachInfo> {
    const wantMultipath = this.o.multipath && conn.paths.length > 1 && (await this.multipathAvailable());
    const devices: string[] = [];
    const errors: unknown[] = [];
    for (const p of conn.paths) {
      try {
        devices.push(await this.loginPath(p, conn));
        if (!wantMultipath) break;
      } catch (e) {
        devices.push("");
        errors.push(e);
        this.log.warn("iSCSI path failed", { portal: p.portal, iqn: p.iqn, error: e });
        await this.logoutIfUnused(p).catch(() => undefined);
      }
    }
    const first = devices.find((d) => d);
    if (!first) {
      throw new BackendError(`could not attach ${conn.paths[0]?.iqn}: every portal failed`, { cause: errors[0], data: { portals: conn.paths.map((p) => p.portal) } });
    }
    const handle: KernelHandle = { paths: conn.paths.slice(0, devices.length), devices };
    let path = `/dev/${first}`;
    if (wantMultipath) {
      const disks = devices.filter((d) => d);
      const r = await this.run(["sh", "-c", MPATH_FORM, "mpath", String(MPATH_WAIT_MS / 200), ...disks], { okExitCodes: [0, 1] });
      const [dm, joined] = r.stdout.trim().split(" ");
      if (r.exitCode === 0 && dm && DM.test(dm)) {
        handle.multipath = dm;
        path = `/dev/${dm}`;
        if (Number(joined) < disks.length) this.log.warn("multipath map formed without every path", { map: dm, paths: joined, disks });
      } else this.log.warn("multipath requested but no dm device formed; using a single path", { device: first });
    }
    return { connector: "iscsi", method: "kernel", path, host, handle: handle as unknown as Record<string, unknown> };
  }

  /** The multipath maps holding this attachment's disks now (by-path, not the recorded names). */
  private async multipathMaps(handle: KernelHandle): Promise<string[]> {
    const r = await this.run(["sh", "-c", MPATH_OF, "mpath-of", ...handle.paths.map(byPath)]);
    return r.stdout.split("\n").map((l) => l.trim()).filter((l) => DM.test(l));
  }

  private async currentDevice(p: IscsiPath): Promise<string | undefined> {
    const r = await this.run(["sh", "-c", WAIT_DEVICE, "wait", byPath(p), "1"], { okExitCodes: [0, 1] });
    const dev = r.stdout.trim().replace(/^\/dev\//, "");
    return r.exitCode === 0 && SD.test(dev) ? dev : undefined;
  }

  async disconnect(handle: KernelHandle, force: boolean): Promise<void> {
    if (handle.multipath) {
      // `multipath -f` takes a map name or a device node: a bare "dm-N" is read as a map name and not found.
      for (const dm of await this.multipathMaps(handle)) {
        await this.run(["multipath", "-f", `/dev/${dm}`]).catch((e) => {
          if (!force) throw e;
          this.log.warn("multipath flush failed; going on (force)", { map: dm, error: e });
        });
      }
    }
    for (const p of handle.paths) {
      // By-path, not the recorded sdX: after a reboot the same name may be another disk.
      const dev = await this.currentDevice(p);
      if (dev) {
        try {
          await this.run(["blockdev", "--flushbufs", `/dev/${dev}`]);
        } catch (e) {
          if (!force) throw e;
        }
        await this.run(["tee", "-a", `/sys/block/${dev}/device/delete`], { input: "1" });
      }
      await this.logoutIfUnused(p);
    }
  }

  /** Log out only when no other LUN of this target is still in use on the host. */
  async logoutIfUnused(p: IscsiPath): Promise<void> {
    const others = await this.run(["sh", "-c", OTHER_LUNS, "luns", p.portal.replace(/^\[([^\]]+)\]/, "$1"), p.iqn, byPath(p)]);
    if (others.stdout.trim()) {
      this.log.info("keeping the iSCSI session: other LUNs of the target are in use", { iqn: p.iqn, luns: others.stdout.trim().split("\n") });
      return;
    }
    await this.run(this.node(p, "--op", "update", "-n", "node.startup", "-v", "manual"), { okExitCodes: [0, 21] });
    await this.run(this.node(p, "--logout"), { okExitCodes: [0, 21] });
    await this.run(this.node(p, "--op", "delete"), { okExitCodes: [0, 21] });
  }

  async extend(handle: KernelHandle): Promise<number> {
    for (const p of handle.paths) await this.run(this.node(p, "--rescan"), { okExitCodes: [0, 21] });
    let dev: string | undefined;
    if (handle.multipath) {
      dev = (await this.multipathMaps(handle))[0];
      if (!dev) throw new BackendError("the attached multipath device is gone");
      // The map keeps its old size until multipathd reloads it over the rescanned paths.
      await this.run(["multipathd", "resize", "map", dev]).catch((e) => this.log.warn("multipathd resize failed", { map: dev, error: e }));
    } else dev = await this.currentDevice(handle.paths[0]!);
    if (!dev) throw new BackendError("the attached iSCSI disk is gone");
    const r = await this.run(["blockdev", "--getsize64", `/dev/${dev}`]);
    return Number(r.stdout.trim());
  }

  async attached(handle: KernelHandle): Promise<boolean> {
    try {
      return (await this.currentDevice(handle.paths[0]!)) !== undefined;
    } catch (e) {
      if (isStorageError(e)) return false;
      throw e;
    }
  }
}
