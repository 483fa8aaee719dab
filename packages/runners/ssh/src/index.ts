import { defineRunner } from "@cinderts/core";
import { SshRunnerConfig } from "./config.js";
import { SshRunner } from "./runner.js";

export { SshRunnerConfig, type SshRunnerOptions, type SshRunnerSettings } from "./config.js";
export { HostKeyError, SshAuthError } from "./errors.js";
export { SshRunner } from "./runner.js";
export { shQuote } from "./quote.js";
export { fingerprintOf } from "./known-hosts.js";

/** `runner: { plugin: "@cinderts/runner-ssh", options: { host, username, privateKeyPath, knownHostsFile } }` */
export default defineRunner({
  id: "ssh",
  version: "0.1.0",
  description: "Runs commands on a remote host over SSH (ssh2): one verified, reused connection per host",
  configSchema: SshRunnerConfig,
  create: (config, ctx) => new SshRunner(config, ctx.logger),
});
