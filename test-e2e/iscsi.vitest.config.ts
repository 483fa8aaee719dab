import { packageTestConfig } from "../tooling/tsconfig/vitest.js";

// Cross-package iSCSI scenario on this machine: driver-file volumes exported by tgt (tgt testbed), attached by
// connector-iscsi in user space. Needs tooling/testbeds/tgt/start.sh and its env file.
export default packageTestConfig({
  test: {
    include: ["iscsi/**/*.test.ts"],
    testTimeout: 300_000,
    hookTimeout: 120_000,
    fileParallelism: false,
  },
});
