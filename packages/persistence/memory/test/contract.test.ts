import { InProcessLockManager, silentLogger } from "@cinderts/core";
import { lockManagerContract, persistenceContract } from "@cinderts/testkit";
import { describe, expect, it } from "vitest";
import memory, { MemoryOptions, MemoryPersistence } from "../src/index.js";

const plugin = memory;
const ctx = { logger: silentLogger, baseDir: process.cwd() };

persistenceContract(() => plugin.create(plugin.configSchema.parse({}), ctx), { name: "memory" });

// The memory store has no `locks`, so the host falls back to core's in-process manager: prove that one
// keeps the same contract a cross-process manager must.
lockManagerContract(() => new InProcessLockManager(), { name: "in-process (host default for memory)" });

describe("@cinderts/persistence-memory plugin", () => {
  it("is a persistence plugin with id memory and a strict empty schema", () => {
    expect(plugin.kind).toBe("persistence");
    expect(plugin.id).toBe("memory");
    expect(plugin.configSchema.safeParse({}).success).toBe(true);
    const bad = plugin.configSchema.safeParse({ path: "./x" });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0]?.code).toBe("unrecognized_keys");
  });

  it("creates an independent store each time", async () => {
    const a = plugin.create(MemoryOptions.parse({}), ctx);
    const b = plugin.create(MemoryOptions.parse({}), ctx);
    expect(a).toBeInstanceOf(MemoryPersistence);
    await a.setKey("k", 1);
    expect(await b.getKey("k")).toBeUndefined();
    expect(await a.getKey("k")).toBe(1);
  });
});
