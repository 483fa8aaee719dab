import { createRequire } from "node:module";
import { defineConnector } from "@cinderts/core";
import { ConnectorLocalOptions } from "./config.js";
import { LocalConnector } from "./connector.js";

export { ConnectorLocalOptions } from "./config.js";
export { LocalConnector } from "./connector.js";

const { version } = createRequire(import.meta.url)("../package.json") as { version: string };

export default defineConnector({
  id: "local",
  version,
  description: "attaches file volumes on this host: the file path, or a loop device when asked",
  protocols: ["file"],
  configSchema: ConnectorLocalOptions,
  create: (config, ctx) => new LocalConnector(config, ctx),
});
