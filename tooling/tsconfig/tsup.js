// Shared tsup preset: every package builds ESM + .d.ts from src/index.ts the same way.
import { defineConfig } from "tsup";
import { builtinsWithoutFacades } from "./builtins.js";

export function packageConfig(overrides = {}) {
  const { esbuildPlugins = [], ...rest } = overrides;
  return defineConfig({
    entry: ["src/index.ts"],
    format: ["esm"],
    dts: true,
    sourcemap: true,
    clean: true,
    target: "node20",
    esbuildPlugins: [builtinsWithoutFacades, ...esbuildPlugins],
    ...rest,
  });
}
