import { createRequire } from "node:module";
import { defineDriver } from "@cinderts/core";
import { FileDriverOptions } from "./config.js";
import { FileDriver } from "./driver.js";

export { FileDriverOptions, type FileDriverInput } from "./config.js";
export { FileDriver, type CopyMode } from "./driver.js";
export { probeReflink, sparseCopyInProcess, sparseCopyWithCp } from "./copy.js";
export { parseManaged, partialFile, snapshotFile, volumeFile } from "./names.js";

const { version } = createRequire(import.meta.url)("../package.json") as { version: string };

export default defineDriver({
  id: "file",
  version,
  vendor: "cinderts",
  description: "volumes as sparse raw image files in a directory; reflink clones on btrfs/xfs, sparse copies elsewhere",
  configSchema: FileDriverOptions,
  capabilities: {
    clone: true,
    thin: true,
    // Snapshots and volumes made from them are independent files.
    snapshotsWithDependents: "independent",
    onlineExtend: true,
    multiattach: false,
    protocols: ["file"],
  },
  create: (config, ctx) => new FileDriver(config, ctx, version),
});
