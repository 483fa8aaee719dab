import { isStorageError, type CommandRunner } from "@cinderts/core";
import {
  RbdCallError,
  type ChildRef,
  type ClusterInfo,
  type ImageInfo,
  type ImageListEntry,
  type MonAddr,
  type ParentRef,
  type PoolUsage,
  type RbdClient,
  type SnapInfo,
} from "./client.js";

export interface CephArgs {
  cluster: string;
  user: string;
  conf?: string;
  keyring?: string;
  connectTimeoutSec: number;
}

/** Arguments every rbd/ceph command gets (Cinder's `_ceph_args`, plus the timeouts of rados_connect_timeout). */
export function cephArgs(a: CephArgs): string[] {
  const args = ["--id", a.user, "--cluster", a.cluster];
  if (a.conf) args.push("--conf", a.conf);
  if (a.keyring) args.push("--keyring", a.keyring);
  if (a.connectTimeoutSec >= 0) {
    const t = String(a.connectTimeoutSec);
    args.push("--rados-osd-op-timeout", t, "--rados-mon-op-timeout", t, "--client-mount-timeout", t);
  }
  return args;
}

/**
 * rbd exits with librbd's errno (2 ENOENT, 16 EBUSY, 39 ENOTEMPTY …); when it does not (1 for a generic
 * failure), the "(N) Text" that librbd prints is the next best source.
 */
export function errnoOf(exitCode: number | null, stderr: string): number {
  if (exitCode !== null && exitCode > 1 && exitCode < 126) return exitCode;
  const m = /\((\d+)\) [A-Z]/.exec(stderr);
  return m ? Number(m[1]) : (exitCode ?? -1);
}

/** Monitor address as in `mon dump` (`10.0.0.1:6789/0`, `[::1]:6789/0`) → host and port, as Cinder splits it. */
export function parseMonAddr(addr: string): MonAddr {
  const noNonce = addr.slice(0, addr.lastIndexOf("/") === -1 ? addr.length : addr.lastIndexOf("/"));
  const i = noNonce.lastIndexOf(":");
  return { host: noNonce.slice(0, i).replace(/^\[|\]$/g, ""), port: noNonce.slice(i + 1) };
}

// `mon dump` writes "dumped monmap epoch N" (to stderr on Pacific, to stdout on older releases)
function parseJson<T>(stdout: string, what: string): T {
  const text = stdout
    .split("\n")
    .filter((l) => !l.startsWith("dumped monmap epoch"))
    .join("\n")
    .trim();
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new RbdCallError(-1, what, `${what}: unexpected output (not JSON): ${text.slice(0, 200)}`, { cause: e });
  }
}

interface RawInfo {
  name: string;
  size: number;
  order: number;
  features?: string[];
  snapshot_count?: number;
  parent?: { pool: string; image: string; snapshot: string };
}

/** Ceph through `rbd`/`ceph` commands with `--format json`, run by the CommandRunner (local or ssh). */
export class CliRbdClient implements RbdClient {
  readonly transport = "cli";
  private readonly common: string[];

  constructor(
    private readonly runner: CommandRunner,
    args: CephArgs,
    private readonly timeoutMs = 300_000,
  ) {
    this.common = cephArgs(args);
  }

  private async exec(tool: "rbd" | "ceph", op: string, args: string[]): Promise<string> {
    const argv = [tool, ...this.common, ...args];
    try {
      const r = await this.runner.run(argv, { timeoutMs: this.timeoutMs });
      return r.stdout;
    } catch (e) {
      if (isStorageError(e) && e.code === "COMMAND_FAILED") {
        const data = e.details.data ?? {};
        const exitCode = typeof data.exitCode === "number" ? data.exitCode : null;
        const stderr = typeof data.stderr === "string" ? data.stderr : "";
        throw new RbdCallError(errnoOf(exitCode, stderr), op, e.message, { cause: e });
      }
      throw e;
    }
  }

  private rbd(op: string, args: string[]): Promise<string> {
    return this.exec("rbd", op, args);
  }

  async clusterInfo(): Promise<ClusterInfo> {
    const out = await this.exec("ceph", "mon dump", ["mon", "dump", "--format", "json"]);
    const j = parseJson<{ fsid: string; mons: { addr: string }[] }>(out, "mon dump");
    return { fsid: j.fsid, mons: j.mons.map((m) => parseMonAddr(m.addr)) };
  }

  async poolUsage(pool: string): Promise<PoolUsage> {
    const [df, quota] = await Promise.all([
      this.exec("ceph", "df", ["df", "--format", "json"]),
      this.exec("ceph", "osd pool get-quota", ["osd", "pool", "get-quota", pool, "--format", "json"]),
    ]);
    const d = parseJson<{
      stats: { total_bytes: number };
      pools: { name: string; stats: { stored?: number; bytes_used: number; max_avail: number } }[];
    }>(df, "df");
    const p = d.pools.find((x) => x.name === pool);
    if (!p) throw new RbdCallError(2, "df", `pool ${pool} is not in \`ceph df\``);
    const q = parseJson<{ quota_max_bytes: number }>(quota, "osd pool get-quota");
    return {
      used: p.stats.stored ?? p.stats.bytes_used,
      maxAvail: p.stats.max_avail,
      clusterTotal: d.stats.total_bytes,
      quotaMaxBytes: q.quota_max_bytes ?? 0,
    };
  }

