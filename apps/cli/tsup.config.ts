import { packageConfig } from "../../tooling/tsconfig/tsup.js";

// One ESM file with a shebang: the bin starts fast because node parses a single module of our own code;
// @cinderts/* plugins and zod stay external so that a plugin and the CLI share one copy of core.
export default packageConfig({
  entry: { cinderts: "src/cinderts.ts" },
  dts: false,
  splitting: false,
  banner: { js: "#!/usr/bin/env node" },
});
