import { existsSync, mkdirSync } from "node:fs";
import { homedir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { parseManifest, readManifest, type LoadedManifest } from "@cinderts/core";

export const DEFAULT_MANIFEST_FILE = "cinderts.yaml";
export const DEFAULT_PERSISTENCE = "@cinderts/persistence-sqlite";
export const DEFAULT_DRIVER = "@cinderts/driver-file";

/** $XDG_DATA_HOME/cinderts, or ~/.local/share/cinderts (XDG says: ignore a relative XDG_DATA_HOME). */
export function defaultDataDir(env: NodeJS.ProcessEnv): string {
  const xdg = env.XDG_DATA_HOME;
  const base = xdg && isAbsolute(xdg) ? xdg : join(env.HOME || homedir(), ".local", "share");
  return join(base, "cinderts");
}

/**
 * The embedded default: one file backend named `default` with SQLite beside it, all under dataDir.
 * Built as a plain manifest object so that it goes through the same validation as a user's file.
 */
export function embeddedManifest(dataDir: string): LoadedManifest {
  const raw = {
    persistence: { plugin: DEFAULT_PERSISTENCE, options: { path: join(dataDir, "cinderts.db") } },
    backends: [{ name: "default", driver: DEFAULT_DRIVER, options: { path: join(dataDir, "volumes") } }],
    state_dir: join(dataDir, "state"),
  };
  // baseDir is the data dir, not the working directory: the default plugins come from the CLI's own install,
  // never from whatever project the user happens to stand in.
  return { ...parseManifest(raw), baseDir: dataDir };
}

export type ManifestSource = "flag" | "cwd" | "env" | "embedded";

/**
 * --manifest FILE, else ./cinderts.yaml, else $CINDERTS_MANIFEST, else the embedded default.
 * Only the embedded default creates anything (its data directory).
 */
export async function resolveManifest(
  flag: string | undefined,
  env: NodeJS.ProcessEnv,
  cwd: string,
): Promise<{ loaded: LoadedManifest; source: ManifestSource }> {
  // Keep the path as typed when we can: error messages then name the file the way the user wrote it.
  const asTyped = (f: string) => (cwd === process.cwd() ? f : resolve(cwd, f));
  if (flag) return { loaded: await readManifest(asTyped(flag)), source: "flag" };
  const local = resolve(cwd, DEFAULT_MANIFEST_FILE);
  if (existsSync(local)) return { loaded: await readManifest(local), source: "cwd" };
  if (env.CINDERTS_MANIFEST) return { loaded: await readManifest(asTyped(env.CINDERTS_MANIFEST)), source: "env" };
  const dataDir = defaultDataDir(env);
  mkdirSync(dataDir, { recursive: true });
  return { loaded: embeddedManifest(dataDir), source: "embedded" };
}
