import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { main, type IO } from "../src/main.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** main() in-process with captured output and a private, initially empty XDG_DATA_HOME. */
async function cli(args: string[]) {
  const xdg = mkdtempSync(join(tmpdir(), "cinderts-cli-unit-"));
  dirs.push(xdg);
  let stdout = "";
  let stderr = "";
  const io: IO = {
    stdout: (s) => void (stdout += s),
    stderr: (s) => void (stderr += s),
    readStdin: async () => "",
    env: { HOME: xdg, XDG_DATA_HOME: xdg },
    cwd: xdg,
    interactive: false,
    columns: 80,
  };
  const code = await main(args, io);
  return { code, stdout, stderr, dataDir: join(xdg, "cinderts") };
}

describe("main", () => {
  it("prints usage for --help (exit 0) and for no command (exit 2)", async () => {
    const help = await cli(["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^cinderts — /);
    for (const c of ["backend stats", "driver list", "volume create", "volume connect", "snapshot delete", "connection disconnect", "connector validate", "state load", "reconcile", "demo"]) {
      expect(help.stdout).toContain(`  ${c}`);
    }
    const none = await cli([]);
    expect(none.code).toBe(2);
    expect(none.stdout).toBe(help.stdout);
  });

  it("prints a command's own options for COMMAND --help", async () => {
    const r = await cli(["volume", "create", "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^usage: cinderts volume create --size GIB/);
    expect(r.stdout).toMatch(/--from-snapshot ID\s+new volume with the data of this snapshot/);
  });

  it("refuses bad input before it resolves a manifest: the embedded default's data dir is not even created", async () => {
    for (const args of [
      ["volume", "create", "--size", "-1"],
      ["volume", "create", "--size", "1", "--name", "a\u0007b"],
      ["volume", "extend", "x"],
      ["snapshot", "create", "bad/id"],
      ["reconcile", "--stale-after", "soon"],
    ]) {
      const r = await cli(args);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stdout).toBe("");
      expect(r.stderr).toMatch(/^cinderts: [^\n]+\n$/);
      expect(existsSync(r.dataDir)).toBe(false);
    }
  });

  it("names the commands of a group when the action is unknown", async () => {
    const r = await cli(["snapshot", "explode"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('cinderts: unknown command "snapshot explode"; snapshot commands: create, list, show, delete\n');
  });

  it("with --json, an error is a JSON document on stderr", async () => {
    const r = await cli(["--json", "nope"]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(JSON.parse(r.stderr)).toEqual({ error: { error: "InvalidArgumentError", code: "INVALID_ARGUMENT", message: 'unknown command "nope" (see cinderts --help)' } });
  });
});
