import { z } from "@cinderts/core";
import type { Route } from "./http.js";

const VERSION = "0.1.0";

/** Named schemas (`.meta({ id })`) land here once and are referenced from every operation. */
type Components = Record<string, unknown>;

function rewriteRefs(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(rewriteRefs);
  if (v && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      out[k] = k === "$ref" && typeof x === "string" ? x.replace(/^#\/(definitions|\$defs)\//, "#/components/schemas/") : rewriteRefs(x);
    }
    return out;
  }
  return v;
}

function schemaOf(s: z.ZodType, io: "input" | "output", components: Components): Record<string, unknown> {
  const json = z.toJSONSchema(s, { io, unrepresentable: "any", target: "openapi-3.0" }) as Record<string, unknown>;
  delete json.$schema;
  const defs = (json.definitions ?? json.$defs) as Record<string, unknown> | undefined;
  delete json.definitions;
  delete json.$defs;
  for (const [name, def] of Object.entries(defs ?? {})) {
    // Input and output shapes differ (defaults): keep both when they do.
    const key = io === "input" && components[name] && JSON.stringify(components[name]) !== JSON.stringify(rewriteRefs(def)) ? `${name}Input` : name;
    components[key] = rewriteRefs(def);
  }
  const out = rewriteRefs(json) as Record<string, unknown>;
  if (io === "input" && typeof out.$ref === "string" && components[`${String(out.$ref).split("/").pop()}Input`]) {
    out.$ref = `${out.$ref}Input`;
  }
  return out;
}

/** Query/path parameters from an object schema: one OpenAPI parameter per key. */
function parametersOf(s: z.ZodType | undefined, where: "path" | "query", components: Components) {
  if (!s) return [];
  const json = schemaOf(s, "input", components) as { properties?: Record<string, Record<string, unknown>>; required?: string[] };
  return Object.entries(json.properties ?? {}).map(([name, schema]) => ({
    name,
    in: where,
    required: where === "path" || (json.required ?? []).includes(name),
    schema,
    ...(schema.description ? { description: schema.description } : {}),
  }));
}

/** The OpenAPI 3 document, generated from the same zod schemas the server validates with. */
export function openApiDocument(routes: readonly Route[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const components: Components = {};
  for (const r of routes) {
    const responses: Record<string, unknown> = {};
    for (const [status, spec] of Object.entries(r.responses)) {
      const problem = Number(status) >= 400;
      responses[status] = {
        description: spec.description,
        ...(spec.schema
          ? { content: { [problem ? "application/problem+json" : "application/json"]: { schema: schemaOf(spec.schema, "output", components) } } }
          : {}),
      };
    }
    const op: Record<string, unknown> = {
      operationId: `${r.method.toLowerCase()}${r.path.replace(/\{(\w+)\}/g, "By_$1").replace(/[^A-Za-z0-9]+(\w)/g, (_m, c: string) => c.toUpperCase())}`,
      summary: r.summary,
      tags: [r.tag],
      parameters: [
        ...parametersOf(r.params, "path", components),
        ...parametersOf(r.query, "query", components),
        ...(r.idempotent
          ? [{ name: "Idempotency-Key", in: "header", required: false, schema: { type: "string", maxLength: 255 }, description: "a retried request with the same key returns the first result" }]
          : []),
      ],
      ...(r.body ? { requestBody: { required: true, content: { "application/json": { schema: schemaOf(r.body, "input", components) } } } } : {}),
      responses,
      ...(r.role === "public" ? { security: [] } : { "x-required-role": r.role }),
    };
    (paths[r.path] ??= {})[r.method.toLowerCase()] = op;
  }
  return {
    openapi: "3.0.3",
    info: {
      title: "cinderts server",
      version: VERSION,
      description:
        "Block-storage volumes, snapshots and connections over HTTP. Errors are RFC 7807 problem bodies whose `issues` name each bad field.",
    },
    components: { schemas: components, securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
    security: [{ bearer: [] }],
    paths,
  };
}
