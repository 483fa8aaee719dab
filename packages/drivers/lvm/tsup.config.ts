import { packageConfig } from "../../../tooling/tsconfig/tsup.js";
export default packageConfig();
