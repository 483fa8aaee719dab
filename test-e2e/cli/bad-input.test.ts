import { randomUUID } from "node:crypto";
import { readdirSync, statSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { diskState, fails, okJson, run, sandbox, type Sandbox, type SnapshotJson, type VolumeJson } from "./helpers.js";

/** Everything a bad command could have changed: records (also deleted ones) and files of the backend. */
async function everything(sb: Sandbox) {
  const files = readdirSync(sb.volumesDir)
    .sort()
    .map((f) => {
      const s = statSync(join(sb.volumesDir, f));
      return `${f}:${s.size}:${s.mtimeMs}`;
    });
  return {
    volumes: await okJson<VolumeJson[]>(sb, ["volume", "list", "--all"]),
    snapshots: await okJson<SnapshotJson[]>(sb, ["snapshot", "list", "--all"]),
    connections: await okJson<unknown[]>(sb, ["connection", "list"]),
    files,
  };
}

describe("bad input exits non-zero with one clear line on stderr and changes nothing", () => {
  let sb: Sandbox;
  let vol: VolumeJson;
  let snap: SnapshotJson;
  let before: Awaited<ReturnType<typeof everything>>;

  beforeAll(async () => {
    sb = await sandbox("bad-input");
    vol = await okJson<VolumeJson>(sb, ["volume", "create", "--size", "1", "--name", "keep-me"]);
    snap = await okJson<SnapshotJson>(sb, ["snapshot", "create", vol.id]);
    await writeFile(join(sb.dir, "work", "broken.yaml"), "persistence:\n  plugin: '@cinderts/persistence-sqlite'\nbackends:\n  - name: x\n    driver: 42\n");
    await writeFile(join(sb.dir, "work", "not-yaml.yaml"), "backends: [unclosed\n");
    await writeFile(join(sb.dir, "work", "bad-options.yaml"),
      "persistence:\n  plugin: '@cinderts/persistence-sqlite'\n  options: { path: ./s.db }\nbackends:\n  - name: local\n    driver: '@cinderts/driver-file'\n    options: { path: ./v, reflink: sometimes }\n");
    before = await everything(sb);
    expect(before.volumes).toHaveLength(1);
    expect(diskState(sb.volumesDir).volumes).toEqual([vol.id]);
  });
  afterAll(async () => {
    await sb.cleanup();
  });

  const unknown = randomUUID();
  const cases: [string, () => string[], number, RegExp][] = [
    ["negative size", () => ["volume", "create", "--size", "-1"], 2, /^cinderts: invalid volume: size: must be at least 1 GiB$/],
    ["zero size", () => ["volume", "create", "--size=0"], 2, /size: must be at least 1 GiB/],
    ["non-integer size", () => ["volume", "create", "--size", "1.5"], 2, /size: must be a whole number of GiB/],
    ["size that is not a number", () => ["volume", "create", "--size", "ten"], 2, /--size: must be a whole number of GiB, not "ten"/],
    ["missing size", () => ["volume", "create"], 2, /--size is required/],
    ["extend to a smaller size", () => ["volume", "extend", vol.id, "--size", "1"], 2, /must be larger than the current 1 GiB/],
    ["extend by a fraction", () => ["volume", "extend", vol.id, "--size", "2.5"], 2, /size: must be a whole number of GiB/],
    ["unknown backend", () => ["volume", "create", "--size", "1", "--backend", "nope"], 4, /^cinderts: backend nope not found$/],
    ["unknown backend in a list", () => ["volume", "list", "--backend", "nope"], 4, /backend nope not found/],
    ["unknown volume id (show)", () => ["volume", "show", unknown], 4, new RegExp(`^cinderts: volume ${unknown} not found$`)],
    ["unknown volume id (delete)", () => ["volume", "delete", unknown], 4, /not found/],
    ["unknown volume id (attach)", () => ["volume", "attach", unknown], 4, /not found/],
    ["unknown volume id (snapshot)", () => ["snapshot", "create", unknown], 4, /not found/],
    ["unknown snapshot to restore", () => ["volume", "create", "--from-snapshot", unknown], 4, new RegExp(`snapshot ${unknown} not found`)],
    ["unknown snapshot id (delete)", () => ["snapshot", "delete", unknown], 4, /not found/],
    ["an id that is not an id", () => ["volume", "create", "--size", "1", "--from-volume", "../etc"], 2, /source_volume_id: must be an id/],
    ["a name with control characters", () => ["volume", "create", "--size", "1", "--name", "evil\u001b[2Jname"], 2, /^cinderts: invalid volume: name: must not contain control characters$/],
    ["a snapshot name with a newline", () => ["snapshot", "create", vol.id, "--name", "two\nlines"], 2, /name: must not contain control characters/],
    ["both sources", () => ["volume", "create", "--from-snapshot", snap.id, "--from-volume", vol.id], 2, /either a snapshot or a source volume, not both/],
    ["a volume with snapshots without force", () => ["volume", "delete", vol.id], 5, /has 1 snapshot\(s\); delete them first or use force/],
    ["detach of a volume not attached", () => ["volume", "detach", vol.id], 5, /is not attached on this node/],
    ["malformed manifest: wrong field type", () => ["--manifest", "broken.yaml", "volume", "list"], 3, /^cinderts: broken\.yaml: invalid manifest: backends\.0\.driver: /],
    ["malformed manifest: not YAML", () => ["--manifest", "not-yaml.yaml", "volume", "create", "--size", "1"], 3, /^cinderts: not-yaml\.yaml: not valid YAML/],
    ["malformed manifest: driver options", () => ["--manifest", "bad-options.yaml", "volume", "create", "--size", "1"], 3, /^cinderts: bad-options\.yaml: invalid options for @cinderts\/driver-file: backends\[0\]\.options\.reflink: /],
    ["missing manifest", () => ["--manifest", "nope.yaml", "volume", "list"], 3, /^cinderts: nope\.yaml: cannot read manifest: ENOENT$/],
    ["connector that is not JSON", () => ["connector", "validate", "--connector", "-"], 2, /--connector \(stdin\): not valid JSON/],
    ["unknown command", () => ["volume", "explode"], 2, /unknown command "volume explode"; volume commands: create, list/],
    ["unknown option", () => ["volume", "list", "--colour"], 2, /^cinderts: Unknown option '--colour'$/],
    ["extra argument", () => ["volume", "show", vol.id, "extra"], 2, /unexpected argument "extra"/],
  ];

  it.each(cases)("%s", async (_what, args, code, message) => {
    const line = await fails(sb, args(), code, { input: "{not json" });
    expect(line).toMatch(message);
    expect(line).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/); // the terminal is safe from what the user typed
  });

  it("--json errors are one JSON document on stderr and stdout stays empty", async () => {
    const r = await run(sb, ["volume", "create", "--size", "-3", "--json"]);
    expect(r.exitCode).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(JSON.parse(r.stderr)).toEqual({
      error: {
        error: "InvalidArgumentError",
        code: "INVALID_ARGUMENT",
        message: "invalid volume: size: must be at least 1 GiB",
        data: { issues: [{ path: "size", message: "must be at least 1 GiB" }] },
      },
    });
    const nf = await run(sb, ["--json", "volume", "show", unknown]);
    expect(nf.exitCode).toBe(4);
    expect(JSON.parse(nf.stderr).error).toMatchObject({ code: "NOT_FOUND", resource: { kind: "volume", id: unknown } });
  });

  it("shows a stack trace only with CINDERTS_DEBUG=1", async () => {
    const r = await run(sb, ["volume", "show", unknown], { env: { CINDERTS_DEBUG: "1" } });
    expect(r.exitCode).toBe(4);
    expect(r.stderr).toMatch(/^cinderts: volume .* not found\n/);
    expect(r.stderr).toMatch(/\n\s+at /);
  });

  // Runs last (tests of a file run in order): every bad command above changed nothing.
  it("left records and files exactly as they were (names, sizes, mtimes)", async () => {
    expect(await everything(sb)).toEqual(before);
  });
});
