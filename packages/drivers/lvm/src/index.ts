import { defineDriver } from "@cinderts/core";
import { LvmConfig } from "./config.js";
import { DRIVER_VERSION, LvmDriver } from "./driver.js";

export { LvmConfig } from "./config.js";
export { LvmDriver, names, OWNER_TAG, DRIVER_VERSION } from "./driver.js";
export { Lvm, type LvInfo, type VgInfo } from "./lvm.js";

/** LVM volumes (thick or thin) exported over iSCSI by the backend's target helper (LIO or tgt). */
export default defineDriver({
  id: "lvm",
  version: DRIVER_VERSION,
  description: "LVM logical volumes (thick or thin), exported over iSCSI through LIO or tgt; local or over SSH",
  vendor: "Open Source",
  capabilities: { clone: true, thin: true, snapshotsWithDependents: "independent", onlineExtend: true, multiattach: true, protocols: ["iscsi"] },
  configSchema: LvmConfig,
  create: (config, ctx) => new LvmDriver(config, ctx),
});
