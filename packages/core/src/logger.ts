import type { Logger, LogLevel } from "./interfaces.js";
import { redact } from "./validation.js";

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface JsonLoggerOptions {
  level?: LogLevel;
  /** Where lines go; stderr by default so that stdout stays clean for --json output. */
  write?: (line: string) => void;
  bindings?: Record<string, unknown>;
}

/** One JSON object per line; every field passes through redact(), so secrets never reach the sink. */
export function createJsonLogger(opts: JsonLoggerOptions = {}): Logger {
  const min = ORDER[opts.level ?? "info"];
  const write = opts.write ?? ((line: string) => process.stderr.write(line + "\n"));
  const bindings = opts.bindings ?? {};
  const log = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[level] < min) return;
    const plain = JSON.parse(JSON.stringify({ ...bindings, ...fields }, errorReplacer)) as Record<string, unknown>;
    const entry = redact({ time: new Date().toISOString(), level, msg, ...plain });
    write(JSON.stringify(entry));
  };
  return {
    debug: (m, f) => log("debug", m, f),
    info: (m, f) => log("info", m, f),
    warn: (m, f) => log("warn", m, f),
    error: (m, f) => log("error", m, f),
    child: (b) => createJsonLogger({ ...opts, bindings: { ...bindings, ...b } }),
  };
}

function errorReplacer(this: unknown, _key: string, value: unknown): unknown {
  if (value instanceof Error) {
    const withJson = value as Error & { toJSON?: () => unknown };
    return typeof withJson.toJSON === "function" ? withJson.toJSON() : { error: value.name, message: value.message };
  }
  return value;
}

export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLogger;
  },
};
