import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "@cinderts/core";
import { persistenceContract } from "@cinderts/testkit";
import { afterAll } from "vitest";
import sqlite from "../src/index.js";

const root = mkdtempSync(join(tmpdir(), "cinderts-sqlite-contract-"));
let n = 0;
afterAll(() => rmSync(root, { recursive: true, force: true }));

// A fresh database file per test, opened through the plugin exactly as the host does (relative path + baseDir).
persistenceContract(
  () => sqlite.create(sqlite.configSchema.parse({ path: `db-${n++}/state.db` }), { logger: silentLogger, baseDir: root }),
  { name: "sqlite", locks: true },
);
