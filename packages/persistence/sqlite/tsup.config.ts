import { packageConfig } from "../../../tooling/tsconfig/tsup.js";
// The native binding must be resolved at run time from the installed package, never bundled.
export default packageConfig({ external: ["better-sqlite3"] });
