// Shared vitest preset: resolve workspace packages to their TypeScript sources so that
// tests never run against a stale dist/ of a dependency.
import { defineConfig } from "vitest/config";

export function packageTestConfig(overrides = {}) {
  const { test = {}, ...rest } = overrides;
  return defineConfig({
    resolve: { conditions: ["@cinderts/source"] },
    ssr: { resolve: { conditions: ["@cinderts/source"] } },
    test: { testTimeout: 30_000, hookTimeout: 60_000, ...test },
    ...rest,
  });
}
