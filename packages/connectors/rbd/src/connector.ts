import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { z } from "@cinderts/core";
import {
  BackendError,
  InvalidArgumentError,
  TimeoutError,
  UnsupportedError,
  parseInput,
  type AttachInfo,
  type ConnectionInfo,
  type ConnectorContext,
  type ConnectorProps,
  type HostConnector,
} from "@cinderts/core";
import type { RbdConnectorConfigParsed } from "./config.js";
import { qmp } from "./qmp.js";

export type AttachMethod = "krbd" | "rbd-nbd" | "qemu-storage-daemon";

const cephName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/);

/** The connection info the RBD driver returns (Cinder's shape; see the reference). */
export const RbdConnectionData = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*\/[A-Za-z0-9][A-Za-z0-9_.-]*$/, "must be <pool>/<image>"),
    hosts: z.array(z.string().regex(/^[0-9A-Za-z.:-]+$/, "must be a monitor address")).min(1),
    ports: z.array(z.union([z.string().regex(/^\d{1,5}$/), z.number().int()])).min(1),
    cluster_name: cephName.default("ceph"),
    auth_enabled: z.boolean().default(true),
    auth_username: cephName.nullable().optional(),
    keyring: z.string().optional(),
    volume_id: z.string().optional(),
  })
  .loose();
export type RbdConnectionData = z.output<typeof RbdConnectionData>;

/** What detach needs, persisted in AttachInfo.handle (no secrets: the keyring stays in the 0600 conf file). */
interface Handle {
  dir: string;
  conf: string;
  pool: string;
  image: string;
  user: string;
  device?: string;
  pid?: number;
  pidfile?: string;
  qmp?: string;
  mountpoint?: string;
  node?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function onPath(bin: string): boolean {
  if (bin.includes("/")) return existsSync(bin);
  return (process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin").split(delimiter).some((d) => d && existsSync(join(d, bin)));
}

/** /proc/self/mountinfo escapes blanks and backslashes as octal. */
const unescapeMount = (s: string) => s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));

async function isMounted(path: string): Promise<boolean> {
  const text = await readFile("/proc/self/mountinfo", "utf8");
  return text.split("\n").some((l) => {
    const f = l.split(" ");
    return f[4] !== undefined && unescapeMount(f[4]) === path;
  });
}

/** Is `pid` alive and is it the process we started (its command line names our own file)? */
async function isOurProcess(pid: number | undefined, marker: string): Promise<boolean> {
  if (!pid || !Number.isInteger(pid) || pid <= 1) return false;
  try {
    const cmd = await readFile(`/proc/${pid}/cmdline`, "utf8");
    return cmd.includes(marker);
  } catch {
    return false;
  }
}

/**
 * Attaches RBD images on this host. Kernel rbd and rbd-nbd give a block device; qemu-storage-daemon (librbd in
 * user space) serves the image as a regular file through a FUSE export, which needs no kernel module besides
 * fuse. Every attach gets its own directory under the connector's state dir with a generated ceph.conf (mode
 * 0600, keyring inside when the connection info carries one), so detach after a restart finds everything from
 * AttachInfo alone.
 */
export class RbdConnector implements HostConnector {
  readonly protocols = ["rbd"] as const;

  constructor(
    private readonly cfg: RbdConnectorConfigParsed,
    private readonly ctx: ConnectorContext,
  ) {}

  async getConnectorProperties(): Promise<Partial<ConnectorProps>> {
    return {};
  }

  /** Attach methods usable on this host, best first. */
  availableMethods(): AttachMethod[] {
    const m: AttachMethod[] = [];
    if (existsSync("/sys/bus/rbd") && onPath("rbd")) m.push("krbd");
    if ((existsSync("/sys/module/nbd") || existsSync("/dev/nbd0")) && onPath("rbd-nbd")) m.push("rbd-nbd");
    if (existsSync("/dev/fuse") && onPath(this.cfg.qemuStorageDaemon)) m.push("qemu-storage-daemon");
    return m;
  }

