import { defineDriver } from "@cinderts/core";
import { RbdConfig } from "./config.js";
import { DRIVER_VERSION, RbdDriver } from "./driver.js";
import { makeRbdClient } from "./transport.js";

export { RbdConfig, type RbdConfigInput, type RbdConfigParsed } from "./config.js";
export { RbdDriver, DRIVER_VERSION, type ClientFactory } from "./driver.js";
export { CliRbdClient, cephArgs, parseMonAddr, type CephArgs } from "./cli-client.js";
export * from "./client.js";
export { OWNER_KEY, DELETED_SUFFIX, CLONE_SNAP_SUFFIX, volumeImage, snapshotName, cloneSnapName, volumeIdOf } from "./names.js";
export { makeRbdClient, NATIVE_PACKAGE } from "./transport.js";

export default defineDriver({
  id: "rbd",
  version: DRIVER_VERSION,
  description: "Ceph RBD: thin images, COW clones and snapshots; attach with krbd, rbd-nbd or qemu-storage-daemon",
  vendor: "Open Source",
  configSchema: RbdConfig,
  capabilities: {
    clone: true,
    thin: true,
    snapshotsWithDependents: "flatten",
    onlineExtend: true,
    multiattach: true,
    protocols: ["rbd"],
  },
  create: (config, ctx) => new RbdDriver(config, ctx, makeRbdClient),
});
