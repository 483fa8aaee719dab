import { createRequire } from "node:module";
import { packageConfig } from "../../../tooling/tsconfig/tsup.js";

/*
 * better-sqlite3's JavaScript is bundled (cold start: see src/database.ts); its native addon is not — it is
 * loaded at run time from the installed package, whose version is pinned to the one bundled here.
 */
const { version } = createRequire(import.meta.url)("better-sqlite3/package.json") as { version: string };

export default packageConfig({
  noExternal: ["better-sqlite3"],
  // only reached when no addon path is given, which src/database.ts never does for the bundled copy
  external: ["bindings"],
  define: { __BUNDLED_BETTER_SQLITE3_VERSION__: JSON.stringify(version) },
  // the bundled CommonJS code calls require() for node's built-ins and for the addon
  banner: { js: 'const require = process.getBuiltinModule("node:module").createRequire(import.meta.url);' },
});
