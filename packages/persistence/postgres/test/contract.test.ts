import { persistenceContract } from "@cinderts/testkit";
import { afterAll, describe } from "vitest";
import { dropSchema, makePersistence, pgEnv, scratchSchema } from "./helpers.js";

// The shared contract every persistence runs, here against the real PostgreSQL of the testbed.
describe.skipIf(!pgEnv)("PostgreSQL persistence contract", () => {
  const schema = scratchSchema("contract");
  afterAll(() => dropSchema(schema));
  persistenceContract(() => makePersistence(schema), { name: "postgres", locks: true });
});
