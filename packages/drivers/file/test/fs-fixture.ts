/**
 * Real filesystems for tests: btrfs / xfs / ext4 on a loop device, or tmpfs, each mounted under its own
 * temporary folder. Dependency-free (node:child_process only) so that other test suites — the CLI e2e
 * tests — import this file directly.
 *
 * Needs root (mount, losetup). `fsUnavailable()` says why a filesystem cannot be made here; tests skip on
 * that locally and fail in CI (process.env.CI), so a missing tool never turns into a silently green run.
 */
import { execFile as execFileCb, execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const execFile = promisify(execFileCb);

export type FsType = "btrfs" | "xfs" | "ext4" | "tmpfs";

export interface FsFixture {
  type: FsType;
  /** Where the filesystem is mounted (an empty directory to use). */
  mountpoint: string;
  /** Loop device backing it (not for tmpfs). */
  device?: string;
  /** Unmount, detach the loop device, remove the temporary folder. Safe to call twice. */
  cleanup(): Promise<void>;
}

/** Debian packages providing each mkfs. */
export const FS_PACKAGES: Record<Exclude<FsType, "tmpfs">, { mkfs: string; pkg: string }> = {
  btrfs: { mkfs: "mkfs.btrfs", pkg: "btrfs-progs" },
  xfs: { mkfs: "mkfs.xfs", pkg: "xfsprogs" },
  ext4: { mkfs: "mkfs.ext4", pkg: "e2fsprogs" },
};

const isRoot = () => process.getuid?.() === 0;

function which(cmd: string): boolean {
  for (const dir of (process.env.PATH ?? "").split(":").concat(["/usr/sbin", "/sbin"])) {
    try {
      execFileSync("test", ["-x", join(dir, cmd)]);
      return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}

function kernelHas(type: FsType): boolean {
  try {
    const list = execFileSync("cat", ["/proc/filesystems"], { encoding: "utf8" });
    if (list.split("\n").some((l) => l.trim().split(/\s+/).pop() === type)) return true;
    // Not loaded yet: modprobe may bring it in.
    execFileSync("modprobe", [type], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/**
 * Installs the mkfs tools that are missing (apt-get, as root); what the test setup runs before the
 * suites. Returns the packages it installed.
 */
export function ensureFsTools(types: readonly FsType[] = ["btrfs", "xfs", "ext4"]): string[] {
  const missing = types
    .filter((t): t is Exclude<FsType, "tmpfs"> => t !== "tmpfs")
    .filter((t) => !which(FS_PACKAGES[t].mkfs))
    .map((t) => FS_PACKAGES[t].pkg);
  if (!missing.length || !isRoot() || !which("apt-get")) return [];
  const install = () =>
    execFileSync("apt-get", ["install", "-y", "--no-install-recommends", ...missing], {
      stdio: "ignore",
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    });
  try {
    install();
  } catch {
    // Package lists may be empty on a fresh machine.
    execFileSync("apt-get", ["update"], { stdio: "ignore" });
    install();
  }
  return missing;
}

/** Why this filesystem cannot be created here, or undefined when it can. */
export function fsUnavailable(type: FsType): string | undefined {
  if (!isRoot()) return "needs root (mount, losetup)";
  if (!kernelHas(type)) return `the kernel has no ${type}`;
  if (type === "tmpfs") return undefined;
  if (!which("losetup")) return "losetup (util-linux) is missing";
  if (!which(FS_PACKAGES[type].mkfs)) return `${FS_PACKAGES[type].mkfs} is missing (apt-get install ${FS_PACKAGES[type].pkg})`;
  return undefined;
}

/**
 * For describe.skipIf / it.skipIf: true when the filesystem cannot be made here and this is not CI.
 * In CI an unavailable filesystem throws, naming what is missing.
 */
export function skipUnlessFs(type: FsType): boolean {
  const why = fsUnavailable(type);
  if (!why) return false;
  if (process.env.CI) throw new Error(`${type} test filesystem is required in CI but ${why}`);
  return true;
}

async function run(cmd: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await execFile(cmd, args, { encoding: "utf8" });
    return stdout;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(" ")} failed: ${err.stderr?.trim() || err.message}`, { cause: e });
  }
}

export interface CreateFsOptions {
  /** Size of the filesystem; the image is sparse, so only what is written takes space. */
  sizeMiB?: number;
}

const DEFAULT_SIZE_MIB: Record<FsType, number> = { btrfs: 2048, xfs: 2048, ext4: 1024, tmpfs: 1024 };

/** Creates and mounts a filesystem of this type on a new loop device (tmpfs: a tmpfs mount). */
export async function createFs(type: FsType, opts: CreateFsOptions = {}): Promise<FsFixture> {
  const why = fsUnavailable(type);
  if (why) throw new Error(`cannot create a ${type} test filesystem: ${why}`);
  const sizeMiB = opts.sizeMiB ?? DEFAULT_SIZE_MIB[type];
  // The pid in the name lets cleanupStaleFs() tell a crashed run's leftovers from a live one's.
  const root = mkdtempSync(join(tmpdir(), `cinderts-fs-${type}-${process.pid}-`));
  const mountpoint = join(root, "mnt");
  mkdirSync(mountpoint);
  let device: string | undefined;
  let mounted = false;

  const cleanup = async () => {
    if (mounted) {
      try {
        await run("umount", [mountpoint]);
      } catch {
        // Something still holds it (a test's open file): detach lazily so the loop device can go.
        await run("umount", ["-l", mountpoint]).catch(() => undefined);
      }
      mounted = false;
    }
    if (device) {
      await run("losetup", ["-d", device]).catch(() => undefined);
      device = undefined;
    }
    rmSync(root, { recursive: true, force: true });
  };

  try {
    if (type === "tmpfs") {
      await run("mount", ["-t", "tmpfs", "-o", `size=${sizeMiB}m,mode=0700`, "cinderts-test", mountpoint]);
      mounted = true;
    } else {
      const image = join(root, `${type}.img`);
      await run("truncate", ["-s", `${sizeMiB}M`, image]);
      device = (await run("losetup", ["--find", "--show", image])).trim();
      if (type === "btrfs") await run("mkfs.btrfs", ["-f", "-q", device]);
      else if (type === "xfs") await run("mkfs.xfs", ["-f", "-q", "-m", "reflink=1", device]);
      else await run("mkfs.ext4", ["-F", "-q", "-E", "lazy_itable_init=1,lazy_journal_init=1", device]);
      await run("mount", [device, mountpoint]);
      mounted = true;
    }
  } catch (e) {
    await cleanup();
    throw e;
  }
  return {
    type,
    mountpoint,
    get device() {
      return device;
    },
    cleanup,
  };
}

/** Bytes allocated on disk for a file (st_blocks × 512): what holes save. */
export async function allocatedBytes(path: string): Promise<number> {
  const { stat } = await import("node:fs/promises");
  return (await stat(path)).blocks * 512;
}

/**
 * Extents of a file that share their blocks with another file (reflink), from `filefrag -v`, in bytes.
 * filefrag reports FIEMAP_EXTENT_SHARED as "shared" on btrfs and xfs.
 */
export async function sharedBytes(path: string): Promise<number> {
  const out = await run("filefrag", ["-v", "-b4096", path]);
  let shared = 0;
  for (const line of out.split("\n")) {
    // "   0:        0..     255:       3328..      3583:    256:             shared"
    const m = /^\s*\d+:\s+\d+\.\.\s*\d+:\s+\d+\.\.\s*\d+:\s+(\d+):.*\bshared\b/.exec(line);
    if (m) shared += Number(m[1]) * 4096;
  }
  return shared;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Unmounts and detaches what a killed test run left (its process is gone); fixtures of live runs are
 * left alone. Returns the folders it removed.
 */
export function cleanupStaleFs(): string[] {
  if (!isRoot()) return [];
  const removed: string[] = [];
  const mounts = readFileSync("/proc/mounts", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[1] ?? "");
  let loops: { name: string; "back-file"?: string | null }[] = [];
  try {
    const out = execFileSync("losetup", ["--list", "--json", "--output", "NAME,BACK-FILE"], { encoding: "utf8" }).trim();
    loops = out ? ((JSON.parse(out) as { loopdevices?: typeof loops }).loopdevices ?? []) : [];
  } catch {
    // no losetup: nothing to detach
  }
  for (const name of readdirSync(tmpdir())) {
    const m = /^cinderts-fs-[a-z0-9]+-(\d+)-/.exec(name);
    if (!m || pidAlive(Number(m[1]))) continue;
    const root = join(tmpdir(), name);
    for (const mp of mounts.filter((x) => x.startsWith(`${root}/`))) {
      try {
        execFileSync("umount", ["-l", mp], { stdio: "ignore" });
      } catch {
        // already gone
      }
    }
    for (const l of loops.filter((x) => (x["back-file"] ?? "").startsWith(`${root}/`))) {
      try {
        execFileSync("losetup", ["-d", l.name], { stdio: "ignore" });
      } catch {
        // already detached
      }
    }
    rmSync(root, { recursive: true, force: true });
    removed.push(root);
  }
  return removed;
}
