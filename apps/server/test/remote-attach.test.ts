import { closeSync, existsSync, openSync, readSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { Cinderts, parseManifest, silentLogger } from "@cinderts/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CindertsClient } from "../src/client.js";
import { ADMIN_TOKEN, READER_TOKEN, dropSchema, mainJs, manifest, pgEnv, scratchSchema, startProcess, tempDir, writeManifest, type ServerProcess } from "./harness.js";

const NODE = hostname();

describe.skipIf(!pgEnv)("controller/consumer: the consumer attaches what the controller exported for it", () => {
  const schema = scratchSchema("remote");
  const dir = tempDir("remote");
  let controller: ServerProcess;
  let consumer: Cinderts;

  beforeAll(async () => {
    if (!existsSync(mainJs)) throw new Error(`${mainJs} is missing: build @cinderts/server first`);
    // Both ends run on this machine: the controller gets a node id of its own, the consumer the host name
    // (the file backend exports only to its own host name, so that is the consumer's connector host).
    const m = await manifest({ schema, volumesDir: join(dir, "volumes"), stateDir: join(dir, "state") });
    const file = writeManifest(dir, { ...m, node_id: "controller" });
    controller = await startProcess(file);
    // The consumer host: its own manifest with its node id and connectors (its backend is unused here).
    consumer = await Cinderts.open(
      parseManifest({
        persistence: { plugin: "@cinderts/persistence-sqlite", options: { path: join(dir, "consumer.db") } },
        backends: [{ name: "unused", driver: "@cinderts/driver-file", options: { path: join(dir, "consumer-volumes") } }],
        connectors: [{ plugin: "@cinderts/connector-local", options: {} }],
        node_id: NODE,
        state_dir: join(dir, "consumer-state"),
      }),
      { resolveFrom: [import.meta.url], lazySetup: true, logger: silentLogger },
    );
  });
  afterAll(async () => {
    await consumer?.close();
    await controller?.stop();
    if (pgEnv) await dropSchema(schema);
  });

  it("register node → connect for it → attach on the node → write → detach → disconnect", async () => {
    const api = new CindertsClient({ url: controller.url, token: ADMIN_TOKEN });
    // 1. The consumer registers its connector properties under its node id.
    const props = await consumer.connectorProperties();
    expect(props.host).toBe(NODE);
    expect(consumer.nodeId).toBe(NODE);
    const node = await api.registerNode(consumer.nodeId, props);
    expect(node.id).toBe(NODE);

    // 2. The controller creates a volume and connects it for that node (export + map, no attach).
    const vol = await api.createVolume({ size: 1, name: "for-consumer" });
    const conn = await api.connect({ volume_id: vol.id, node_id: NODE });
    expect(conn).toMatchObject({ node_id: NODE, status: "connected", attached: false });
    expect((await api.getVolume(vol.id)).status).toBe("in-use");

    // A reader token cannot fetch the connection's secrets, so it cannot attach.
    const reader = new CindertsClient({ url: controller.url, token: READER_TOKEN });
    await expect(reader.attachOnNode(conn.id, consumer)).rejects.toMatchObject({ code: "FORBIDDEN" });

    // 3. The consumer attaches: its own connector runs here, and the attach is recorded on the controller.
    const attached = await api.attachOnNode(conn.id, consumer);
    expect(attached).toMatchObject({ status: "attached", attached: true });
    const path = attached.path!;
    expect(existsSync(path)).toBe(true);
    expect((await api.listConnections({ node_id: NODE })).map((c) => c.id)).toEqual([conn.id]);
    // The controller refuses to disconnect what is attached on another node.
    await expect(api.disconnect(conn.id)).rejects.toMatchObject({ code: "IN_USE" });

    // 4. Write through the attached path; the controller's backend object has the data.
    const data = Buffer.from(`written by consumer at ${Date.now()}`);
    const fd = openSync(path, "r+");
    writeSync(fd, data, 0, data.length, 4096);
    closeSync(fd);
    const back = Buffer.alloc(data.length);
    const fd2 = openSync(join(dir, "volumes", `volume-${vol.id}`), "r");
    readSync(fd2, back, 0, back.length, 4096);
    closeSync(fd2);
    expect(back.equals(data)).toBe(true);

    // 5. Detach on the node, 6. disconnect on the controller.
    const detached = await api.detachOnNode(conn.id, consumer);
    expect(detached).toMatchObject({ status: "connected", attached: false });
    await api.disconnect(conn.id);
    expect(await api.listConnections({ volume_id: vol.id })).toEqual([]);
    expect((await api.getVolume(vol.id)).status).toBe("available");
    await api.deleteVolume(vol.id);
  });
});
