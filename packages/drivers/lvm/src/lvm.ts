import { BackendError, CommandError, isStorageError, type CommandRunner, type RunOptions, type RunResult } from "@cinderts/core";

export interface LvInfo {
  name: string;
  /** Bytes. */
  size: number;
  attr: string;
  pool: string;
  origin: string;
  dataPercent?: number;
  tags: string[];
}

export interface VgInfo {
  name: string;
  size: number;
  free: number;
  lvCount: number;
  uuid: string;
}

const NOT_FOUND = /not found|Failed to find/;

/** Bytes as LVM reports them with `--units b --nosuffix` (JSON values are strings, maybe "123B"). */
function bytes(v: unknown): number {
  const n = Number(String(v ?? "").replace(/B$/i, ""));
  return Number.isFinite(n) ? n : 0;
}

interface Report<T> {
  report: { [k: string]: T[] }[];
}

/**
 * The LVM command line, as Cinder's brick/local_dev/lvm.py runs it: `env LC_ALL=C` so output is parseable,
 * reports in JSON (`--reportformat json`), and a retry of LVM's segfault exit 139 (LP 1901783).
 */
export class Lvm {
  constructor(
    private readonly runner: CommandRunner,
    private readonly root: boolean,
  ) {}

  async run(argv: string[], opts: RunOptions = {}): Promise<RunResult> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.runner.run(["env", "LC_ALL=C", ...argv], { root: this.root, ...opts });
      } catch (e) {
        const code = e instanceof CommandError ? e.exitCode : undefined;
        if (code === 139 && attempt < 3) {
          await new Promise((r) => setTimeout(r, 500));
          continue;
        }
        throw e;
      }
    }
  }

  async version(): Promise<string> {
    const r = await this.run(["lvm", "version"]);
    const m = /LVM version:\s*(\d+\.\d+\.\d+)/.exec(r.stdout);
    if (!m) throw new BackendError("cannot read the LVM version");
    return m[1]!;
  }

  async vg(vg: string): Promise<VgInfo | undefined> {
    let r: RunResult;
    try {
      r = await this.run(["vgs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o", "vg_name,vg_size,vg_free,lv_count,vg_uuid", vg]);
    } catch (e) {
      if (isStorageError(e) && NOT_FOUND.test(String((e.details.data as { stderr?: string })?.stderr))) return undefined;
      throw e;
    }
    const row = (JSON.parse(r.stdout) as Report<Record<string, string>>).report[0]?.vg?.[0];
    if (!row) return undefined;
    return { name: row.vg_name!, size: bytes(row.vg_size), free: bytes(row.vg_free), lvCount: Number(row.lv_count), uuid: row.vg_uuid! };
  }

  /** LVs of the VG, or just one (`vg/lv`); a missing LV is an empty list, not an error. */
  async lvs(vg: string, lv?: string): Promise<LvInfo[]> {
    let r: RunResult;
    try {
      r = await this.run([
        "lvs",
        "--reportformat",
        "json",
        "--units",
        "b",
        "--nosuffix",
        "-o",
        "lv_name,lv_size,lv_attr,pool_lv,origin,data_percent,lv_tags",
        lv ? `${vg}/${lv}` : vg,
      ]);
    } catch (e) {
      if (isStorageError(e) && NOT_FOUND.test(String((e.details.data as { stderr?: string })?.stderr))) return [];
      throw e;
    }
    const rows = (JSON.parse(r.stdout) as Report<Record<string, string>>).report[0]?.lv ?? [];
    return rows.map((row) => ({
      name: row.lv_name!,
      size: bytes(row.lv_size),
      attr: row.lv_attr ?? "",
      pool: row.pool_lv ?? "",
      origin: row.origin ?? "",
      ...(row.data_percent ? { dataPercent: Number(row.data_percent) } : {}),
      tags: row.lv_tags ? row.lv_tags.split(",") : [],
    }));
  }

  async lv(vg: string, lv: string): Promise<LvInfo | undefined> {
    return (await this.lvs(vg, lv)).find((l) => l.name === lv);
  }

  /** lvremove tolerant of udev races (LP 1270192): retry once after `udevadm settle`, ignoring suspended devices. */
  async remove(vg: string, lv: string): Promise<void> {
    const base = "activation { retry_deactivation = 1 }";
    try {
      await this.run(["lvremove", "--config", base, "-f", `${vg}/${lv}`]);
    } catch (e) {
      if (isStorageError(e) && NOT_FOUND.test(String((e.details.data as { stderr?: string })?.stderr))) return;
      await this.runner.run(["udevadm", "settle"], { root: this.root }).catch(() => undefined);
      await this.run(["lvremove", "--config", `${base} devices { ignore_suspended_devices = 1 }`, "-f", `${vg}/${lv}`]);
    }
  }

  activate(vg: string, lv: string, opts: { ignoreSkip?: boolean; clearSkip?: boolean } = {}): Promise<RunResult> {
    return this.run([
      "lvchange",
      "-a",
      "y",
      "--yes",
      ...(opts.ignoreSkip ? ["-K"] : []),
      ...(opts.clearSkip ? ["-k", "n"] : []),
      `${vg}/${lv}`,
    ]);
  }
}
