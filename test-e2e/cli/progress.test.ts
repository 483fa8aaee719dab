import { open } from "node:fs/promises";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI, okJson, run, sandbox, type ConnectionJson, type Sandbox, type VolumeJson } from "./helpers.js";

/** Runs the CLI on a pseudo-terminal (util-linux `script`), as a person at a terminal would. */
async function onTerminal(sb: Sandbox, args: string[]): Promise<{ exitCode: number; output: string }> {
  // script takes one command string; every word here is ours (node's path, the CLI's path, uuids, flags).
  const command = [process.execPath, CLI, ...args].map((a) => `'${a}'`).join(" ");
  const r = await execa("script", ["-qefc", command, "/dev/null"], {
    cwd: sb.dir,
    env: { ...sb.env, COLUMNS: "100", TERM: "xterm" },
    extendEnv: false,
    reject: false,
    stdin: "ignore",
  });
  return { exitCode: r.exitCode ?? -1, output: String(r.stdout) };
}

describe("progress bar for long copies", () => {
  let sb: Sandbox;
  let source: VolumeJson;
  beforeAll(async () => {
    sb = await sandbox("progress");
    source = await okJson<VolumeJson>(sb, ["volume", "create", "--size", "1"]);
    const conn = await okJson<ConnectionJson>(sb, ["volume", "attach", source.id]);
    const fh = await open(conn.path!, "r+");
    const chunk = Buffer.alloc(4 * 1024 * 1024, 0x5a);
    for (let i = 0; i < 32; i++) await fh.write(chunk, 0, chunk.length, i * chunk.length);
    await fh.close();
    await okJson(sb, ["volume", "detach", source.id]);
  });
  afterAll(async () => {
    await sb.cleanup();
  });

  it("is drawn on a terminal while a clone copies, ending at 100%", async () => {
    const r = await onTerminal(sb, ["volume", "create", "--from-volume", source.id]);
    expect(r.exitCode, r.output).toBe(0);
    expect(r.output).toMatch(/\rcloning \[#+\] 100% [\d.]+ [KMG]?i?B\/[\d.]+ [KMG]?i?B/);
    expect(r.output).toMatch(/^status\s+available\s*$/m);
  });

  it("is never drawn with --json, even on a terminal, nor when output is not a terminal", async () => {
    const json = await onTerminal(sb, ["volume", "create", "--from-volume", source.id, "--json"]);
    expect(json.exitCode, json.output).toBe(0);
    expect(json.output).not.toContain("cloning [");
    expect(JSON.parse(json.output.replace(/\r/g, ""))).toMatchObject({ source_volume_id: source.id, status: "available" });

    const piped = await run(sb, ["volume", "create", "--from-volume", source.id]);
    expect(piped.exitCode).toBe(0);
    expect(piped.stderr).toBe("");
    expect(piped.stdout).not.toContain("cloning [");
  });
});
