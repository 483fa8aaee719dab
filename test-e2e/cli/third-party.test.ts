import { existsSync, realpathSync } from "node:fs";
import { mkdir, readFile, stat, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GiB, REPO, fails, ok, okJson, sandbox, type ConnectionJson, type Sandbox, type VolumeJson } from "./helpers.js";

/**
 * A driver package as a third party would publish it: its own package.json and an index.mjs that
 * default-exports defineDriver(...) from @cinderts/core. Volumes are plain files in its `dir` option.
 */
const INDEX_MJS = `
import { copyFile, mkdir, rm, truncate, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { defineDriver } from "@cinderts/core";
import { z } from "zod";

const Options = z
  .object({
    dir: z.string().min(1).describe("directory of Acme's volume images"),
    pool: z.string().default("gold").describe("Acme pool name"),
  })
  .strict();

const GiB = 1024 ** 3;

class AcmeDriver {
  constructor(config, ctx) {
    this.dir = resolve(config.dir);
    this.pool = config.pool;
    this.ctx = ctx;
  }
  async setup() {
    await mkdir(this.dir, { recursive: true });
  }
  async getStats() {
    return {
      volume_backend_name: this.ctx.backendName,
      vendor_name: "Acme Storage",
      driver_version: "1.2.3",
      storage_protocol: "file",
      pools: [{ pool_name: this.pool, total_capacity_gb: 100, free_capacity_gb: 42, thin_provisioning_support: true }],
    };
  }
  vol(id) { return join(this.dir, "acme-vol-" + id + ".img"); }
  snap(id) { return join(this.dir, "acme-snap-" + id + ".img"); }
  async createVolume(v) { await writeFile(this.vol(v.id), ""); await truncate(this.vol(v.id), v.size * GiB); }
  async deleteVolume(v) { await rm(this.vol(v.id), { force: true }); }
  async extendVolume(v, size) { await truncate(this.vol(v.id), size * GiB); }
  async createSnapshot(s, v) { await copyFile(this.vol(v.id), this.snap(s.id)); }
  async deleteSnapshot(s) { await rm(this.snap(s.id), { force: true }); }
  async createVolumeFromSnapshot(v, s) { await copyFile(this.snap(s.id), this.vol(v.id)); await truncate(this.vol(v.id), v.size * GiB); }
  async createClonedVolume(v, src) { await copyFile(this.vol(src.id), this.vol(v.id)); await truncate(this.vol(v.id), v.size * GiB); }
  async createExport() {}
  async initializeConnection(v) { return { driver_volume_type: "file", data: { path: this.vol(v.id), volume_id: v.id } }; }
  async terminateConnection() {}
  async removeExport() {}
  validateConnector() {}
}

export default defineDriver({
  id: "acme",
  version: "1.2.3",
  vendor: "Acme Storage",
  description: "Acme arrays (a third-party driver package)",
  configSchema: Options,
  capabilities: { clone: true, thin: true, protocols: ["file"] },
  create: (config, ctx) => new AcmeDriver(config, ctx),
});
`;

async function writePackage(dir: string, name: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(
    join(dir, "package.json"),
    JSON.stringify({ name, version: "1.2.3", type: "module", main: "./index.mjs", exports: { ".": "./index.mjs" }, peerDependencies: { "@cinderts/core": "*" } }, null, 2),
  );
  await writeFile(join(dir, "index.mjs"), INDEX_MJS);
}

