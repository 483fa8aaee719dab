import { execFileSync } from "node:child_process";
import { InProcessLockManager, silentLogger, type ConnectorContext, type KeyValueStore } from "@cinderts/core";
import { createLocalRunner } from "@cinderts/runner-local";
import { ConnectorLocalOptions } from "../src/config.js";
import { LocalConnector } from "../src/connector.js";

export function memoryKv(store = new Map<string, unknown>()): KeyValueStore {
  return {
    get: async (k) => store.get(k),
    set: async (k, v) => void store.set(k, v),
    delete: async (k) => void store.delete(k),
    list: async (p = "") => [...store.keys()].filter((k) => k.startsWith(p)),
  };
}

/** A connector over a key-value map; pass the same map to get the same persisted state (a "restart"). */
export function makeConnector(options: Partial<ConnectorLocalOptions> = {}, store = new Map<string, unknown>()): LocalConnector {
  const ctx: ConnectorContext = {
    logger: silentLogger,
    runner: createLocalRunner(),
    locks: new InProcessLockManager(),
    stateDir: "/nonexistent-state-dir",
    kv: memoryKv(store),
    nodeId: "test-node",
    baseDir: "/nonexistent-base-dir",
  };
  return new LocalConnector(ConnectorLocalOptions.parse(options), ctx);
}

/** Loop tests need root and losetup: skip locally without them, fail in CI. */
export function skipUnlessLoop(): boolean {
  let why: string | undefined;
  if (process.getuid?.() !== 0) why = "needs root";
  else {
    try {
      execFileSync("losetup", ["--version"], { stdio: "ignore" });
    } catch {
      why = "losetup is missing";
    }
  }
  if (!why) return false;
  if (process.env.CI) throw new Error(`loop device tests are required in CI but ${why}`);
  return true;
}

/** Loop devices backed by this file, from `losetup -j` (independent of the connector's own check). */
export function loopsOf(file: string): string[] {
  const out = execFileSync("losetup", ["-j", file], { encoding: "utf8" });
  return out
    .split("\n")
    .filter(Boolean)
    .map((l) => l.slice(0, l.indexOf(":")));
}
