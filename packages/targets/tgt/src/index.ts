import { defineTarget } from "@cinderts/core";
import { TgtConfig } from "./config.js";
import { TgtTarget } from "./target.js";

export { TgtConfig } from "./config.js";
export { TgtTarget, TGT_LUN } from "./target.js";
export { parseShowTarget, Tgtadm, type TgtLun, type TgtTargetState } from "./tgtadm.js";

/** iSCSI target helper for tgt: `targets: tgt` in a manifest, or `create()` from a driver that exports files/devices. */
export default defineTarget({
  id: "tgt",
  version: "0.1.0",
  description: "iSCSI export through tgt (tgtadm): LUN 1, per-volume CHAP, per-initiator ACL, targets.conf persistence",
  protocol: "iscsi",
  configSchema: TgtConfig,
  create: (config, ctx) => new TgtTarget(config, ctx),
});
