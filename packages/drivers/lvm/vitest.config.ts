import { packageTestConfig } from "../../../tooling/tsconfig/vitest.js";
// The test-host files share one guest (and clean up its leftovers at start): one file at a time.
export default packageTestConfig({ test: { fileParallelism: false } });
