import { describe } from "vitest";
import { connectorContract } from "@cinderts/testkit";
import { parseConfig } from "@cinderts/core";
import { RbdConnector, RbdConnectorConfig } from "../src/index.js";
import { ceph, connectorContext, GiB, rbd, testImage } from "./fixture.js";

describe.skipIf(!ceph)("rbd connector on the Ceph testbed", () => {
  connectorContract("rbd via qemu-storage-daemon + FUSE", async () => {
    const cfg = parseConfig(RbdConnectorConfig, { method: "qemu-storage-daemon", keyring: ceph!.CINDERTS_CEPH_KEYRING }, { what: "options" });
    const ctx = await connectorContext();
    const { image, connInfo, remove } = await testImage(1);
    return {
      connector: new RbdConnector(cfg, ctx),
      connInfo,
      sizeBytes: GiB,
      grow: async () => {
        await rbd("resize", "--no-progress", "--pool", ceph!.CINDERTS_RBD_POOL, "--image", image, "--size", "2G");
        return 2 * GiB;
      },
      // same state dir, fresh object: what a restarted process has
      restarted: () => new RbdConnector(cfg, { ...ctx }),
      cleanup: remove,
    };
  });
});
