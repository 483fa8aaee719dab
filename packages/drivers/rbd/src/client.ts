/**
 * The primitive Ceph operations the driver is built from. Two implementations: `CliRbdClient` (rbd/ceph
 * commands through the CommandRunner) and `NativeRbdClient` (librbd in-process). The driver holds all
 * Cinder semantics; a client only translates one call and reports failures as `RbdCallError` with the errno
 * that librbd returned, so both transports map errors identically.
 */

export interface ParentRef {
  pool: string;
  image: string;
  snapshot: string;
}

export interface ImageInfo {
  name: string;
  size: number;
  order: number;
  features: string[];
  snapshotCount: number;
  parent?: ParentRef;
}

export interface SnapInfo {
  name: string;
  protected: boolean;
  size: number;
}

export interface ChildRef {
  pool: string;
  image: string;
}

export interface MonAddr {
  host: string;
  port: string;
}

export interface ClusterInfo {
  fsid: string;
  mons: MonAddr[];
}

export interface PoolUsage {
  /** Bytes stored (Nautilus+ `stored`, else `bytes_used`). */
  used: number;
  maxAvail: number;
  /** Raw cluster capacity (`stats.total_bytes`). */
  clusterTotal: number;
  /** 0 = no quota. */
  quotaMaxBytes: number;
}

export interface ImageListEntry {
  name: string;
  size: number;
}

export interface RbdClient {
  /** "cli" or "native": reported in logs and the benchmark. */
  readonly transport: string;
  clusterInfo(): Promise<ClusterInfo>;
  poolUsage(pool: string): Promise<PoolUsage>;
  /** Image names only (no image is opened): cheap enough for setup's reachability check. */
  listNames(pool: string): Promise<string[]>;
  /** Images with their sizes (opens every image). */
  list(pool: string): Promise<ImageListEntry[]>;
  create(pool: string, image: string, sizeBytes: number, opts: { order: number }): Promise<void>;
  /** Fails with ENOENT / EBUSY (watchers) / ENOTEMPTY (has snapshots). */
  remove(pool: string, image: string): Promise<void>;
  info(pool: string, image: string): Promise<ImageInfo>;
  resize(pool: string, image: string, sizeBytes: number): Promise<void>;
  rename(pool: string, from: string, to: string): Promise<void>;
  copy(pool: string, from: string, to: string): Promise<void>;
  snapCreate(pool: string, image: string, snap: string): Promise<void>;
  snapProtect(pool: string, image: string, snap: string): Promise<void>;
  /** EINVAL when not protected, EBUSY when it has children. */
  snapUnprotect(pool: string, image: string, snap: string): Promise<void>;
  /** EBUSY when protected. */
  snapRemove(pool: string, image: string, snap: string): Promise<void>;
  snapList(pool: string, image: string): Promise<SnapInfo[]>;
  clone(parent: ParentRef, pool: string, image: string, opts: { order: number }): Promise<void>;
  children(pool: string, image: string, snap: string): Promise<ChildRef[]>;
  flatten(pool: string, image: string): Promise<void>;
  metaSet(pool: string, image: string, key: string, value: string): Promise<void>;
  /** undefined when the key is absent. */
  metaGet(pool: string, image: string, key: string): Promise<string | undefined>;
  close(): Promise<void>;
}

export const ENOENT = 2;
export const EBUSY = 16;
export const EEXIST = 17;
export const EINVAL = 22;
export const ENOTEMPTY = 39;
export const ETIMEDOUT = 110;

/** A failed Ceph call with librbd's errno (positive). */
export class RbdCallError extends Error {
  constructor(
    readonly errno: number,
    readonly op: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "RbdCallError";
  }
}

export const isErrno = (e: unknown, errno: number): e is RbdCallError => e instanceof RbdCallError && e.errno === errno;
