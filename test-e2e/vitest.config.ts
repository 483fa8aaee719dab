import { packageTestConfig } from "../tooling/tsconfig/vitest.js";

// Every test spawns CLI processes on a real filesystem; two workers keep a 2-core machine responsive.
export default packageTestConfig({
  test: {
    include: ["cli/**/*.test.ts"],
    testTimeout: 180_000,
    hookTimeout: 60_000,
    maxWorkers: 2,
    globalSetup: ["cli/global-setup.ts"],
  },
});
