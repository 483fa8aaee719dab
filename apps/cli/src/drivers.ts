import { existsSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { importPlugin, isStorageError, z, type DriverPlugin, type LoadedManifest } from "@cinderts/core";

/** How a manifest's driver entry is named: its package, or kind:id for an in-process definition. */
const specName = (spec: unknown): string =>
  typeof spec === "string" ? spec : `${(spec as { kind: string }).kind}:${(spec as { id: string }).id}`;

export interface DriverInfo {
  id?: string;
  package: string;
  version?: string;
  vendor?: string;
  description?: string;
  capabilities?: Record<string, unknown>;
  /** Backends of the manifest that use this driver. */
  backends: string[];
  /** The driver's options as JSON Schema (cinderlib's list_supported_drivers lists its config options). */
  options_schema?: unknown;
  /** Set when the package is installed but does not load. */
  error?: string;
}

/** @cinderts/driver-* packages visible from a module: every node_modules on its resolution path. */
export function standardDriverPackages(fromUrl: string): string[] {
  const found = new Set<string>();
  const paths = createRequire(fromUrl).resolve.paths("@cinderts/driver-x") ?? [];
  for (const dir of paths) {
    const scope = join(dir, "@cinderts");
    if (!existsSync(scope)) continue;
    for (const name of readdirSync(scope)) if (name.startsWith("driver-")) found.add(`@cinderts/${name}`);
  }
  return [...found].sort();
}

async function jsonSchemaOf(plugin: DriverPlugin): Promise<unknown> {
  try {
    return z.toJSONSchema(plugin.configSchema, { io: "input", unrepresentable: "any" });
  } catch (e) {
    return { description: `schema not representable as JSON Schema: ${(e as Error).message}` };
  }
}

/**
 * Installed drivers: those the manifest names (resolved as the manifest would) plus the standard ones
 * resolvable from the CLI. A package that fails to load is listed with its error instead of failing the list.
 */
export async function listDrivers(loaded: LoadedManifest, cliUrl: string): Promise<DriverInfo[]> {
  const byKey = new Map<string, DriverInfo>();
  const add = async (spec: Parameters<typeof importPlugin>[0], opts: Parameters<typeof importPlugin>[2], backend?: string) => {
    const key = specName(spec);
    let info = byKey.get(key);
    if (!info) {
      info = { package: key, backends: [] };
      byKey.set(key, info);
      try {
        const p = await importPlugin(spec, "driver", opts);
        Object.assign(info, {
          id: p.id,
          version: p.version,
          vendor: p.vendor,
          description: p.description,
          capabilities: { ...p.capabilities },
          options_schema: await jsonSchemaOf(p),
        });
      } catch (e) {
        info.error = isStorageError(e) || e instanceof Error ? e.message : String(e);
      }
    }
    if (backend) info.backends.push(backend);
  };
  for (const [i, b] of loaded.manifest.backends.entries()) {
    await add(b.driver, { baseDir: loaded.baseDir, fromUrls: [cliUrl], where: loaded.file ? `${loaded.file}: backends[${i}].driver` : undefined }, b.name);
  }
  for (const pkg of standardDriverPackages(cliUrl)) await add(pkg, { fromUrls: [cliUrl] });
  return [...byKey.values()];
}
