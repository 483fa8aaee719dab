import { packageTestConfig } from "../tooling/tsconfig/vitest.js";

// Server/PostgreSQL end-to-end scenarios (owned with apps/server): `vitest run -c server.vitest.config.ts`.
export default packageTestConfig({
  test: {
    include: ["server/**/*.test.ts"],
    testTimeout: 180_000,
    hookTimeout: 60_000,
    maxWorkers: 1,
    globalSetup: ["cli/global-setup.ts"],
  },
});