  async listNames(pool: string): Promise<string[]> {
    const out = await this.rbd("ls", ["ls", "--format", "json", "--pool", pool]);
    return parseJson<string[]>(out || "[]", "ls");
  }

  async list(pool: string): Promise<ImageListEntry[]> {
    const out = await this.rbd("ls", ["ls", "--long", "--format", "json", "--pool", pool]);
    const rows = parseJson<{ image: string; size: number; snapshot?: string }[]>(out || "[]", "ls");
    return rows.filter((r) => r.snapshot === undefined).map((r) => ({ name: r.image, size: r.size }));
  }

  async create(pool: string, image: string, sizeBytes: number, opts: { order: number }): Promise<void> {
    await this.rbd("create", [
      "create",
      "--pool",
      pool,
      "--image",
      image,
      "--size",
      `${sizeBytes}B`,
      "--object-size",
      `${2 ** opts.order}B`,
      "--image-format",
      "2",
    ]);
  }

  async remove(pool: string, image: string): Promise<void> {
    await this.rbd("remove", ["rm", "--no-progress", "--pool", pool, "--image", image]);
  }

  async info(pool: string, image: string): Promise<ImageInfo> {
    const out = await this.rbd("info", ["info", "--format", "json", "--pool", pool, "--image", image]);
    const j = parseJson<RawInfo>(out, "info");
    return {
      name: j.name,
      size: j.size,
      order: j.order,
      features: j.features ?? [],
      snapshotCount: j.snapshot_count ?? 0,
      ...(j.parent ? { parent: { pool: j.parent.pool, image: j.parent.image, snapshot: j.parent.snapshot } } : {}),
    };
  }

  async resize(pool: string, image: string, sizeBytes: number): Promise<void> {
    await this.rbd("resize", ["resize", "--no-progress", "--pool", pool, "--image", image, "--size", `${sizeBytes}B`]);
  }

  async rename(pool: string, from: string, to: string): Promise<void> {
    await this.rbd("rename", ["rename", "--pool", pool, "--image", from, "--dest-pool", pool, "--dest", to]);
  }

  async copy(pool: string, from: string, to: string): Promise<void> {
    await this.rbd("copy", ["cp", "--no-progress", "--pool", pool, "--image", from, "--dest-pool", pool, "--dest", to]);
  }

  async snapCreate(pool: string, image: string, snap: string): Promise<void> {
    await this.rbd("snap create", ["snap", "create", "--no-progress", "--pool", pool, "--image", image, "--snap", snap]);
  }

  async snapProtect(pool: string, image: string, snap: string): Promise<void> {
    await this.rbd("snap protect", ["snap", "protect", "--pool", pool, "--image", image, "--snap", snap]);
  }

  async snapUnprotect(pool: string, image: string, snap: string): Promise<void> {
    await this.rbd("snap unprotect", ["snap", "unprotect", "--pool", pool, "--image", image, "--snap", snap]);
  }

  async snapRemove(pool: string, image: string, snap: string): Promise<void> {
    await this.rbd("snap remove", ["snap", "rm", "--no-progress", "--pool", pool, "--image", image, "--snap", snap]);
  }

  async snapList(pool: string, image: string): Promise<SnapInfo[]> {
    const out = await this.rbd("snap list", ["snap", "ls", "--format", "json", "--pool", pool, "--image", image]);
    const rows = parseJson<{ name: string; size: number; protected: string | boolean }[]>(out || "[]", "snap ls");
    return rows.map((r) => ({ name: r.name, size: r.size, protected: r.protected === true || r.protected === "true" }));
  }

  async clone(parent: ParentRef, pool: string, image: string, opts: { order: number }): Promise<void> {
    await this.rbd("clone", [
      "clone",
      "--pool",
      parent.pool,
      "--image",
      parent.image,
      "--snap",
      parent.snapshot,
      "--dest-pool",
      pool,
      "--dest",
      image,
      "--object-size",
      `${2 ** opts.order}B`,
    ]);
  }

  async children(pool: string, image: string, snap: string): Promise<ChildRef[]> {
    const out = await this.rbd("children", ["children", "--format", "json", "--pool", pool, "--image", image, "--snap", snap]);
    const rows = parseJson<{ pool: string; image: string }[]>(out || "[]", "children");
    return rows.map((r) => ({ pool: r.pool, image: r.image }));
  }

  async flatten(pool: string, image: string): Promise<void> {
    await this.rbd("flatten", ["flatten", "--no-progress", "--pool", pool, "--image", image]);
  }

  async metaSet(pool: string, image: string, key: string, value: string): Promise<void> {
    await this.rbd("image-meta set", ["image-meta", "set", "--pool", pool, "--image", image, key, value]);
  }

  async metaGet(pool: string, image: string, key: string): Promise<string | undefined> {
    // `image-meta get` exits ENOENT both for a missing key and a missing image; the list tells them apart.
    const out = await this.rbd("image-meta list", ["image-meta", "list", "--format", "json", "--pool", pool, "--image", image]);
    const meta = out.trim() ? parseJson<Record<string, string>>(out, "image-meta list") : {};
    return meta[key];
  }

  async close(): Promise<void> {}
}
