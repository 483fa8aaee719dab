import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

// The built package, as the CLI loads it: better-sqlite3's JavaScript bundled, the installed addon by path.
const dist = pathToFileURL(join(dirname(fileURLToPath(import.meta.url)), "..", "dist", "index.js")).href;
const dir = mkdtempSync(join(tmpdir(), "cinderts-sqlite-dist-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SCRIPT = `
const { default: plugin } = await import(process.argv[1]);
const p = plugin.create(plugin.configSchema.parse({ path: process.argv[2] }), {});
await p.init();
await p.setKey("k", { name: "one" });
const back = await p.getKey("k");
await p.close();
const loaded = Object.keys(process.getBuiltinModule("module").createRequire(import.meta.url).cache);
console.log(JSON.stringify({ name: back?.name, installedJs: loaded.filter((f) => /better-sqlite3[\\\\/]lib[\\\\/]/.test(f)), addon: loaded.filter((f) => f.endsWith("better_sqlite3.node")) }));
`;

describe("built package", () => {
  it("opens a database with the bundled JavaScript and the installed native addon", () => {
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", SCRIPT, dist, join(dir, "state.db")], { encoding: "utf8" });
    const r = JSON.parse(out) as { name?: string; installedJs: string[]; addon: string[] };
    expect(r.name).toBe("one");
    expect(r.installedJs).toEqual([]);
    expect(r.addon).toHaveLength(1);
  });
});
