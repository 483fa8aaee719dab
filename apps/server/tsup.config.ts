import { packageConfig } from "../../tooling/tsconfig/tsup.js";
export default packageConfig({ entry: ["src/index.ts", "src/client.ts", "src/main.ts"] });
