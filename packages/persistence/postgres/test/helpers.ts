import { silentLogger } from "@cinderts/core";
import { testbedEnv } from "@cinderts/testkit";
import pg from "pg";
import { PostgresConfig } from "../src/config.js";
import { PostgresPersistence } from "../src/persistence.js";

/** The testbed's URL, or undefined (skip locally; testbedEnv throws in CI). */
export const pgEnv = testbedEnv("postgres", ["CINDERTS_PG_URL"]);

/** A schema name unique to this test run, so that test files running in parallel never share tables. */
export function scratchSchema(tag: string): string {
  return `t_${tag}_${process.pid}_${Date.now().toString(36)}`.toLowerCase().replace(/[^a-z0-9_]/g, "_");
}

export function makePersistence(schema: string, extra: Record<string, unknown> = {}): PostgresPersistence {
  const config = PostgresConfig.parse({ url: pgEnv!.CINDERTS_PG_URL, schema, ...extra });
  return new PostgresPersistence(config, silentLogger);
}

export async function dropSchema(schema: string): Promise<void> {
  const c = new pg.Client({ connectionString: pgEnv!.CINDERTS_PG_URL });
  await c.connect();
  try {
    await c.query(`drop schema if exists "${schema}" cascade`);
  } finally {
    await c.end();
  }
}
