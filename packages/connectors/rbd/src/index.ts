import { defineConnector } from "@cinderts/core";
import { RbdConnectorConfig } from "./config.js";
import { RbdConnector } from "./connector.js";

export { RbdConnectorConfig, type RbdConnectorConfigParsed } from "./config.js";
export { RbdConnector, RbdConnectionData, type AttachMethod } from "./connector.js";
export { qmp } from "./qmp.js";

export default defineConnector({
  id: "rbd",
  version: "0.1.0",
  description: "Ceph RBD on this host: kernel rbd, rbd-nbd, or qemu-storage-daemon + FUSE (no kernel module)",
  protocols: ["rbd"],
  configSchema: RbdConnectorConfig,
  create: (config, ctx) => new RbdConnector(config, ctx),
});