describe("a third-party driver package installed beside the manifest loads with no change to this repository", () => {
  let sb: Sandbox;
  let project: string;
  beforeAll(async () => {
    sb = await sandbox("third-party");
    project = join(sb.dir, "project");
    // What `npm install @cinderts/core zod acme-cinderts-driver` would leave beside the manifest.
    await mkdir(join(project, "node_modules", "@cinderts"), { recursive: true });
    await symlink(join(REPO, "packages/core"), join(project, "node_modules/@cinderts/core"));
    await symlink(realpathSync(join(REPO, "packages/core/node_modules/zod")), join(project, "node_modules/zod"));
    await writePackage(join(project, "node_modules", "acme-cinderts-driver"), "acme-cinderts-driver");
    // …and one referenced by path, not installed at all.
    await writePackage(join(project, "vendor", "acme-local"), "acme-local");
    await writeFile(
      join(project, "cinderts.yaml"),
      [
        "persistence:",
        "  plugin: '@cinderts/persistence-sqlite'",
        "  options: { path: ./state.db }",
        "backends:",
        "  - name: acme",
        "    driver: acme-cinderts-driver",
        `    options: { dir: ${join(project, "acme-images")}, pool: silver }`,
        "  - name: acme-by-path",
        "    driver: ./vendor/acme-local",
        `    options: { dir: ${join(project, "acme-by-path")} }`,
        "",
      ].join("\n"),
    );
  });
  afterAll(async () => {
    await sb.cleanup();
  });

  it("driver list shows it with its options as JSON Schema, beside the standard drivers", async () => {
    const drivers = await okJson<{ id?: string; package: string; vendor?: string; version?: string; backends: string[]; error?: string; options_schema?: { properties: Record<string, { description?: string }>; required?: string[] } }[]>(
      sb,
      ["driver", "list"],
      { cwd: project },
    );
    const acme = drivers.find((d) => d.package === "acme-cinderts-driver");
    expect(acme).toMatchObject({ id: "acme", vendor: "Acme Storage", version: "1.2.3", backends: ["acme"] });
    expect(acme!.error).toBeUndefined();
    expect(acme!.options_schema!.properties.dir!.description).toBe("directory of Acme's volume images");
    expect(acme!.options_schema!.required).toEqual(["dir"]);
    expect(drivers.find((d) => d.package === "./vendor/acme-local")).toMatchObject({ id: "acme", backends: ["acme-by-path"] });
    expect(drivers.find((d) => d.package === "@cinderts/driver-file")).toMatchObject({ id: "file", backends: [] });
  });

  it("creates, snapshots, restores, attaches and deletes volumes through it, found from ./cinderts.yaml", async () => {
    // cwd has cinderts.yaml: no --manifest needed.
    const run = <T>(args: string[]) => okJson<T>(sb, args, { cwd: project });
    const stats = await run<{ volume_backend_name: string; pools: { pool_name: string }[] }>(["backend", "stats", "acme"]);
    expect(stats).toMatchObject({ volume_backend_name: "acme", vendor_name: "Acme Storage", pools: [{ pool_name: "silver" }] });

    for (const backend of ["acme", "acme-by-path"]) {
      const dir = join(project, backend === "acme" ? "acme-images" : "acme-by-path");
      const v = await run<VolumeJson>(["volume", "create", "--size", "1", "--backend", backend, "--name", "tp"]);
      expect(v).toMatchObject({ backend, size: 1, status: "available" });
      expect((await stat(join(dir, `acme-vol-${v.id}.img`))).size).toBe(GiB);

      // The standard local connector attaches what the third-party driver exports.
      const conn = await run<ConnectionJson>(["volume", "attach", v.id]);
      expect(conn.path).toBe(join(dir, `acme-vol-${v.id}.img`));
      await writeFile(conn.path!, "acme data");
      const s = await run<{ id: string }>(["snapshot", "create", v.id]);
      const r = await run<VolumeJson>(["volume", "create", "--from-snapshot", s.id]);
      expect(r.backend).toBe(backend);
      expect((await readFile(join(dir, `acme-vol-${r.id}.img`))).subarray(0, 9).toString()).toBe("acme data");
      await run(["volume", "detach", v.id]);

      await run(["snapshot", "delete", s.id]);
      for (const id of [r.id, v.id]) expect((await run<VolumeJson>(["volume", "delete", id])).status).toBe("deleted");
      expect(existsSync(join(dir, `acme-vol-${v.id}.img`))).toBe(false);
    }
    expect(await ok(sb, ["volume", "list", "--quiet"], { cwd: project })).toBe("");
  });

  it("bad options for it are refused by its own schema, naming the file and the field", async () => {
    await writeFile(
      join(project, "bad.yaml"),
      "persistence:\n  plugin: '@cinderts/persistence-memory'\nbackends:\n  - name: acme\n    driver: acme-cinderts-driver\n    options: { pool: silver, colour: red }\n",
    );
    const line = await fails(sb, ["--manifest", "bad.yaml", "backend", "list"], 3, { cwd: project });
    expect(line).toMatch(/^cinderts: bad\.yaml: invalid options for acme-cinderts-driver: /);
    expect(line).toMatch(/backends\[0\]\.options\.dir: /);
    expect(line).toMatch(/backends\[0\]\.options: Unrecognized key: "colour"/);
  });

  it("a package that is not a driver is refused with what was expected", async () => {
    await writeFile(
      join(project, "wrong.yaml"),
      "persistence:\n  plugin: '@cinderts/persistence-memory'\nbackends:\n  - name: x\n    driver: '@cinderts/persistence-memory'\n",
    );
    const line = await fails(sb, ["--manifest", "wrong.yaml", "backend", "list"], 3, { cwd: project });
    expect(line).toMatch(/wrong\.yaml: backends\[0\]\.driver: @cinderts\/persistence-memory is a persistence plugin, but a driver plugin is expected here/);
  });
});
