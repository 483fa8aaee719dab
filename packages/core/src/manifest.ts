import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { z } from "zod";
import { ConfigError, PluginError, isStorageError } from "./errors.js";
import { PLUGIN_BRAND, assertPlugin, type AnyPlugin, type PluginKind, type PluginOfKind } from "./plugin.js";
import { parseConfig, safeIdentifier } from "./validation.js";

const isPluginObject = (v: unknown): v is AnyPlugin =>
  typeof v === "object" && v !== null && (v as Record<symbol, unknown>)[PLUGIN_BRAND] === true;

/** A package name, a path to a package, or (programmatic use) an imported plugin definition. */
export const PluginSpecSchema = z.union([
  z.string().min(1),
  z.custom<AnyPlugin>(isPluginObject, "must be a package name, a path to a package, or a plugin definition"),
]);
export type PluginSpec = z.infer<typeof PluginSpecSchema>;

/** How a plugin spec is named in messages and dumps. */
export const specName = (spec: PluginSpec): string => (typeof spec === "string" ? spec : `${spec.kind}:${spec.id}`);

const pluginRef = z
  .object({
    plugin: PluginSpecSchema.describe("npm package name or path to a package"),
    options: z.record(z.string(), z.unknown()).default({}).describe("options, checked by the plugin's own schema"),
  })
  .strict();

export const BackendEntrySchema = z
  .object({
    name: safeIdentifier.describe("backend name, unique in the manifest"),
    driver: PluginSpecSchema.describe("driver package (npm name or path)"),
    options: z.record(z.string(), z.unknown()).default({}).describe("driver options, checked by the driver's schema"),
    runner: pluginRef.optional().describe("command runner for this backend (default: @cinderts/runner-local)"),
    target: pluginRef.optional().describe("export layer (iSCSI target helper) for drivers that use one"),
  })
  .strict();
export type BackendEntry = z.infer<typeof BackendEntrySchema>;

/**
 * The manifest: which plugins to load and with what options. Top-level keys other than these are kept
 * for apps (server settings …); each app validates its own section.
 */
export const ManifestSchema = z
  .object({
    persistence: pluginRef.describe("metadata persistence plugin"),
    backends: z
      .array(BackendEntrySchema)
      .min(1, "at least one backend is needed")
      .superRefine((list, ctx) => {
        const seen = new Set<string>();
        list.forEach((b, i) => {
          if (seen.has(b.name)) ctx.addIssue({ code: "custom", message: `duplicate backend name ${b.name}`, path: [i, "name"] });
          seen.add(b.name);
        });
      }),
    connectors: z.array(pluginRef).optional().describe("host connectors (default: those installed among the standard ones)"),
    runner: pluginRef.optional().describe("command runner of the host connectors (default: @cinderts/runner-local)"),
    node_id: safeIdentifier.optional().describe("this host's node id (default: hostname)"),
    state_dir: z.string().optional().describe("directory for plugin state (pid files, sockets)"),
    logging: z
      .object({ level: z.enum(["debug", "info", "warn", "error"]).default("warn") })
      .strict()
      .optional(),
    lock_timeout_ms: z.number().int().positive().optional(),
  })
  .loose();
export type Manifest = z.infer<typeof ManifestSchema>;

export interface LoadedManifest {
  manifest: Manifest;
  /** The file it came from (for error messages and relative paths); undefined for in-memory manifests. */
  file?: string;
  baseDir: string;
}

/** Read and validate a YAML or JSON manifest; errors name the file and the field. */
export async function readManifest(file: string): Promise<LoadedManifest> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    throw new ConfigError(`${file}: cannot read manifest: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, { file, cause: e });
  }
  let raw: unknown;
  try {
    // The YAML parser is loaded only for YAML manifests. js-yaml rather than yaml: a third of the size and of the
    // time to a first parse, which every CLI start pays. CORE_SCHEMA is YAML 1.2's (as `yaml` parsed it): no
    // dates, `yes`/`on` stay strings.
    if (file.endsWith(".json")) raw = JSON.parse(text);
    else {
      const yaml = await import("js-yaml");
      raw = yaml.load(text, { filename: file, schema: yaml.CORE_SCHEMA });
    }
  } catch (e) {
    throw new ConfigError(`${file}: not valid ${file.endsWith(".json") ? "JSON" : "YAML"}: ${(e as Error).message.split("\n")[0]}`, {
      file,
      cause: e,
    });
  }
  return parseManifest(raw, file);
}

export function parseManifest(raw: unknown, file?: string): LoadedManifest {
  const manifest = parseConfig(ManifestSchema, raw, { file, what: "manifest" });
  return { manifest, file, baseDir: file ? dirname(resolve(file)) : process.cwd() };
}

/**
 * Import a plugin by npm name or path and check it is of the expected kind and API version.
 * Resolution order: relative to the manifest, then the app (`fromUrl`), then the working directory — so
 * a third-party package installed beside the manifest or globally with the app loads with no change here.
 */
export async function importPlugin<K extends PluginKind>(
  spec: PluginSpec,
  kind: K,
  opts: { baseDir?: string; fromUrls?: readonly string[]; where?: string } = {},
): Promise<PluginOfKind[K]> {
  const where = opts.where ? `${opts.where}: ` : "";
  if (typeof spec !== "string") return assertPlugin(spec, kind, `${where}${specName(spec)}`);
  const specifier = spec;
  const isPath = specifier.startsWith(".") || isAbsolute(specifier);
  const bases = [
    ...(opts.baseDir ? [pathToFileURL(resolve(opts.baseDir) + "/").href] : []),
    ...(opts.fromUrls ?? []),
    pathToFileURL(process.cwd() + "/").href,
  ];
  let resolved: string | undefined;
  const tried: string[] = [];
  for (const base of bases) {
    try {
      const target = isPath ? resolve(new URL(base).pathname, specifier) : specifier;
      resolved = createRequire(base).resolve(target);
      break;
    } catch (e) {
      tried.push(new URL(base).pathname);
      if ((e as NodeJS.ErrnoException).code !== "MODULE_NOT_FOUND") {
        throw new PluginError(`${where}cannot resolve ${kind} plugin ${specifier}: ${(e as Error).message}`, { cause: e });
      }
    }
  }
  if (!resolved) {
    throw new PluginError(
      `${where}${kind} plugin ${specifier} is not installed (looked from ${tried.join(", ")}); install it with npm/pnpm add ${specifier}`,
      { resource: { kind: "plugin", id: specifier } },
    );
  }
  let mod: unknown;
  try {
    mod = await import(pathToFileURL(resolved).href);
  } catch (e) {
    throw new PluginError(`${where}${kind} plugin ${specifier} failed to load: ${(e as Error).message}`, { cause: e });
  }
  try {
    return assertPlugin(mod, kind, specifier);
  } catch (e) {
    if (isStorageError(e) && where) throw new PluginError(`${where}${e.message}`, { cause: e });
    throw e;
  }
}
