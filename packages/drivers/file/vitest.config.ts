import { packageTestConfig } from "../../../tooling/tsconfig/vitest.js";
export default packageTestConfig({ test: { globalSetup: ["./test/global-setup.ts"] } });
