import { defineTarget } from "@cinderts/core";
import { LioConfig } from "./config.js";
import { LioTarget } from "./target.js";

export { LioConfig } from "./config.js";
export { LioTarget, LIO_LUN, type LioExportState } from "./target.js";
export { LIO_SCRIPT, lioArgv, type LioOp } from "./script.js";

/** iSCSI target helper for the Linux kernel target (LIO), through configfs. */
export default defineTarget({
  id: "lio",
  version: "0.1.0",
  description: "iSCSI export through LIO configfs: one call per operation, per-initiator ACL with CHAP, saveconfig.json for targetctl restore",
  protocol: "iscsi",
  configSchema: LioConfig,
  create: (config, ctx) => new LioTarget(config, ctx),
});
