import { packageTestConfig } from "../../../tooling/tsconfig/vitest.js";
export default packageTestConfig();
