import { defineConnector } from "@cinderts/core";
import { IscsiConnectorConfig } from "./config.js";
import { IscsiConnector } from "./connector.js";

export { IscsiConnectorConfig } from "./config.js";
export { IscsiConnector, type IscsiMethod } from "./connector.js";
export { byPath, IscsiConnData, parseConnInfo, type IscsiPath, type ParsedConn } from "./conninfo.js";
export { KernelInitiator, type KernelHandle } from "./kernel.js";
export { UserspaceInitiator, type UserspaceHandle } from "./userspace.js";

/** Host connector for iSCSI connections (driver_volume_type "iscsi"). */
export default defineConnector({
  id: "iscsi",
  version: "0.1.0",
  description: "iSCSI attach: kernel open-iscsi (/dev/sdX, multipath) or user-space qemu-storage-daemon + FUSE (regular file)",
  protocols: ["iscsi"],
  configSchema: IscsiConnectorConfig,
  create: (config, ctx) => new IscsiConnector(config, ctx),
});
