import { packageTestConfig } from "../tooling/tsconfig/vitest.js";

// LVM scenarios need the QEMU test host (tooling/testbeds/testhost/boot.sh start; source its env file) and the
// built CLI + LVM/LIO/iSCSI/ssh packages:
//   pnpm --filter @cinderts/test-e2e exec vitest run --config lvm.vitest.config.ts
export default packageTestConfig({
  test: {
    include: ["lvm/**/*.test.ts"],
    testTimeout: 1_200_000,
    hookTimeout: 300_000,
    maxWorkers: 1,
    globalSetup: ["cli/global-setup.ts"],
  },
});
