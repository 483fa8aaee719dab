import { existsSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { importPlugin, specName, type LoadedManifest, type PluginSpec } from "@cinderts/core";
import { z } from "@cinderts/core";

export interface DriverInfo {
  package: string;
  id?: string;
  version?: string;
  vendor?: string;
  description?: string;
  capabilities?: Record<string, unknown>;
  backends: string[];
  options_schema?: unknown;
  error?: string;
}

/** @cinderts/driver-* packages on the resolution path of a module. */
function standardDriverPackages(fromUrl: string): string[] {
  const found = new Set<string>();
  for (const dir of createRequire(fromUrl).resolve.paths("@cinderts/driver-x") ?? []) {
    const scope = join(dir, "@cinderts");
    if (!existsSync(scope)) continue;
    for (const name of readdirSync(scope)) if (name.startsWith("driver-")) found.add(`@cinderts/${name}`);
  }
  return [...found].sort();
}

/** Drivers the manifest uses plus the standard ones installed beside the server, with their option schemas. */
export async function listDrivers(loaded: LoadedManifest, fromUrl: string): Promise<DriverInfo[]> {
  const byKey = new Map<string, DriverInfo>();
  const add = async (spec: PluginSpec, backend?: string) => {
    const key = specName(spec);
    let info = byKey.get(key);
    if (!info) {
      info = { package: key, backends: [] };
      byKey.set(key, info);
      try {
        const p = await importPlugin(spec, "driver", { baseDir: loaded.baseDir, fromUrls: [fromUrl] });
        let options_schema: unknown;
        try {
          options_schema = z.toJSONSchema(p.configSchema, { io: "input", unrepresentable: "any" });
        } catch (e) {
          options_schema = { description: `not representable as JSON Schema: ${(e as Error).message}` };
        }
        Object.assign(info, {
          id: p.id,
          version: p.version,
          vendor: p.vendor,
          description: p.description,
          capabilities: { ...p.capabilities },
          options_schema,
        });
      } catch (e) {
        info.error = (e as Error).message;
      }
    }
    if (backend) info.backends.push(backend);
  };
  for (const b of loaded.manifest.backends) await add(b.driver, b.name);
  for (const pkg of standardDriverPackages(fromUrl)) await add(pkg);
  return [...byKey.values()];
}
