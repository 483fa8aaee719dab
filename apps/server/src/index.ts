export { CindertsServer, parseServerConfig, type ServerOptions } from "./server.js";
export { ServerConfigSchema, TokenEntrySchema, type ServerConfig, type TokenEntry } from "./config.js";
export { generateToken, hashToken, TokenVerifier, type Principal, type Role } from "./auth.js";
export { openApiDocument } from "./openapi.js";
export { Metrics } from "./metrics.js";
export * as schemas from "./schemas.js";
export { CindertsClient, ApiError, type ClientOptions } from "./client.js";
