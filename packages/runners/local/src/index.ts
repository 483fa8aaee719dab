import { createRequire } from "node:module";
import { defineRunner, parseConfig, type Logger } from "@cinderts/core";
import { RunnerLocalOptions, type RunnerLocalInput } from "./config.js";
import { LocalRunner } from "./runner.js";

export { RunnerLocalOptions, type RunnerLocalInput } from "./config.js";
export { KILL_GRACE_MS, LocalRunner, STDERR_TAIL_CHARS, type LocalRunnerDeps } from "./runner.js";

const { version } = createRequire(import.meta.url)("../package.json") as { version: string };

/** A runner for library use and tests, without a manifest: options are checked by the same schema. */
export function createLocalRunner(options: RunnerLocalInput = {}, deps: { logger?: Logger; isRoot?: boolean } = {}): LocalRunner {
  return new LocalRunner(parseConfig(RunnerLocalOptions, options, { what: "options for @cinderts/runner-local" }), deps);
}

export default defineRunner({
  id: "local",
  version,
  description: "runs commands on this host with execa (argv arrays, never a shell), optionally through a root helper such as sudo",
  configSchema: RunnerLocalOptions,
  create: (config, ctx) => new LocalRunner(config, { logger: ctx.logger }),
});
