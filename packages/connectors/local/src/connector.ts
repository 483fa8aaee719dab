import { randomUUID } from "node:crypto";
import { stat } from "node:fs/promises";
import { hostname } from "node:os";
import { isAbsolute, normalize } from "node:path";
import {
  BackendError,
  InvalidArgumentError,
  NotFoundError,
  parseInput,
  type AttachInfo,
  type ConnectionInfo,
  type ConnectorContext,
  type ConnectorProps,
  type HostConnector,
} from "@cinderts/core";
import { z } from "@cinderts/core";
import type { ConnectorLocalOptions } from "./config.js";

const FileConnData = z
  .object({
    path: z
      .string()
      .refine((p) => isAbsolute(p) && normalize(p) === p && !p.includes("\0"), "must be an absolute, normalized path"),
    /** The driver (or whoever made the connection) asks for a loop device. */
    loop: z.boolean().optional(),
    volume_id: z.string().optional(),
  })
  .loose();

const LOOP_DEVICE = /^\/dev\/loop[0-9]+$/;

/** What a loop attach records so that detach, even after a restart, touches only its own device. */
const LoopHandle = z.object({
  device: z.string().regex(LOOP_DEVICE, "must be a /dev/loopN path"),
  backing_file: z.string(),
  backing_inode: z.number().int().nonnegative(),
  /** "major:minor" of the filesystem holding the backing file. */
  backing_dev: z.string(),
});
type LoopHandle = z.infer<typeof LoopHandle>;

const FileHandle = z.object({ attach_id: z.string().uuid() });

/** major:minor of a dev_t as Linux encodes it (what losetup prints as BACK-MAJ:MIN). */
function majMin(dev: number): string {
  const major = ((dev >>> 8) & 0xfff) | (Math.floor(dev / 2 ** 32) & ~0xfff);
  const minor = (dev & 0xff) | ((dev >>> 12) & ~0xff);
  return `${major}:${minor}`;
}

interface LoopEntry {
  name: string;
  "back-file"?: string | null;
  "back-ino"?: number | string | null;
  "back-maj:min"?: string | null;
}

/**
 * Host side of file volumes: the file path itself, or a loop device (losetup) when the connector option
 * `loop` is set or the connection data asks for one. A loop attach records device, backing file, inode
 * and filesystem, and detach checks all of them against the kernel's list first, so a device number
 * reused by someone else after a restart is never detached.
 */
export class LocalConnector implements HostConnector {
  readonly protocols = ["file"] as const;

  constructor(
    private readonly options: ConnectorLocalOptions,
    private readonly ctx: ConnectorContext,
  ) {}

  async getConnectorProperties(): Promise<Partial<ConnectorProps>> {
    // The host name comes from core; a local file needs nothing else.
    return {};
  }

  private connData(connInfo: ConnectionInfo) {
    if (connInfo.driver_volume_type !== "file") {
      throw new InvalidArgumentError(`connector-local attaches "file" connections, not ${JSON.stringify(connInfo.driver_volume_type)}`, {
        issues: [{ path: "driver_volume_type", message: 'must be "file"' }],
      });
    }
    return parseInput(FileConnData, connInfo.data, "file connection data");
  }

