// One fresh process: load cinderts, open a manifest with the RBD backend, create a 1 GiB volume, delete it.
// Timed from outside by rbd-bench.mjs (includes node start-up and module loading).
import { Cinderts, MemoryPersistence, definePersistence, parseManifest, z } from "../../packages/core/dist/index.js";
import driverRbd from "../../packages/drivers/rbd/dist/index.js";
import runnerLocal from "../../packages/runners/local/dist/index.js";

const transport = process.argv[2] ?? "auto";
const memory = definePersistence({
  id: "bench-memory",
  version: "0",
  description: "in-memory persistence",
  configSchema: z.object({}).strict(),
  create: () => new MemoryPersistence(),
});
const ct = await Cinderts.open(
  parseManifest({
    persistence: { plugin: memory, options: {} },
    backends: [
      {
        name: "ceph",
        driver: driverRbd,
        options: { pool: process.env.CINDERTS_RBD_POOL ?? "volumes", conf: process.env.CEPH_CONF, user: "admin", transport },
        runner: { plugin: runnerLocal, options: {} },
      },
    ],
    connectors: [],
  }),
);
const b = ct.backend("ceph");
const v = await b.createVolume({ size: 1 });
await b.deleteVolume(v.id);
const used = b.driver.transport;
await ct.close();
// One synchronous write, as the CLI prints: console.log would build process.stdout (node's stream and net
// modules, ~7 ms) for this one line to the harness, which is not cinderts's cost.
process.getBuiltinModule("node:fs").writeSync(1, `ok ${used}\n`);
