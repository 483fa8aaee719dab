import { packageTestConfig } from "../../../tooling/tsconfig/vitest.js";

// Real-cluster cases run many rbd/ceph commands; on a loaded 2-core CI machine one case can take minutes.
export default packageTestConfig({ test: { testTimeout: 300_000, hookTimeout: 300_000 } });
