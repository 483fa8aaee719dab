import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI, REPO, sandbox, type Sandbox } from "./helpers.js";

describe("the README's main job: `cinderts demo`", () => {
  let sb: Sandbox;
  let tmp: string;
  beforeAll(async () => {
    sb = await sandbox("demo");
    tmp = join(sb.dir, "tmp");
    await mkdir(tmp);
  });
  afterAll(async () => {
    await sb.cleanup();
  });

  it("tooling/demo.sh (the README's command) ends by running this CLI's demo", () => {
    const script = readFileSync(join(REPO, "tooling/demo.sh"), "utf8");
    expect(script).toMatch(/^exec node apps\/cli\/dist\/cinderts\.js demo "\$@"$/m);
  });

  it("creates, attaches, writes, snapshots, restores and clones, shows the data and cleans up, printing each step", async () => {
    // The command demo.sh runs after installing and building, from the repository root.
    const r = await execa(process.execPath, [CLI, "demo"], { cwd: REPO, env: { ...sb.env, TMPDIR: tmp }, extendEnv: false, reject: false });
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(r.stderr).toBe("");
    const out = String(r.stdout);
    const steps = out.split("\n").filter((l) => /^\[\d+\] /.test(l));
    expect(steps.map((l) => l.replace(/^\[\d+\] ([^:]+):.*$/, "$1"))).toEqual([
      "data directory",
      "create volume",
      "attach locally",
      "write through the attached path",
      "snapshot",
      "overwrite the source",
      "volume from the snapshot shows the old data",
      "clone of the source shows the new data",
      "clean up",
    ]);
    expect(out).toMatch(/\] volume from the snapshot shows the old data: "cinderts demo: written BEFORE the snapshot"$/m);
    expect(out).toMatch(/\] clone of the source shows the new data: "cinderts demo: written AFTER the snapshot"$/m);
    expect(out).toMatch(/^ID\s+NAME\s+SIZE_GIB\s+STATUS$/m);
    // It used a temporary data dir, removed at the end, and never touched the user's embedded default.
    expect(readdirSync(tmp)).toEqual([]);
    expect(existsSync(sb.dataDir)).toBe(false);
  });

  it("with --json prints one document with every step", async () => {
    const r = await execa(process.execPath, [CLI, "demo", "--json"], { cwd: REPO, env: { ...sb.env, TMPDIR: tmp }, extendEnv: false, reject: false });
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const doc = JSON.parse(String(r.stdout)) as { steps: { step: string; result: Record<string, unknown> }[] };
    const byStep = Object.fromEntries(doc.steps.map((s) => [s.step, s.result]));
    expect(byStep["volume from the snapshot shows the old data"]!.data).toBe("cinderts demo: written BEFORE the snapshot");
    expect(byStep["clone of the source shows the new data"]!.data).toBe("cinderts demo: written AFTER the snapshot");
    expect(byStep["clean up"]).toEqual({ volumes_left: 0, data_dir_removed: true });
  });
});