  chooseMethod(): AttachMethod {
    const available = this.availableMethods();
    if (this.cfg.method !== "auto") {
      const want: AttachMethod = this.cfg.method === "nbd" ? "rbd-nbd" : this.cfg.method;
      if (!available.includes(want)) {
        throw new UnsupportedError(`RBD attach method ${want} is not available on this host (available: ${available.join(", ") || "none"})`);
      }
      return want;
    }
    const m = available[0];
    if (!m) {
      throw new UnsupportedError(
        "no RBD attach method on this host: needs /sys/bus/rbd (kernel rbd), NBD + rbd-nbd, or /dev/fuse + qemu-storage-daemon (Debian qemu-system-common, qemu-block-extra)",
      );
    }
    return m;
  }

  private parse(connInfo: ConnectionInfo): RbdConnectionData {
    if (connInfo.driver_volume_type !== "rbd") {
      throw new InvalidArgumentError(`the rbd connector cannot attach ${connInfo.driver_volume_type} connections`);
    }
    const d = parseInput(RbdConnectionData, connInfo.data, "rbd connection info");
    if (d.hosts.length !== d.ports.length) throw new InvalidArgumentError("rbd connection info: hosts and ports differ in length");
    return d;
  }

  private monHost(d: RbdConnectionData): string {
    return d.hosts.map((h, i) => `${h.includes(":") ? `[${h}]` : h}:${String(d.ports[i])}`).join(",");
  }

  /** The per-attach directory and its ceph.conf (os-brick's temporary conf: mon_host + keyring). */
  private async prepare(d: RbdConnectionData): Promise<Handle> {
    const [pool, image] = d.name.split("/") as [string, string];
    const user = d.auth_username ?? "admin";
    const dir = join(this.ctx.stateDir, `${(d.volume_id ?? image).replace(/[^A-Za-z0-9_-]/g, "_")}-${randomBytes(4).toString("hex")}`);
    if (/[,\s]/.test(dir)) throw new InvalidArgumentError(`connector state dir ${this.ctx.stateDir} must not contain commas or blanks`);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmod(dir, 0o700);
    const lines = ["[global]", `mon_host = ${this.monHost(d)}`];
    if (!d.auth_enabled) lines.push("auth_client_required = none");
    // one admin socket / log per client process is clutter nobody reads
    lines.push("[client]", "admin_socket =", "log_file =");
    if (d.auth_enabled && d.keyring === undefined) {
      lines.push(`keyring = ${this.cfg.keyring ?? `/etc/ceph/${d.cluster_name}.client.${user}.keyring`}`);
    }
    let text = lines.join("\n") + "\n";
    // The keyring's [client.<id>] section with `key = ...` is read by librados as configuration.
    if (d.auth_enabled && d.keyring !== undefined) text += "\n" + d.keyring + "\n";
    const conf = join(dir, "ceph.conf");
    await writeFile(conf, text, { mode: 0o600 });
    return { dir, conf, pool, image, user };
  }

  private cephArgs(h: Handle): string[] {
    return ["--id", h.user, "--conf", h.conf];
  }

  private get timeoutMs(): number {
    return this.cfg.commandTimeoutSec * 1000;
  }

  async connectVolume(connInfo: ConnectionInfo): Promise<AttachInfo> {
    const d = this.parse(connInfo);
    const method = this.chooseMethod();
    const h = await this.prepare(d);
    try {
      let path: string;
      if (method === "krbd") path = await this.mapKernel(h);
      else if (method === "rbd-nbd") path = await this.mapNbd(h);
      else path = await this.startDaemon(h);
      this.ctx.logger.info("rbd volume attached", { method, image: `${h.pool}/${h.image}`, path });
      return { connector: "rbd", method, path, host: hostname(), handle: { ...h } };
    } catch (e) {
      await this.undo(method, h).catch(() => undefined);
      await rm(h.dir, { recursive: true, force: true });
      throw e;
    }
  }