  async connectVolume(connInfo: ConnectionInfo, opts: { signal?: AbortSignal } = {}): Promise<AttachInfo> {
    const data = this.connData(connInfo);
    const st = await stat(data.path).catch((e: NodeJS.ErrnoException) => {
      if (e.code === "ENOENT") throw new NotFoundError("volume", data.volume_id ?? data.path, { data: { path: data.path } });
      throw new BackendError(`cannot open ${data.path}: ${e.message}`, { cause: e });
    });
    if (!st.isFile()) throw new InvalidArgumentError(`${data.path} is not a regular file`, { issues: [{ path: "data.path", message: "must be a file" }] });

    if (this.options.loop || data.loop === true) {
      const r = await this.ctx.runner.run(["losetup", "--find", "--show", "--", data.path], { root: true, signal: opts.signal });
      const device = r.stdout.trim();
      if (!LOOP_DEVICE.test(device)) throw new BackendError(`losetup printed ${JSON.stringify(device)} instead of a loop device`);
      const handle: LoopHandle = { device, backing_file: data.path, backing_inode: st.ino, backing_dev: majMin(st.dev) };
      this.ctx.logger.info("attached as loop device", { device, path: data.path });
      return { connector: "local", method: "loop", path: device, host: hostname(), handle };
    }

    // Nothing to set up for a file, but the attach is recorded so checkAttached can tell it was undone.
    const attach_id = randomUUID();
    await this.ctx.kv.set(`file-attach:${attach_id}`, { path: data.path });
    return { connector: "local", method: "file", path: data.path, host: hostname(), handle: { attach_id } };
  }

  async disconnectVolume(_connInfo: ConnectionInfo, attach: AttachInfo): Promise<void> {
    if (attach.method === "file") {
      const { attach_id } = parseInput(FileHandle, attach.handle, "file attach handle");
      await this.ctx.kv.delete(`file-attach:${attach_id}`);
      return;
    }
    const handle = this.loopHandle(attach);
    if (!(await this.findLoop(handle))) {
      this.ctx.logger.info("loop device already detached", { device: handle.device, path: handle.backing_file });
      return;
    }
    await this.ctx.runner.run(["losetup", "--detach", handle.device], { root: true });
  }

  async extendVolume(connInfo: ConnectionInfo, attach: AttachInfo): Promise<number> {
    if (attach.method === "file") return (await stat(this.connData(connInfo).path)).size;
    const handle = this.loopHandle(attach);
    if (!(await this.findLoop(handle))) {
      throw new NotFoundError("connection", handle.device, { data: { reason: `${handle.device} is no longer attached to ${handle.backing_file}` } });
    }
    // losetup -c re-reads the backing file's size into the device.
    await this.ctx.runner.run(["losetup", "--set-capacity", handle.device], { root: true });
    const r = await this.ctx.runner.run(["blockdev", "--getsize64", handle.device], { root: true });
    return Number(r.stdout.trim());
  }

  async checkAttached(attach: AttachInfo): Promise<boolean> {
    if (attach.method === "file") {
      const { attach_id } = parseInput(FileHandle, attach.handle, "file attach handle");
      const rec = await this.ctx.kv.get(`file-attach:${attach_id}`);
      return rec !== undefined && (await stat(attach.path).then(() => true, () => false));
    }
    return (await this.findLoop(this.loopHandle(attach))) !== undefined;
  }

  private loopHandle(attach: AttachInfo): LoopHandle {
    if (attach.method !== "loop") {
      throw new InvalidArgumentError(`connector-local did not make this attach (method ${JSON.stringify(attach.method)})`);
    }
    return parseInput(LoopHandle, attach.handle, "loop attach handle");
  }

  /**
   * The kernel's entry for this attach: same device, same backing inode on the same filesystem.
   * Listing every device (rather than `losetup -j FILE`) also finds a device whose file was deleted.
   */
  private async findLoop(h: LoopHandle): Promise<LoopEntry | undefined> {
    const r = await this.ctx.runner.run(["losetup", "--list", "--json", "--output", "NAME,BACK-FILE,BACK-INO,BACK-MAJ:MIN"], { root: true });
    const text = r.stdout.trim();
    if (!text) return undefined;
    let entries: LoopEntry[];
    try {
      entries = (JSON.parse(text) as { loopdevices?: LoopEntry[] }).loopdevices ?? [];
    } catch (e) {
      throw new BackendError(`cannot parse losetup --json output: ${(e as Error).message}`, { cause: e });
    }
    return entries.find(
      (e) =>
        e.name === h.device &&
        Number(e["back-ino"]) === h.backing_inode &&
        String(e["back-maj:min"] ?? "").trim() === h.backing_dev,
    );
  }
}
