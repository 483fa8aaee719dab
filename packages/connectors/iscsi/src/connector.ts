import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import {
  BackendError,
  withLocks,
  type AttachInfo,
  type ConnectionInfo,
  type ConnectorContext,
  type ConnectorProps,
  type HostConnector,
  type Logger,
} from "@cinderts/core";
import type { IscsiConnectorConfig } from "./config.js";
import { parseConnInfo } from "./conninfo.js";
import { KernelInitiator, type KernelHandle } from "./kernel.js";
import { UserspaceInitiator, type UserspaceHandle } from "./userspace.js";

export type IscsiMethod = "kernel" | "userspace";

// The kernel initiator works when the iscsi_tcp transport is (or can be) loaded and iscsiadm exists.
const KERNEL_PROBE = "command -v iscsiadm >/dev/null 2>&1 && { [ -d /sys/class/iscsi_transport/tcp ] || modprobe -q iscsi_tcp 2>/dev/null; } && [ -d /sys/class/iscsi_transport/tcp ]";
const INITIATOR_FILE = "cat /etc/iscsi/initiatorname.iscsi 2>/dev/null || :";
const READ_OR_CREATE =
  'f=$1; if [ ! -s "$f" ]; then mkdir -p "${f%/*}" && umask 077 && printf "InitiatorName=%s\\n" "$2" > "$f.tmp" && mv -n "$f.tmp" "$f"; rm -f "$f.tmp"; fi; cat "$f"';

/**
 * os-brick's ISCSIConnector for cinderts: kernel open-iscsi when the host has it, else libiscsi inside
 * qemu-storage-daemon exported through FUSE. Every command goes through ctx.runner, so the same connector
 * attaches on a remote host over SSH. Login/logout hold a host-wide lock (`iscsi-host:<runner>`), as os-brick
 * takes its `connect_volume` file lock.
 */
export class IscsiConnector implements HostConnector {
  readonly protocols = ["iscsi"] as const;
  private readonly log: Logger;
  private readonly kernel: KernelInitiator;
  private readonly userspace: UserspaceInitiator;
  private method?: Promise<IscsiMethod>;
  private initiator?: Promise<string>;

  constructor(
    private readonly cfg: IscsiConnectorConfig,
    private readonly ctx: ConnectorContext,
  ) {
    this.log = ctx.logger.child({ connector: "iscsi" });
    this.kernel = new KernelInitiator(ctx.runner, this.log, cfg);
    this.userspace = new UserspaceInitiator(ctx.runner, this.log, { root: cfg.root, stateDir: cfg.stateDir ?? ctx.stateDir });
  }

  private get host(): string {
    return this.ctx.runner.name === "local" ? hostname() : this.ctx.runner.name;
  }

  /** Which initiator this host uses (probed once). */
  attachMethod(): Promise<IscsiMethod> {
    if (this.cfg.method !== "auto") return Promise.resolve(this.cfg.method);
    this.method ??= this.ctx.runner
      .run(["sh", "-c", KERNEL_PROBE], { root: this.cfg.root, okExitCodes: [0, 1, 127] })
      .then((r) => (r.exitCode === 0 ? "kernel" : "userspace"));
    return this.method;
  }

  /** /etc/iscsi/initiatorname.iscsi, else (user-space path) a generated IQN kept in the state dir so it stays stable. */
  initiatorName(): Promise<string> {
    if (this.cfg.initiatorName) return Promise.resolve(this.cfg.initiatorName);
    this.initiator ??= (async () => {
      const sys = await this.ctx.runner.run(["sh", "-c", INITIATOR_FILE], { root: this.cfg.root });
      const found = /^InitiatorName=(\S+)/m.exec(sys.stdout)?.[1];
      if (found) return found;
      if ((await this.attachMethod()) === "kernel") throw new BackendError("open-iscsi has no /etc/iscsi/initiatorname.iscsi on this host");
      const host = this.host.toLowerCase().replace(/[^a-z0-9.-]/g, "-").slice(0, 60) || "host";
      const fresh = `iqn.2004-10.com.cinderts:${host}-${randomBytes(6).toString("hex")}`;
      const dir = this.cfg.stateDir ?? this.ctx.stateDir;
      const r = await this.ctx.runner.run(["sh", "-c", READ_OR_CREATE, "iname", `${dir}/initiatorname.iscsi`, fresh], { root: this.cfg.root });
      const name = /^InitiatorName=(\S+)/m.exec(r.stdout)?.[1];
      if (!name) throw new BackendError("could not keep a generated initiator name in the state dir");
      return name;
    })();
    this.initiator.catch(() => (this.initiator = undefined));
    return this.initiator;
  }

  async getConnectorProperties(): Promise<Partial<ConnectorProps>> {
    const method = await this.attachMethod();
    return {
      initiator: await this.initiatorName(),
      iscsi_method: method,
      multipath_supported: method === "kernel" ? await this.kernel.multipathAvailable() : false,
      // os-brick echoes use_multipath here: it is how the driver hears the request (plural portal keys).
      ...(this.cfg.multipath ? { multipath: true } : {}),
    };
  }

  private hostLock<T>(fn: () => Promise<T>): Promise<T> {
    return withLocks(this.ctx.locks, [`iscsi-host:${this.ctx.runner.name}`], fn);
  }

  async connectVolume(connInfo: ConnectionInfo): Promise<AttachInfo> {
    const conn = parseConnInfo(connInfo);
    const method = await this.attachMethod();
    const t0 = performance.now();
    const attach = await this.hostLock(async () =>
      method === "kernel" ? this.kernel.connect(conn, this.host) : this.userspace.connect(conn, await this.initiatorName(), this.host),
    );
    this.log.info("connectVolume", { method: attach.method, path: attach.path, iqn: conn.paths[0]?.iqn, ms: Math.round(performance.now() - t0) });
    return attach;
  }

  async disconnectVolume(_connInfo: ConnectionInfo, attach: AttachInfo, opts: { force?: boolean } = {}): Promise<void> {
    const t0 = performance.now();
    await this.hostLock(async () => {
      if (attach.method === "kernel") await this.kernel.disconnect(attach.handle as unknown as KernelHandle, opts.force ?? false);
      else if (attach.method === "qemu-storage-daemon") await this.userspace.disconnect(attach.handle as unknown as UserspaceHandle);
      else throw new BackendError(`attach method ${attach.method} is not one of this connector's`);
    });
    this.log.info("disconnectVolume", { method: attach.method, path: attach.path, ms: Math.round(performance.now() - t0) });
  }

  async extendVolume(connInfo: ConnectionInfo, attach: AttachInfo): Promise<number> {
    return withLocks(this.ctx.locks, [`iscsi-extend:${this.ctx.runner.name}`], () =>
      attach.method === "kernel"
        ? this.kernel.extend(attach.handle as unknown as KernelHandle)
        : this.userspace.extend(attach.handle as unknown as UserspaceHandle, parseConnInfo(connInfo)),
    );
  }

  async checkAttached(attach: AttachInfo): Promise<boolean> {
    return attach.method === "kernel"
      ? this.kernel.attached(attach.handle as unknown as KernelHandle)
      : this.userspace.attached(attach.handle as unknown as UserspaceHandle);
  }
}
