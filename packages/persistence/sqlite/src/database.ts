import { createRequire } from "node:module";
// In dist this is better-sqlite3's JavaScript bundled into this package (tsup.config.ts); from source (tests) it
// is the installed package itself.
import BundledDatabase from "better-sqlite3";

type DatabaseClass = typeof BundledDatabase;

/** better-sqlite3's version whose JavaScript the build bundled (tsup `define`); undefined when running from source. */
declare const __BUNDLED_BETTER_SQLITE3_VERSION__: string | undefined;
const bundledVersion = typeof __BUNDLED_BETTER_SQLITE3_VERSION__ === "string" ? __BUNDLED_BETTER_SQLITE3_VERSION__ : undefined;

const requireHere = createRequire(import.meta.url);
let loaded: { Database: DatabaseClass; nativeBinding?: string } | undefined;

/*
 * Loading better-sqlite3 as an installed CommonJS package costs the CLI ~20 ms of cold start: a dozen files
 * resolved through pnpm's symlinks, their exports pre-parsed for ESM, and the `bindings` package probing paths
 * for the addon. So its JavaScript is bundled and the addon is handed over by path — but only when the installed
 * package is the very version that was bundled, since the JavaScript and the addon must come from one release.
 * Otherwise the installed package is used as it is.
 */
function load(): { Database: DatabaseClass; nativeBinding?: string } {
  if (bundledVersion === undefined) return { Database: BundledDatabase };
  try {
    const manifest = requireHere.resolve("better-sqlite3/package.json");
    const { version } = requireHere(manifest) as { version: string };
    if (version === bundledVersion) {
      return { Database: BundledDatabase, nativeBinding: manifest.replace(/package\.json$/, "build/Release/better_sqlite3.node") };
    }
  } catch {
    // not resolvable this way: let the package find itself below
  }
  return { Database: requireHere("better-sqlite3") as DatabaseClass };
}

/** Opens a database with better-sqlite3, loaded the cheapest way that is safe (see load()). */
export function openDatabase(file: string, options: BundledDatabase.Options): BundledDatabase.Database {
  loaded ??= load();
  return new loaded.Database(file, loaded.nativeBinding ? { ...options, nativeBinding: loaded.nativeBinding } : options);
}
