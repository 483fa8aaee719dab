import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { Plugin } from "esbuild";
import { packageConfig } from "../../tooling/tsconfig/tsup.js";

/*
 * zod and js-yaml are bundled into core's dist: zod alone is ~100 ES modules, and resolving and loading them one
 * by one cost the CLI ~80 ms of cold start. Plugins use zod through core's `z` export, so one copy is loaded per
 * process. Their types still come from the packages themselves. js-yaml stays a lazily imported chunk (only YAML
 * manifests need it).
 */
const resolveFromCore = createRequire(import.meta.url);
const zodRoot = dirname(resolveFromCore.resolve("zod/package.json"));

/**
 * zod's `z.locales` namespace carries 64 translations of its messages: 340 KB, nearly half the bundle, parsed
 * on every start. cinderts reports errors in English (zod's default), so only `en` is kept.
 */
const englishOnlyZodLocales: Plugin = {
  name: "zod-english-only",
  setup(build) {
    build.onResolve({ filter: /\/locales\/index\.js$/ }, (args) =>
      args.importer.startsWith(zodRoot) ? { path: "zod-locales-en", namespace: "cinderts-zod-locales" } : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: "cinderts-zod-locales" }, () => ({
      contents: `export { default as en } from ${JSON.stringify(join(zodRoot, "v4/locales/en.js"))};`,
      loader: "js",
      resolveDir: zodRoot,
    }));
  },
};

export default packageConfig({
  noExternal: ["zod", "js-yaml"],
  splitting: true,
  esbuildPlugins: [englishOnlyZodLocales],
  esbuildOptions(options) {
    // Whitespace and syntax only: error classes are reported by name (`{"error":"InvalidArgumentError"}`), and
    // esbuild's keepNames would wrap every one of zod's functions in a call that itself costs start-up time.
    options.minifyWhitespace = true;
    options.minifySyntax = true;
  },
});