  private async mapKernel(h: Handle): Promise<string> {
    const r = await this.ctx.runner.run(["rbd", "device", "map", "--pool", h.pool, "--image", h.image, ...this.cephArgs(h)], {
      root: true,
      timeoutMs: this.timeoutMs,
    });
    h.device = r.stdout.trim();
    const link = `/dev/rbd/${h.pool}/${h.image}`;
    return existsSync(link) ? link : h.device;
  }

  private async mapNbd(h: Handle): Promise<string> {
    const r = await this.ctx.runner.run(["rbd-nbd", "map", `${h.pool}/${h.image}`, ...this.cephArgs(h)], { root: true, timeoutMs: this.timeoutMs });
    h.device = r.stdout.trim();
    return h.device;
  }

  private async startDaemon(h: Handle): Promise<string> {
    h.node = "vol";
    h.mountpoint = join(h.dir, "disk");
    h.pidfile = join(h.dir, "qsd.pid");
    const sock = join(h.dir, "qmp.sock");
    // unix socket paths are limited to 107 bytes
    h.qmp = Buffer.byteLength(sock) < 100 ? sock : join(tmpdir(), `cinderts-rbd-${randomBytes(6).toString("hex")}.qmp`);
    await writeFile(h.mountpoint, "", { mode: 0o600 }); // a FUSE export mounts over a regular file
    const blockdev = {
      driver: "rbd",
      "node-name": h.node,
      pool: h.pool,
      image: h.image,
      conf: h.conf,
      user: h.user,
      // no librbd write-back cache: a write that returned is in RADOS, so snapshots/clones taken while attached see it
      cache: { direct: true, "no-flush": false },
      discard: "unmap",
    };
    const exp = { type: "fuse", id: "exp", "node-name": h.node, mountpoint: h.mountpoint, writable: true };
    await this.ctx.runner.run(
      [
        this.cfg.qemuStorageDaemon,
        "--blockdev",
        JSON.stringify(blockdev),
        "--export",
        JSON.stringify(exp),
        "--chardev",
        `socket,id=qmp,path=${h.qmp},server=on,wait=off`,
        "--monitor",
        "chardev=qmp",
        "--pidfile",
        h.pidfile,
        "--daemonize",
      ],
      { root: true, timeoutMs: this.timeoutMs },
    );
    // --daemonize returns once the export is set up; the pid file names the daemon for detach
    h.pid = Number((await readFile(h.pidfile, "utf8")).trim());
    if (!(await isMounted(h.mountpoint))) throw new BackendError(`qemu-storage-daemon started but ${h.mountpoint} is not mounted`);
    return h.mountpoint;
  }

  async disconnectVolume(_connInfo: ConnectionInfo, attach: AttachInfo, opts: { force?: boolean } = {}): Promise<void> {
    const h = attach.handle as unknown as Handle;
    if (!h?.dir) return;
    await this.undo(attach.method as AttachMethod, h, opts.force ?? false);
    await rm(h.dir, { recursive: true, force: true });
    if (h.qmp && !h.qmp.startsWith(h.dir)) await rm(h.qmp, { force: true });
    this.ctx.logger.info("rbd volume detached", { method: attach.method, image: `${h.pool}/${h.image}` });
  }

