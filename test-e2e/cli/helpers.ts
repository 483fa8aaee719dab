import { existsSync, readdirSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { execa, type Options as ExecaOptions } from "execa";
import { expect } from "vitest";

export const REPO = fileURLToPath(new URL("../..", import.meta.url));
/** The built CLI, run as a user runs it: `node apps/cli/dist/cinderts.js`. */
export const CLI = join(REPO, "apps/cli/dist/cinderts.js");

export interface VolumeJson {
  id: string;
  name: string | null;
  backend: string;
  size: number;
  status: string;
  source_volume_id: string | null;
  snapshot_id: string | null;
  created_at: string;
}
export interface SnapshotJson {
  id: string;
  name: string | null;
  volume_id: string;
  volume_size: number;
  status: string;
}
export interface ConnectionJson {
  id: string;
  volume_id: string;
  protocol: string;
  connector: Record<string, unknown>;
  conn_info: { driver_volume_type: string; data: Record<string, unknown> } | null;
  path?: string;
  attached: boolean;
}

/** One user's world: a HOME and XDG_DATA_HOME of its own, so the embedded default lives in a temp dir. */
export interface Sandbox {
  dir: string;
  env: Record<string, string>;
  /** $XDG_DATA_HOME/cinderts: the embedded default's data dir. */
  dataDir: string;
  /** Where the embedded default's file backend keeps volume-<id> and snapshot-<id> files. */
  volumesDir: string;
  cleanup(): Promise<void>;
}

export async function sandbox(name: string): Promise<Sandbox> {
  const dir = await mkdtemp(join(tmpdir(), `cinderts-e2e-${name}-`));
  const home = join(dir, "home");
  const xdg = join(dir, "xdg");
  await mkdir(home);
  await mkdir(join(dir, "work"));
  const dataDir = join(xdg, "cinderts");
  return {
    dir,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: home, XDG_DATA_HOME: xdg, LANG: "C.UTF-8" },
    dataDir,
    volumesDir: join(dataDir, "volumes"),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI as a separate process, in the sandbox's working dir, with only the sandbox's env. */
export function cli(sb: Sandbox, args: readonly string[], opts: { input?: string; env?: Record<string, string>; cwd?: string } = {}) {
  const o: ExecaOptions = {
    cwd: opts.cwd ?? join(sb.dir, "work"),
    env: { ...sb.env, ...opts.env },
    extendEnv: false,
    reject: false,
    stripFinalNewline: false,
    ...(opts.input !== undefined ? { input: opts.input } : { stdin: "ignore" }),
  };
  return execa(process.execPath, [CLI, ...args], o);
}

export async function run(sb: Sandbox, args: readonly string[], opts?: Parameters<typeof cli>[2]): Promise<RunResult> {
  const r = await cli(sb, args, opts);
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** Succeeds with nothing on stderr, or fails the test showing what the CLI said. */
export async function ok(sb: Sandbox, args: readonly string[], opts?: Parameters<typeof cli>[2]): Promise<string> {
  const r = await run(sb, args, opts);
  if (r.exitCode !== 0) throw new Error(`cinderts ${args.join(" ")} exited ${r.exitCode}: ${r.stderr}`);
  expect(r.stderr).toBe("");
  return r.stdout;
}

export async function okJson<T>(sb: Sandbox, args: readonly string[], opts?: Parameters<typeof cli>[2]): Promise<T> {
  return JSON.parse(await ok(sb, [...args, "--json"], opts)) as T;
}

/**
 * A failure as the issue wants it: non-zero exit (the expected one), nothing on stdout, exactly one line on
 * stderr, no stack trace. Returns that line.
 */
export async function fails(sb: Sandbox, args: readonly string[], exitCode: number, opts?: Parameters<typeof cli>[2]): Promise<string> {
  const r = await run(sb, args, opts);
  expect(r.exitCode, `cinderts ${args.join(" ")}: ${r.stderr}`).toBe(exitCode);
  expect(r.stdout).toBe("");
  const lines = r.stderr.split("\n").filter((l) => l !== "");
  expect(lines, r.stderr).toHaveLength(1);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  return lines[0]!;
}

/** What the file backend holds on disk, by kind; partial copies separately. */
export function diskState(volumesDir: string): { volumes: string[]; snapshots: string[]; partial: string[]; other: string[] } {
  const out = { volumes: [] as string[], snapshots: [] as string[], partial: [] as string[], other: [] as string[] };
  if (!existsSync(volumesDir)) return out;
  for (const name of readdirSync(volumesDir)) {
    const m = /^(\.partial-)?(volume|snapshot)-(.+)$/.exec(name);
    if (!m) out.other.push(name);
    else if (m[1]) out.partial.push(name);
    else (m[2] === "volume" ? out.volumes : out.snapshots).push(m[3]!);
  }
  out.volumes.sort();
  out.snapshots.sort();
  return out;
}

export const GiB = 1024 ** 3;
