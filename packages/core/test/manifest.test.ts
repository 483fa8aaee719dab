import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { importPlugin, isStorageError, readManifest, type StorageError } from "../src/index.js";

// A third-party package brings its own (built) copy of core: the brand check must not depend on identity.
const coreUrl = pathToFileURL(join(import.meta.dirname, "../dist/index.js")).href;

const made: string[] = [];
afterAll(() => Promise.all(made.map((d) => rm(d, { recursive: true, force: true }))));

async function tmp(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "cinderts-manifest-"));
  made.push(dir);
  return dir;
}

async function fails(p: Promise<unknown>): Promise<StorageError> {
  const e = await p.then(() => undefined, (x: unknown) => x);
  if (!isStorageError(e)) throw new Error(`expected StorageError, got ${String(e)}`);
  return e;
}

describe("manifest", () => {
  it("reads the issue's example YAML as written", async () => {
    const dir = await tmp();
    const file = join(dir, "cinderts.yaml");
    await writeFile(
      file,
      `persistence:\n  plugin: '@cinderts/persistence-sqlite'\n  options: { path: ./state.db }\nbackends:\n  - name: local\n    driver: '@cinderts/driver-file'\n    options: { path: ./volumes }\n`,
    );
    const { manifest, baseDir } = await readManifest(file);
    expect(baseDir).toBe(dir);
    expect(manifest.backends[0]).toMatchObject({ name: "local", driver: "@cinderts/driver-file", options: { path: "./volumes" } });
  });

  it("names the file, the field and what was expected", async () => {
    const dir = await tmp();
    const cases: [string, RegExp][] = [
      ["backends: []\npersistence: {plugin: x}\n", /backends: at least one backend/],
      ["persistence: {plugin: x}\nbackends:\n  - {name: 'a b', driver: d}\n", /backends\.0\.name/],
      ["persistence: {plugin: x}\nbackends:\n  - {name: a, driver: d, opts: {}}\n", /backends\.0: Unrecognized key/],
      ["persistence: {plugin: x}\nbackends:\n  - {name: a, driver: d}\n  - {name: a, driver: d}\n", /duplicate backend name a/],
      ["persistence: [unclosed\n", /not valid YAML/],
    ];
    for (const [i, [text, re]] of cases.entries()) {
      const file = join(dir, `m${i}.yaml`);
      await writeFile(file, text);
      const e = await fails(readManifest(file));
      expect(e.code).toBe("CONFIG_ERROR");
      expect(e.message).toContain(file);
      expect(e.message).toMatch(re);
    }
    expect((await fails(readManifest(join(dir, "missing.yaml")))).message).toMatch(/cannot read manifest: ENOENT/);
  });
});

describe("plugin loading", () => {
  async function pkg(dir: string, name: string, body: string) {
    const root = join(dir, "node_modules", name);
    await mkdir(root, { recursive: true });
    await writeFile(join(root, "package.json"), JSON.stringify({ name, version: "1.0.0", type: "module", main: "index.js" }));
    await writeFile(join(root, "index.js"), body);
  }

  it("loads a third-party plugin installed beside the manifest and checks its kind and API version", async () => {
    const dir = await tmp();
    const define = `import { defineDriver } from ${JSON.stringify(coreUrl)};\nimport { z } from "zod";\n`;
    await pkg(dir, "acme-driver", `${define}export default defineDriver({ id: "acme", version: "1.0.0", description: "", vendor: "Acme", capabilities: {}, configSchema: z.object({}), create: () => ({}) });`);
    await pkg(dir, "not-a-plugin", `export default { hello: 1 };`);
    await pkg(dir, "future-driver", `${define}export default defineDriver({ id: "future", apiVersion: 99, version: "1.0.0", description: "", vendor: "", capabilities: {}, configSchema: z.object({}), create: () => ({}) });`);
    // zod for the fixture packages: link the workspace copy.
    await mkdir(join(dir, "node_modules"), { recursive: true });
    const { symlink } = await import("node:fs/promises");
    await symlink(join(import.meta.dirname, "../node_modules/zod"), join(dir, "node_modules/zod"));

    const p = await importPlugin("acme-driver", "driver", { baseDir: dir });
    expect(p).toMatchObject({ kind: "driver", id: "acme", vendor: "Acme" });
    expect((await fails(importPlugin("not-a-plugin", "driver", { baseDir: dir }))).message).toMatch(/not a cinderts plugin/);
    expect((await fails(importPlugin("acme-driver", "persistence", { baseDir: dir }))).message).toMatch(/is a driver plugin, but a persistence plugin is expected/);
    expect((await fails(importPlugin("future-driver", "driver", { baseDir: dir }))).message).toMatch(/needs plugin API version 99/);
    expect((await fails(importPlugin("@acme/absent", "driver", { baseDir: dir, where: "m.yaml: backends[0].driver" }))).message).toMatch(
      /m\.yaml: backends\[0\]\.driver: driver plugin @acme\/absent is not installed/,
    );
    // A path to a package works as well as a name.
    expect((await importPlugin(join(dir, "node_modules/acme-driver"), "driver")).id).toBe("acme");
  });
});
