import { packageTestConfig } from "../../tooling/tsconfig/vitest.js";
// Server tests start processes and talk to PostgreSQL: one file at a time keeps the 2 shared cores usable.
export default packageTestConfig({ test: { fileParallelism: false, testTimeout: 60_000 } });
