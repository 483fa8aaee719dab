export * from "./errors.js";
export * from "./validation.js";
export * from "./records.js";
export * from "./interfaces.js";
export * from "./plugin.js";
export * from "./logger.js";
export * from "./locks.js";
export * from "./util.js";
export * from "./inputs.js";
export * from "./memory.js";
export * from "./objects.js";
export * from "./manifest.js";
export { Backend, type BackendInit, type HostSide } from "./backend.js";
export { Cinderts, DEFAULT_CONNECTORS, DEFAULT_RUNNER, type OpenOptions } from "./cinderts.js";
export * from "./reconcile.js";
export * from "./serialization.js";
/**
 * The schema library every first-party plugin uses, re-exported so that one bundled copy is loaded per process:
 * zod's own package is ~100 ES modules, and resolving them dominated the CLI's cold start.
 */
export { z } from "zod";
