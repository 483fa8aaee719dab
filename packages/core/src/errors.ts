/**
 * One error hierarchy for every package. Codes are stable API: the CLI maps them to exit codes,
 * the server to HTTP statuses, and callers branch on `code`, never on message text.
 */

export const ErrorCodes = [
  "INVALID_ARGUMENT",
  "CONFIG_ERROR",
  "PLUGIN_ERROR",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "INVALID_STATE",
  "IN_USE",
  "HAS_DEPENDENTS",
  "CONFLICT",
  "BUSY",
  "LOCK_TIMEOUT",
  "TIMEOUT",
  "BACKEND_ERROR",
  "COMMAND_FAILED",
  "UNSUPPORTED",
  "UNAUTHENTICATED",
  "FORBIDDEN",
  "INTERNAL",
] as const;
export type ErrorCode = (typeof ErrorCodes)[number];

export type ResourceKind = "backend" | "volume" | "snapshot" | "connection" | "node" | "plugin" | "target" | "image";

/** Names the object an error is about. */
export interface ResourceRef {
  kind: ResourceKind;
  id: string;
}

export interface ErrorDetails {
  driver?: string;
  backend?: string;
  resource?: ResourceRef;
  retryable?: boolean;
  cause?: unknown;
  /** Machine-readable extras (validation issues, dependents, exit code …). Never secrets. */
  data?: Record<string, unknown>;
}

// Symbol.for so that two copies of @cinderts/core (a third-party plugin bundling its own) still recognise each other.
const STORAGE_ERROR = Symbol.for("cinderts.StorageError");

export class StorageError extends Error {
  readonly [STORAGE_ERROR] = true;
  readonly code: ErrorCode;
  readonly details: Omit<ErrorDetails, "cause">;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = new.target.name;
    this.code = code;
    const { cause: _cause, ...rest } = details;
    this.details = rest;
  }

  get retryable(): boolean {
    return this.details.retryable ?? false;
  }

  /** A JSON-safe description: what the CLI prints with --json and the server returns as a problem body. */
  toJSON(): Record<string, unknown> {
    return {
      error: this.name,
      code: this.code,
      message: this.message,
      ...(this.details.backend ? { backend: this.details.backend } : {}),
      ...(this.details.driver ? { driver: this.details.driver } : {}),
      ...(this.details.resource ? { resource: this.details.resource } : {}),
      ...(this.details.retryable ? { retryable: true } : {}),
      ...(this.details.data ? { data: this.details.data } : {}),
    };
  }
}

export function isStorageError(e: unknown): e is StorageError {
  return typeof e === "object" && e !== null && (e as Record<symbol, unknown>)[STORAGE_ERROR] === true;
}

/** One entry of a failed validation: where and what was expected. */
export interface ValidationIssue {
  path: string;
  message: string;
}

export class InvalidArgumentError extends StorageError {
  constructor(message: string, details: ErrorDetails & { issues?: ValidationIssue[] } = {}) {
    const { issues, ...rest } = details;
    super("INVALID_ARGUMENT", message, issues ? { ...rest, data: { ...rest.data, issues } } : rest);
  }
  get issues(): ValidationIssue[] {
    return (this.details.data?.issues as ValidationIssue[] | undefined) ?? [];
  }
}

export class ConfigError extends StorageError {
  constructor(message: string, details: ErrorDetails & { issues?: ValidationIssue[]; file?: string } = {}) {
    const { issues, file, ...rest } = details;
    super("CONFIG_ERROR", message, { ...rest, data: { ...rest.data, ...(issues ? { issues } : {}), ...(file ? { file } : {}) } });
  }
}

export class PluginError extends StorageError {
  constructor(message: string, details: ErrorDetails = {}) {
    super("PLUGIN_ERROR", message, details);
  }
}

export class NotFoundError extends StorageError {
  constructor(kind: ResourceKind, id: string, details: ErrorDetails = {}) {
    super("NOT_FOUND", `${kind} ${id} not found`, { ...details, resource: { kind, id } });
  }
}

export class AlreadyExistsError extends StorageError {
  constructor(kind: ResourceKind, id: string, details: ErrorDetails = {}) {
    super("ALREADY_EXISTS", `${kind} ${id} already exists`, { ...details, resource: { kind, id } });
  }
}

/** The object is not in a status that allows the operation (e.g. extend while creating). */
export class InvalidStateError extends StorageError {
  constructor(message: string, details: ErrorDetails = {}) {
    super("INVALID_STATE", message, details);
  }
}

/** The object is attached/connected or otherwise held: the operation needs `force` or a detach first. */
export class InUseError extends StorageError {
  constructor(message: string, details: ErrorDetails = {}) {
    super("IN_USE", message, details);
  }
}

