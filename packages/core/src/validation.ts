import { z } from "zod";
import { ConfigError, InvalidArgumentError, type ValidationIssue } from "./errors.js";

/** Schema fields registered here are redacted in logs, errors and dumps. */
// Global so that a plugin bundling its own copy of core marks its secrets where the host looks for them.
const REGISTRY_KEY = Symbol.for("cinderts.secretRegistry");
export const secretRegistry: ReturnType<typeof z.registry<{ secret: true }>> = ((globalThis as Record<symbol, unknown>)[REGISTRY_KEY] ??=
  z.registry<{ secret: true }>()) as ReturnType<typeof z.registry<{ secret: true }>>;

/** A string option that is a secret (password, CHAP secret, key, token). */
export function secret(): z.ZodString {
  const s = z.string().min(1).describe("secret: redacted in logs and dumps");
  secretRegistry.add(s, { secret: true });
  return s;
}

export function issuesOf(error: z.ZodError, prefix = ""): ValidationIssue[] {
  return error.issues.map((i) => ({
    path: [prefix, ...i.path.map(String)].filter(Boolean).join("."),
    message: i.message,
  }));
}

function describeIssues(issues: ValidationIssue[]): string {
  return issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join("; ");
}

/**
 * zod compiles a parser for an object schema the first time it parses one (generated code through `new
 * Function`): ~10 ms for the handful a CLI run or a short script uses, against a fraction of a millisecond saved
 * per later parse. So a schema is interpreted until it has been parsed HOT_AFTER times; a server, which parses the
 * same inputs all day, gets compiled parsers for those. (The CLI turns compilation off altogether.)
 */
const HOT_AFTER = 16;
const INTERPRETED = { jitless: true } as const;
const parseCounts = new WeakMap<object, number>();

function compileWhenHot(schema: z.ZodType): { jitless: boolean } | undefined {
  const n = (parseCounts.get(schema) ?? 0) + 1;
  if (n > HOT_AFTER) return undefined;
  parseCounts.set(schema, n);
  return INTERPRETED;
}

/**
 * Parse input at a public entry point. Bad input becomes an InvalidArgumentError that names every field,
 * thrown before anything is changed.
 */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const r = schema.safeParse(input, compileWhenHot(schema));
  if (r.success) return r.data;
  const issues = issuesOf(r.error);
  throw new InvalidArgumentError(`invalid ${what}: ${describeIssues(issues)}`, { issues });
}

/** Parse configuration (manifest, plugin options): a ConfigError that names the file and every field. */
export function parseConfig<S extends z.ZodType>(
  schema: S,
  input: unknown,
  where: { file?: string; path?: string; what: string },
): z.output<S> {
  // Configuration is parsed once per process: a compiled parser would never be used again.
  const r = schema.safeParse(input, INTERPRETED);
  if (r.success) return r.data;
  const issues = issuesOf(r.error, where.path);
  const loc = where.file ? `${where.file}: ` : "";
  throw new ConfigError(`${loc}invalid ${where.what}: ${describeIssues(issues)}`, { issues, file: where.file });
}

// Control characters (C0, DEL, C1) in names end up in terminals, logs and command lines: refuse them.
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;

/** A user-given display name: free text, but no control characters and a sane length. */
export const displayName = z
  .string()
  .min(1, "must not be empty")
  .max(255, "must be at most 255 characters")
  .refine((s) => !CONTROL_CHARS.test(s), "must not contain control characters");

/** Names that reach a command line or a backend object name (backend names, pools, VGs). */
export const safeIdentifier = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/, "must be 1-128 of A-Z a-z 0-9 _ . : - and start with a letter or digit");

/** Size in whole GiB, as Cinder counts it. */
export const sizeGiB = z
  .number({ error: "must be a number of GiB" })
  .int("must be a whole number of GiB")
  .positive("must be at least 1 GiB")
  .max(1024 * 1024, "must be at most 1 PiB");

export const uuid = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, "must be a UUID");

/** Key names whose values are secrets wherever they appear (conn_info, options, connector props). */
const SECRET_KEY = /(pass(word|phrase)?|secret|token|private_?key|credential|auth_key|^key$|keyring)$/i;

export const REDACTED = "***";

export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

function unwrap(schema: z.ZodType): z.ZodType {
  let s: z.ZodType = schema;
  // optional/default/nullable wrappers hide the registered schema
  for (let i = 0; i < 8; i++) {
    const def = (s as unknown as { _zod: { def: { type: string; innerType?: z.ZodType } } })._zod.def;
    if (def.innerType && ["optional", "default", "nullable", "prefault", "readonly", "catch"].includes(def.type)) {
      s = def.innerType;
    } else break;
  }
  return s;
}

function secretKeysOf(schema: z.ZodType | undefined): Set<string> {
  const keys = new Set<string>();
  if (!schema) return keys;
  const inner = unwrap(schema);
  // Structural, not instanceof: a third-party plugin may build its schema with its own copy of zod.
  const def = (inner as unknown as { _zod: { def: { type: string; shape?: Record<string, z.ZodType> } } })._zod.def;
  if (def.type === "object" && def.shape) {
    for (const [k, v] of Object.entries(def.shape)) {
      if (secretRegistry.has(unwrap(v))) keys.add(k);
    }
  }
  return keys;
}

/**
 * Deep copy with secrets replaced by "***": fields marked with secret() in the schema, plus every key
 * whose name says it is a secret. Structural, so a new driver option is covered by marking it, not by
 * remembering to mask it in each log line.
 */
export function redact<T>(value: T, schema?: z.ZodType): T {
  const marked = secretKeysOf(schema);
  const walk = (v: unknown, depth: number, topLevel: boolean): unknown => {
    if (depth > 32 || v === null || typeof v !== "object") return v;
    if (Array.isArray(v)) return v.map((x) => walk(x, depth + 1, false));
    if (Buffer.isBuffer(v)) return REDACTED;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      const isSecret = (topLevel && marked.has(k)) || isSecretKey(k);
      if (isSecret && (typeof x === "string" || typeof x === "number" || Buffer.isBuffer(x)) && x !== "") out[k] = REDACTED;
      else out[k] = walk(x, depth + 1, false);
    }
    return out;
  };
  return walk(value, 0, true) as T;
}

/** Masks known secret strings inside free text (argv, stderr) before it reaches an error or a log. */
export function maskSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s && s.length >= 1) out = out.split(s).join(REDACTED);
  return out;
}