  /** Undo one attach; every step tolerates "already undone". */
  private async undo(method: AttachMethod, h: Handle, force = false): Promise<void> {
    if (method === "qemu-storage-daemon") return this.stopDaemon(h, force);
    if (!h.device) return;
    if (method === "krbd") {
      if (!(await this.kernelMapped(h))) return;
      await this.ctx.runner.run(["rbd", "device", "unmap", ...(force ? ["-o", "force"] : []), h.device, ...this.cephArgs(h)], {
        root: true,
        timeoutMs: this.timeoutMs,
      });
    } else {
      const name = h.device.replace(/^\/dev\//, "");
      if (!existsSync(`/sys/block/${name}/pid`)) return; // not connected any more
      await this.ctx.runner.run(["rbd-nbd", "unmap", h.device], { root: true, timeoutMs: this.timeoutMs });
    }
  }

  private async kernelMapped(h: Handle): Promise<boolean> {
    const n = /^\/dev\/rbd(\d+)$/.exec(h.device ?? "")?.[1];
    if (n === undefined) return false;
    try {
      const [pool, name] = await Promise.all([
        readFile(`/sys/bus/rbd/devices/${n}/pool`, "utf8"),
        readFile(`/sys/bus/rbd/devices/${n}/name`, "utf8"),
      ]);
      return pool.trim() === h.pool && name.trim() === h.image;
    } catch {
      return false;
    }
  }

  private async stopDaemon(h: Handle, force: boolean): Promise<void> {
    const mp = h.mountpoint ?? "";
    const ours = () => isOurProcess(h.pid, mp);
    if (await ours()) {
      // quit over QMP flushes and removes the export cleanly; a signal is the fallback
      let asked = false;
      if (!force && h.qmp && existsSync(h.qmp)) {
        asked = await qmp(h.qmp, [{ execute: "quit" }]).then(
          () => true,
          () => false,
        );
      }
      if (!asked) process.kill(h.pid!, "SIGTERM");
      const deadline = Date.now() + this.cfg.detachTimeoutSec * 1000;
      while ((await ours()) && Date.now() < deadline) await sleep(50);
      if (await ours()) {
        if (!force) throw new TimeoutError(`qemu-storage-daemon ${h.pid} did not exit within ${this.cfg.detachTimeoutSec}s`);
        process.kill(h.pid!, "SIGKILL");
        await sleep(200);
      }
    }
    // A daemon that died leaves a dead FUSE mount ("Transport endpoint is not connected").
    if (mp && (await isMounted(mp))) {
      await this.ctx.runner.run(["umount", "-l", mp], { root: true, timeoutMs: this.timeoutMs });
    }
  }

  async extendVolume(_connInfo: ConnectionInfo, attach: AttachInfo): Promise<number> {
    const h = attach.handle as unknown as Handle;
    if (attach.method === "krbd") {
      const n = /^\/dev\/rbd(\d+)$/.exec(h.device ?? "")?.[1];
      if (n === undefined) throw new BackendError("Cannot extend non mapped device.");
      // the kernel client follows the image header; /sys/class/block/rbdN/size lags, this one does not
      return Number((await readFile(`/sys/devices/rbd/${n}/size`, "utf8")).trim());
    }
    if (attach.method === "rbd-nbd") {
      const r = await this.ctx.runner.run(["blockdev", "--getsize64", h.device!], { root: true, timeoutMs: this.timeoutMs });
      return Number(r.stdout.trim());
    }
    // qemu's rbd driver does not notice a resize made by another client: read the size from Ceph and tell qemu.
    // block_resize to exactly the image's size is a no-op for librbd and updates the export's length.
    const r = await this.ctx.runner.run(["rbd", "info", "--format", "json", "--pool", h.pool, "--image", h.image, ...this.cephArgs(h)], {
      timeoutMs: this.timeoutMs,
    });
    const size = (JSON.parse(r.stdout) as { size: number }).size;
    await qmp(h.qmp!, [{ execute: "block_resize", arguments: { "node-name": h.node, size } }]);
    // the kernel caches FUSE attributes (qemu answers with a 1 s validity): wait until the new size shows
    const deadline = Date.now() + 5_000;
    while ((await stat(h.mountpoint!)).size !== size) {
      if (Date.now() > deadline) throw new TimeoutError(`the attached file ${h.mountpoint} did not show the new size ${size}`);
      await sleep(100);
    }
    return size;
  }

  async checkAttached(attach: AttachInfo): Promise<boolean> {
    const h = attach.handle as unknown as Handle;
    if (!h?.dir) return false;
    if (attach.method === "qemu-storage-daemon") {
      return (await isOurProcess(h.pid, h.mountpoint ?? "")) && (await isMounted(h.mountpoint ?? ""));
    }
    if (attach.method === "krbd") return this.kernelMapped(h);
    return !!h.device && existsSync(`/sys/block/${h.device.replace(/^\/dev\//, "")}/pid`);
  }
}
