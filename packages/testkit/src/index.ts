export * from "./env.js";
export * from "./driver.js";
export * from "./connector.js";
export * from "./persistence.js";
export * from "./runners.js";
