import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * In-process librbd for @cinderts/driver-rbd. The shapes below match the driver's RbdClient structurally (this
 * package does not import the driver, so there is no dependency cycle); failures are Errors carrying librbd's
 * positive `errno`, which the driver maps exactly like the CLI's exit codes.
 */

interface Addon {
  newCluster(): object;
  call(handle: object, op: string, strings: string[], numbers: number[]): Promise<string>;
  shutdown(handle: object): void;
}

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const addonPath = join(root, "build", "rbd_native.node");
let addon: Addon | undefined;
let loadError: string | undefined;

function load(): Addon | undefined {
  if (addon || loadError) return addon;
  try {
    addon = createRequire(import.meta.url)(addonPath) as Addon;
  } catch (e) {
    const marker = join(root, "build", "UNAVAILABLE");
    loadError = existsSync(marker)
      ? `not built: ${readFileSync(marker, "utf8").trim()}`
      : `cannot load ${addonPath}: ${(e as Error).message.split("\n")[0]}`;
  }
  return addon;
}

/** Why the addon cannot be used here, or undefined when it loads. */
export function nativeUnavailableReason(): string | undefined {
  load();
  return loadError;
}

export interface NativeConnectOptions {
  cluster: string;
  user: string;
  conf?: string;
  keyring?: string;
  /** >= 0: rados_osd_op_timeout, rados_mon_op_timeout and client_mount_timeout in seconds. */
  connectTimeoutSec: number;
}

export interface RbdNativeError extends Error {
  errno: number;
  where: string;
}

const parseMonAddr = (addr: string) => {
  const noNonce = addr.includes("/") ? addr.slice(0, addr.lastIndexOf("/")) : addr;
  const i = noNonce.lastIndexOf(":");
  return { host: noNonce.slice(0, i).replace(/^\[|\]$/g, ""), port: noNonce.slice(i + 1) };
};

/** One cluster connection (librados handle + an ioctx per pool), kept open for the life of the backend. */
export class NativeRbdClient {
  readonly transport = "native";
  private inflight = 0;
  private idle?: () => void;
  private closed = false;

  private constructor(
    private readonly a: Addon,
    private readonly h: object,
  ) {}

  static async connect(opts: NativeConnectOptions): Promise<NativeRbdClient> {
    const a = load();
    if (!a) throw new Error(`@cinderts/driver-rbd-native ${loadError}`);
    const c = new NativeRbdClient(a, a.newCluster());
    try {
      await c.call("connect", [opts.cluster, opts.user, opts.conf ?? "", opts.keyring ?? ""], [opts.connectTimeoutSec]);
    } catch (e) {
      a.shutdown(c.h);
      throw e;
    }
    return c;
  }

  private async call(op: string, s: string[], n: number[] = []): Promise<string> {
    if (this.closed) throw Object.assign(new Error(`${op}: cluster connection is closed`), { errno: 107, where: "closed" });
    this.inflight++;
    try {
      return await this.a.call(this.h, op, s, n);
    } finally {
      if (--this.inflight === 0) this.idle?.();
    }
  }

  private async json<T>(op: string, s: string[], n: number[] = []): Promise<T> {
    return JSON.parse(await this.call(op, s, n)) as T;
  }

  async clusterInfo() {
    const r = await this.json<{ fsid: string; monmap: { mons: { addr: string }[] } }>("clusterInfo", []);
    return { fsid: r.fsid, mons: r.monmap.mons.map((m) => parseMonAddr(m.addr)) };
  }

  async poolUsage(pool: string) {
    const r = await this.json<{
      df: { stats: { total_bytes: number }; pools: { name: string; stats: { stored?: number; bytes_used: number; max_avail: number } }[] };
      quota: { quota_max_bytes?: number };
    }>("poolUsage", [pool]);
    const p = r.df.pools.find((x) => x.name === pool);
    if (!p) throw Object.assign(new Error(`pool ${pool} is not in df`), { errno: 2, where: "df" });
    return {
      used: p.stats.stored ?? p.stats.bytes_used,
      maxAvail: p.stats.max_avail,
      clusterTotal: r.df.stats.total_bytes,
      quotaMaxBytes: r.quota.quota_max_bytes ?? 0,
    };
  }

  listNames(pool: string) {
    return this.json<string[]>("listNames", [pool]);
  }
  list(pool: string) {
    return this.json<{ name: string; size: number }[]>("list", [pool]);
  }
  async create(pool: string, image: string, sizeBytes: number, opts: { order: number }) {
    await this.call("create", [pool, image], [sizeBytes, opts.order]);
  }
  async remove(pool: string, image: string) {
    await this.call("remove", [pool, image]);
  }
  async info(pool: string, image: string) {
    const r = await this.json<{
      name: string;
      size: number;
      order: number;
      features: string[];
      snapshot_count: number;
      parent?: { pool: string; image: string; snapshot: string };
    }>("info", [pool, image]);
    return { name: r.name, size: r.size, order: r.order, features: r.features, snapshotCount: r.snapshot_count, ...(r.parent ? { parent: r.parent } : {}) };
  }
  async resize(pool: string, image: string, sizeBytes: number) {
    await this.call("resize", [pool, image], [sizeBytes]);
  }
  async rename(pool: string, from: string, to: string) {
    await this.call("rename", [pool, from, to]);
  }
  async copy(pool: string, from: string, to: string) {
    await this.call("copy", [pool, from, to]);
  }
  async snapCreate(pool: string, image: string, snap: string) {
    await this.call("snapCreate", [pool, image, snap]);
  }
  async snapProtect(pool: string, image: string, snap: string) {
    await this.call("snapProtect", [pool, image, snap]);
  }
  async snapUnprotect(pool: string, image: string, snap: string) {
    await this.call("snapUnprotect", [pool, image, snap]);
  }
  async snapRemove(pool: string, image: string, snap: string) {
    await this.call("snapRemove", [pool, image, snap]);
  }
  snapList(pool: string, image: string) {
    return this.json<{ name: string; size: number; protected: boolean }[]>("snapList", [pool, image]);
  }
  async clone(parent: { pool: string; image: string; snapshot: string }, pool: string, image: string, opts: { order: number }) {
    await this.call("clone", [parent.pool, parent.image, parent.snapshot, pool, image], [opts.order]);
  }
  children(pool: string, image: string, snap: string) {
    return this.json<{ pool: string; image: string }[]>("children", [pool, image, snap]);
  }
  async flatten(pool: string, image: string) {
    await this.call("flatten", [pool, image]);
  }
  async metaSet(pool: string, image: string, key: string, value: string) {
    await this.call("metaSet", [pool, image, key, value]);
  }
  async metaGet(pool: string, image: string, key: string): Promise<string | undefined> {
    return (await this.json<string | null>("metaGet", [pool, image, key])) ?? undefined;
  }

  /** Waits for calls in flight, then closes the cluster connection. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.inflight > 0) await new Promise<void>((r) => (this.idle = r));
    this.a.shutdown(this.h);
  }
}

/** Entry point used by @cinderts/driver-rbd. */
export function openRbdClient(opts: NativeConnectOptions): Promise<NativeRbdClient> {
  return NativeRbdClient.connect(opts);
}
