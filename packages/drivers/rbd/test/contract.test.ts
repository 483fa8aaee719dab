import { describe } from "vitest";
import { driverContract } from "@cinderts/testkit";
import connectorRbd from "@cinderts/connector-rbd";
import driverRbd from "../src/index.js";
import { ceph, transportsUnderTest } from "./cluster.js";

/**
 * The cinderlib functional scenarios against the Ceph testbed, attaching through the rbd connector (on this
 * host: qemu-storage-daemon + FUSE). The keyring travels in the connection info as cinderlib sends it.
 */
const transports = await transportsUnderTest();

describe.skipIf(!ceph)("rbd", () => {
  for (const transport of transports) {
    driverContract({
      name: `rbd (${transport} transport)`,
      driver: driverRbd,
      options: {
        pool: ceph?.CINDERTS_RBD_POOL,
        conf: ceph?.CEPH_CONF,
        user: "admin",
        keyring: ceph?.CINDERTS_CEPH_KEYRING,
        connectionKeyring: true,
        transport,
      },
      connectors: [{ plugin: connectorRbd }],
      resolveFrom: import.meta.url,
      timeoutMs: 180_000,
    });
  }
});
