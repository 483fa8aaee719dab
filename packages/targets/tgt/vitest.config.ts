import { packageTestConfig } from "../../../tooling/tsconfig/vitest.js";
// The testbed tests share tgtd instances and the qemu-storage-daemon attaches: one file at a time.
export default packageTestConfig({ test: { fileParallelism: false } });
