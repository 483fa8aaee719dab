import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

// The built CLI as a user's shell starts it: cold start is the figure of bench/cli, and these are the two costs
// that were removed from it (stream/net modules for stdout, ESM facades of node's built-ins).
const repo = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const cli = join(repo, "apps", "cli", "dist", "cinderts.js");
const dir = mkdtempSync(join(tmpdir(), "cinderts-cli-dist-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Records which of node's own modules the process loaded, at exit.
const recorder = join(dir, "record-modules.cjs");
writeFileSync(
  recorder,
  `process.on("exit", () => require("fs").writeFileSync(process.env.MODULES_OUT, JSON.stringify(process.moduleLoadList)));`,
);

function run(args: string[]) {
  const out = join(dir, `modules-${args.join("-")}.json`);
  const r = spawnSync(process.execPath, ["--require", recorder, cli, ...args], {
    env: { PATH: process.env.PATH, HOME: dir, XDG_DATA_HOME: join(dir, "data"), MODULES_OUT: out },
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
  return { ...r, modules: JSON.parse(readFileSync(out, "utf8")) as string[] };
}

describe("built CLI", () => {
  it("prints `volume list --json` to a pipe without loading node's stream and net modules", () => {
    const r = run(["volume", "list", "--json"]);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([]);
    expect(r.modules).not.toContain("NativeModule net");
    expect(r.modules).not.toContain("NativeModule stream");
    expect(r.modules).not.toContain("NativeModule internal/fs/streams");
  });

  it("reports errors on a piped stderr the same way, one line, with its exit code", () => {
    const r = run(["volume", "show", "no-such-volume"]);
    expect(r.status).toBe(4);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe("cinderts: volume no-such-volume not found\n");
    expect(r.modules).not.toContain("NativeModule net");
  });

  it("has no ESM import of a node built-in left in the bundles it loads", () => {
    const builtIn = /\bfrom\s*"(node:)?(fs|fs\/promises|path|os|url|module|util|child_process|crypto|events|stream)"/;
    for (const file of [cli, join(repo, "packages", "core", "dist", "index.js"), join(repo, "packages", "persistence", "sqlite", "dist", "index.js")]) {
      expect(readFileSync(file, "utf8")).not.toMatch(builtIn);
    }
  });
});
