import { packageTestConfig } from "../tooling/tsconfig/vitest.js";

// RBD scenarios need the Ceph testbed (tooling/testbeds/ceph/start.sh) and the built CLI + RBD packages:
//   pnpm --filter @cinderts/test-e2e exec vitest run --config rbd.vitest.config.ts
export default packageTestConfig({
  test: {
    include: ["rbd/**/*.test.ts"],
    testTimeout: 300_000,
    hookTimeout: 120_000,
    maxWorkers: 1,
    globalSetup: ["cli/global-setup.ts"],
  },
});