/** Distinct from InUse: a snapshot with clones, a volume with snapshots. Names the dependents. */
export class HasDependentsError extends StorageError {
  constructor(message: string, readonly dependents: ResourceRef[], details: ErrorDetails = {}) {
    super("HAS_DEPENDENTS", message, { ...details, data: { ...details.data, dependents } });
  }
}

/** An optimistic-concurrency update lost the race: re-read and retry. */
export class ConflictError extends StorageError {
  constructor(message: string, details: ErrorDetails = {}) {
    super("CONFLICT", message, { retryable: true, ...details });
  }
}

/** The backend object is busy (watchers, open handles); retrying later may succeed. */
export class BusyError extends StorageError {
  constructor(message: string, details: ErrorDetails = {}) {
    super("BUSY", message, { retryable: true, ...details });
  }
}

export class LockTimeoutError extends StorageError {
  constructor(key: string, timeoutMs: number, details: ErrorDetails = {}) {
    super("LOCK_TIMEOUT", `could not lock ${key} within ${timeoutMs} ms: another operation holds it`, {
      retryable: true,
      ...details,
      data: { ...details.data, key, timeoutMs },
    });
  }
}

export class TimeoutError extends StorageError {
  constructor(message: string, details: ErrorDetails = {}) {
    super("TIMEOUT", message, { retryable: true, ...details });
  }
}

export class BackendError extends StorageError {
  constructor(message: string, details: ErrorDetails = {}) {
    super("BACKEND_ERROR", message, details);
  }
}

/** A command failed. argv is already redacted by whoever built the error. */
export class CommandError extends StorageError {
  constructor(
    readonly argv: readonly string[],
    readonly exitCode: number | null,
    readonly stderrTail: string,
    details: ErrorDetails & { signal?: string; host?: string } = {},
  ) {
    const { signal, host, ...rest } = details;
    const where = host ? ` on ${host}` : "";
    const how = exitCode === null ? `was killed${signal ? ` by ${signal}` : ""}` : `exited with ${exitCode}`;
    const tail = stderrTail.trim() ? `: ${stderrTail.trim().split("\n").slice(-3).join(" | ")}` : "";
    super("COMMAND_FAILED", `command \`${argv.join(" ")}\`${where} ${how}${tail}`, {
      ...rest,
      data: { ...rest.data, argv: [...argv], exitCode, stderr: stderrTail, ...(signal ? { signal } : {}), ...(host ? { host } : {}) },
    });
  }
}

export class UnsupportedError extends StorageError {
  constructor(message: string, details: ErrorDetails = {}) {
    super("UNSUPPORTED", message, details);
  }
}

export class AuthError extends StorageError {
  constructor(message: string, code: "UNAUTHENTICATED" | "FORBIDDEN" = "UNAUTHENTICATED", details: ErrorDetails = {}) {
    super(code, message, details);
  }
}

/** Wraps anything thrown by third-party code into the hierarchy without losing it. */
export function toStorageError(e: unknown, details: ErrorDetails = {}, code: ErrorCode = "INTERNAL"): StorageError {
  if (isStorageError(e)) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new StorageError(code, message, { ...details, cause: e });
}

/** Exit codes of the CLI, one per code family, so scripts can branch without parsing text. */
export const exitCodeFor: Record<ErrorCode, number> = {
  INVALID_ARGUMENT: 2,
  CONFIG_ERROR: 3,
  PLUGIN_ERROR: 3,
  NOT_FOUND: 4,
  ALREADY_EXISTS: 5,
  INVALID_STATE: 5,
  IN_USE: 5,
  HAS_DEPENDENTS: 5,
  CONFLICT: 5,
  BUSY: 6,
  LOCK_TIMEOUT: 6,
  TIMEOUT: 7,
  BACKEND_ERROR: 8,
  COMMAND_FAILED: 8,
  UNSUPPORTED: 9,
  UNAUTHENTICATED: 10,
  FORBIDDEN: 10,
  INTERNAL: 1,
};

/** HTTP statuses for the server's problem bodies. */
export const httpStatusFor: Record<ErrorCode, number> = {
  INVALID_ARGUMENT: 400,
  CONFIG_ERROR: 500,
  PLUGIN_ERROR: 500,
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  INVALID_STATE: 409,
  IN_USE: 409,
  HAS_DEPENDENTS: 409,
  CONFLICT: 409,
  BUSY: 503,
  LOCK_TIMEOUT: 503,
  TIMEOUT: 504,
  BACKEND_ERROR: 502,
  COMMAND_FAILED: 502,
  UNSUPPORTED: 501,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  INTERNAL: 500,
};
