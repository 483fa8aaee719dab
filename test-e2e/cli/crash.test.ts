import { open } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cli, diskState, okJson, run, sandbox, type ConnectionJson, type Sandbox, type VolumeJson } from "./helpers.js";

const DATA_MIB = 256;

/** Fills the first DATA_MIB MiB with non-zero data so the clone has real blocks to copy (no holes). */
async function fill(path: string): Promise<void> {
  const chunk = Buffer.alloc(4 * 1024 * 1024, 0xa5);
  const fh = await open(path, "r+");
  try {
    for (let off = 0; off < DATA_MIB * 1024 * 1024; off += chunk.length) await fh.write(chunk, 0, chunk.length, off);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

describe("a CLI process killed with SIGKILL in the middle of a clone, then `cinderts reconcile`", () => {
  let sb: Sandbox;
  beforeAll(async () => {
    sb = await sandbox("crash");
  });
  afterAll(async () => {
    await sb.cleanup();
  });

  it("leaves no record stuck in creating, no orphan file, and the next delete works", async () => {
    const src = await okJson<VolumeJson>(sb, ["volume", "create", "--size", "1", "--name", "big-source"]);
    const conn = await okJson<ConnectionJson>(sb, ["volume", "attach", src.id]);
    await fill(conn.path!);
    await okJson(sb, ["volume", "detach", src.id]);

    // CINDERTS_TEST_STALL_COPY freezes the CLI at the copy's first progress report, so the kill lands
    // mid-operation every time rather than whenever the disk happens to be slow.
    const child = cli(sb, ["volume", "create", "--from-volume", src.id, "--name", "doomed", "--json"], { env: { CINDERTS_TEST_STALL_COPY: "1" } });
    await new Promise<void>((resolve, reject) => {
      let seen = "";
      child.stderr!.on("data", (d: Buffer) => {
        seen += d.toString();
        if (seen.includes("cinderts-test: copy stalled")) resolve();
      });
      void child.then(
        (r) => reject(new Error(`the clone finished before it stalled (exit ${r.exitCode}): ${seen}`)),
        reject,
      );
    });

    // Mid-clone, seen from another process: the new volume's record exists and says creating.
    const during = await okJson<VolumeJson[]>(sb, ["volume", "list", "--all"]);
    const doomed = during.find((v) => v.name === "doomed");
    expect(doomed).toMatchObject({ status: "creating", source_volume_id: src.id });

    child.kill("SIGKILL");
    const killed = await child;
    expect(killed.signal).toBe("SIGKILL");

    const report = await okJson<{ actions: { kind: string; id: string; action: string }[]; skipped: unknown[] }>(sb, ["reconcile"]);
    expect(report.skipped).toEqual([]);
    expect(report.actions).toEqual([expect.objectContaining({ kind: "volume", id: doomed!.id, action: expect.stringMatching(/^creating \(clone interrupted\) → error/) })]);

    const after = await okJson<VolumeJson[]>(sb, ["volume", "list", "--all"]);
    expect(after.filter((v) => v.status === "creating")).toEqual([]);
    expect(after.find((v) => v.id === doomed!.id)!.status).toBe("error");
    // No orphan: the only file is the source's; the half-made copy is gone.
    expect(diskState(sb.volumesDir)).toEqual({ volumes: [src.id], snapshots: [], partial: [], other: [] });

    // A second reconcile has nothing left to do.
    expect((await okJson<{ actions: unknown[] }>(sb, ["reconcile"])).actions).toEqual([]);

    // The next delete works, for the failed clone and its source (the dead process's locks are gone).
    expect((await okJson<VolumeJson>(sb, ["volume", "delete", doomed!.id])).status).toBe("deleted");
    expect((await okJson<VolumeJson>(sb, ["volume", "delete", src.id])).status).toBe("deleted");
    expect(diskState(sb.volumesDir).volumes).toEqual([]);
    expect((await run(sb, ["volume", "list", "--json"])).stdout).toBe("[]\n");
  });
});
