import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createJsonLogger, InProcessLockManager, type ConnectionInfo, type ConnectorContext } from "@cinderts/core";
import { createLocalRunner } from "@cinderts/runner-local";
import { testbedEnv } from "@cinderts/testkit";
import { afterAll } from "vitest";

export const ceph = testbedEnv("ceph", ["CEPH_CONF", "CINDERTS_RBD_POOL", "CINDERTS_CEPH_KEYRING"]);
export const GiB = 1024 ** 3;

export const rbd = async (...args: string[]) => (await createLocalRunner().run(["rbd", "--conf", ceph!.CEPH_CONF, ...args])).stdout;

// State folders made for the tests' connectors; by the end of a file every attach has been undone.
const stateDirs: string[] = [];
afterAll(() => Promise.all(stateDirs.map((d) => rm(d, { recursive: true, force: true }).catch(() => undefined))));

export async function connectorContext(stateDir?: string): Promise<ConnectorContext> {
  const store = new Map<string, unknown>();
  if (!stateDir) stateDirs.push((stateDir = await mkdtemp(join(tmpdir(), "cinderts-rbd-conn-"))));
  return {
    logger: createJsonLogger({ level: "error" }),
    runner: createLocalRunner(),
    locks: new InProcessLockManager(),
    stateDir,
    kv: {
      get: async (k) => store.get(k),
      set: async (k, v) => void store.set(k, v),
      delete: async (k) => void store.delete(k),
      list: async (p = "") => [...store.keys()].filter((k) => k.startsWith(p)),
    },
    nodeId: "test-node",
    baseDir: "/tmp",
  };
}

/** A fresh image on the testbed and the connection info the RBD driver would return for it. */
export async function testImage(sizeGiB = 1, opts: { keyring?: string } = {}): Promise<{ image: string; connInfo: ConnectionInfo; remove: () => Promise<void> }> {
  const image = `conn-test-${randomUUID()}`;
  await rbd("create", "--pool", ceph!.CINDERTS_RBD_POOL, "--image", image, "--size", `${sizeGiB}G`);
  const dump = JSON.parse(
    (await createLocalRunner().run(["ceph", "--conf", ceph!.CEPH_CONF, "mon", "dump", "--format", "json"])).stdout,
  ) as { fsid: string; mons: { addr: string }[] };
  const addrs = dump.mons.map((m) => m.addr.replace(/\/\d+$/, ""));
  const connInfo: ConnectionInfo = {
    driver_volume_type: "rbd",
    data: {
      name: `${ceph!.CINDERTS_RBD_POOL}/${image}`,
      hosts: addrs.map((a) => a.slice(0, a.lastIndexOf(":"))),
      ports: addrs.map((a) => a.slice(a.lastIndexOf(":") + 1)),
      cluster_name: "ceph",
      auth_enabled: true,
      auth_username: "admin",
      secret_type: "ceph",
      secret_uuid: dump.fsid,
      volume_id: image,
      discard: true,
      ...(opts.keyring !== undefined ? { keyring: opts.keyring } : {}),
    },
  };
  return { image, connInfo, remove: () => removeImage(image) };
}

/**
 * Remove a test image. A client that was killed keeps its watch for ~30 s; blocklisting its address (what librbd
 * does itself to break a dead client's lock) ends it at once.
 */
export async function removeImage(image: string): Promise<void> {
  const pool = ceph!.CINDERTS_RBD_POOL;
  try {
    await rbd("rm", "--no-progress", "--pool", pool, "--image", image);
  } catch {
    const st = JSON.parse(await rbd("status", "--format", "json", "--pool", pool, "--image", image)) as { watchers: { address: string }[] };
    for (const w of st.watchers) {
      await createLocalRunner().run(["ceph", "--conf", ceph!.CEPH_CONF, "osd", "blocklist", "add", w.address, "60"]);
    }
    await rbd("rm", "--no-progress", "--pool", pool, "--image", image);
  }
}
