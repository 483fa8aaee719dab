import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import {
  InvalidArgumentError,
  StorageError,
  httpStatusFor,
  issuesOf,
  isStorageError,
  toStorageError,
  type ErrorCode,
  type Logger,
} from "@cinderts/core";
import { z } from "@cinderts/core";
import { requireRole, type Principal, type Role, type TokenVerifier } from "./auth.js";
import type { Metrics } from "./metrics.js";

/** What a handler returns: a status and a JSON body (or none). */
export interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** Body is already text of this content type (metrics). */
  text?: { contentType: string; body: string };
}

export interface RequestContext<P = Record<string, string>, Q = Record<string, unknown>, B = unknown> {
  params: P;
  query: Q;
  body: B;
  principal: Principal | undefined;
  requestId: string;
  logger: Logger;
  headers: IncomingMessage["headers"];
}

export interface ResponseSpec {
  description: string;
  schema?: z.ZodType;
}

/** One API route: the schemas here are both the validation and the OpenAPI document. */
export interface Route {
  method: "GET" | "POST" | "PUT" | "DELETE";
  /** OpenAPI style: /v1/volumes/{id}. */
  path: string;
  summary: string;
  tag: string;
  /** public: no token; reader: any valid token; admin: an admin token. */
  role: Role | "public";
  params?: z.ZodType;
  query?: z.ZodType;
  body?: z.ZodType;
  responses: Record<number, ResponseSpec>;
  /** Honour Idempotency-Key (POSTs that create or act). */
  idempotent?: boolean;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  handler(ctx: RequestContext<any, any, any>): Promise<Reply>;
}

interface CompiledRoute extends Route {
  regex: RegExp;
  names: string[];
}

export function compile(routes: readonly Route[]): CompiledRoute[] {
  return routes.map((r) => {
    const names: string[] = [];
    const pattern = r.path.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\\?\{([a-z_]+)\\?\}/g, (_m, name: string) => {
      names.push(name);
      return "([^/]+)";
    });
    return { ...r, regex: new RegExp(`^${pattern}$`), names };
  });
}

/** RFC 7807 problem body for an error; 5xx never carry internal details beyond the message. */
export function problemOf(e: StorageError, requestId: string, status = httpStatusFor[e.code]) {
  const data = e.details.data as Record<string, unknown> | undefined;
  const issues = data?.issues as { path: string; message: string }[] | undefined;
  const { issues: _i, ...rest } = data ?? {};
  return {
    type: `https://cinderts.dev/problems/${e.code.toLowerCase().replace(/_/g, "-")}`,
    title: e.name,
    status,
    detail: e.message,
    code: e.code,
    instance: requestId,
    ...(issues?.length ? { issues } : {}),
    ...(e.details.resource ? { resource: e.details.resource } : {}),
    ...(Object.keys(rest).length ? { data: rest } : {}),
  };
}

/** An error with an HTTP status of its own (415, 413, 405 …) but a core code for clients. */
export class HttpError extends StorageError {
  constructor(
    readonly status: number,
    code: ErrorCode,
    message: string,
    details: ConstructorParameters<typeof StorageError>[2] = {},
  ) {
    super(code, message, details);
  }
}

export function parsePart<S extends z.ZodType>(schema: S | undefined, value: unknown, part: "params" | "query" | "body"): z.output<S> {
  if (!schema) return value as z.output<S>;
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  // Unknown keys of strict objects are one issue at the object; name each key instead.
  const issues = r.error.issues.flatMap((i) =>
    i.code === "unrecognized_keys"
      ? i.keys.map((k) => ({ path: [part, ...i.path.map(String), k].join("."), message: "unknown field" }))
      : issuesOf(new z.ZodError([i]), part),
  );
  throw new InvalidArgumentError(`invalid request ${part}: ${issues.map((i) => `${i.path}: ${i.message}`).join("; ")}`, { issues });
}

async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers["content-length"] ?? NaN);
  if (Number.isFinite(declared) && declared > limit) {
    throw new HttpError(413, "INVALID_ARGUMENT", `request body of ${declared} bytes is larger than the limit of ${limit}`, {
      data: { limit },
    });
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      throw new HttpError(413, "INVALID_ARGUMENT", `request body is larger than the limit of ${limit} bytes`, { data: { limit } });
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

async function parseJsonBody(req: IncomingMessage, limit: number): Promise<unknown> {
  const raw = await readBody(req, limit);
  if (raw.length === 0) return undefined;
  const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
  if (type && type !== "application/json" && !type.endsWith("+json")) {
    throw new HttpError(415, "INVALID_ARGUMENT", `content type ${type} is not supported: send application/json`, {
      data: { issues: [{ path: "body", message: "must be application/json" }] },
    });
  }
  try {
    return JSON.parse(raw.toString("utf8"));
  } catch (e) {
    throw new InvalidArgumentError(`request body is not valid JSON: ${(e as Error).message}`, {
      issues: [{ path: "body", message: "must be valid JSON" }],
    });
  }
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export interface DispatchOptions {
  routes: CompiledRoute[];
  verifier: TokenVerifier;
  logger: Logger;
  metrics: Metrics;
  bodyLimit: number;
  /** Wraps the handler for Idempotency-Key requests. */
  idempotency: (route: Route, ctx: RequestContext, key: string, rawBody: unknown, run: () => Promise<Reply>) => Promise<Reply>;
  isDraining: () => boolean;
}

/** Serve one request: route → auth → parse → handle → JSON; every failure becomes a problem body. */
export async function dispatch(req: IncomingMessage, res: ServerResponse, o: DispatchOptions): Promise<void> {
  const started = performance.now();
  const given = req.headers["x-request-id"];
  const requestId = typeof given === "string" && REQUEST_ID.test(given) ? given : randomUUID();
  const url = new URL(req.url ?? "/", "http://localhost");
  const logger = o.logger.child({ request_id: requestId });
  let routeLabel = "unmatched";
  let principal: Principal | undefined;
  let status = 500;
  o.metrics.inflightDelta(1);
  try {
    if (o.isDraining()) {
      res.setHeader("Connection", "close");
      throw new HttpError(503, "BUSY", "the server is shutting down", { retryable: true });
    }
    const candidates = o.routes.filter((r) => r.regex.test(url.pathname));
    if (!candidates.length) throw new HttpError(404, "NOT_FOUND", `no route ${url.pathname}`);
    const method = req.method === "HEAD" ? "GET" : req.method;
    const route = candidates.find((r) => r.method === method);
    if (!route) {
      res.setHeader("Allow", [...new Set(candidates.map((r) => r.method))].join(", "));
      throw new HttpError(405, "INVALID_ARGUMENT", `${req.method} is not allowed on ${url.pathname}`);
    }
    routeLabel = `${route.method} ${route.path}`;
    if (route.role !== "public") {
      try {
        principal = await o.verifier.verify(req.headers.authorization);
      } catch (e) {
        res.setHeader("WWW-Authenticate", 'Bearer realm="cinderts"');
        throw e;
      }
      if (route.role === "admin") requireRole(principal, "admin", `${route.method} ${route.path}`);
    }
    const match = route.regex.exec(url.pathname)!;
    const rawParams: Record<string, string> = {};
    route.names.forEach((n, i) => {
      try {
        rawParams[n] = decodeURIComponent(match[i + 1]!);
      } catch {
        rawParams[n] = match[i + 1]!;
      }
    });
    const rawQuery: Record<string, string> = {};
    for (const [k, v] of url.searchParams) {
      if (k in rawQuery) {
        throw new InvalidArgumentError(`query parameter ${k} is given twice`, { issues: [{ path: `query.${k}`, message: "given twice" }] });
      }
      rawQuery[k] = v;
    }
    const params = parsePart(route.params, rawParams, "params");
    const query = parsePart(route.query ?? emptyQuery, rawQuery, "query");
    let rawBody: unknown;
    let body: unknown;
    if (route.body) {
      rawBody = await parseJsonBody(req, o.bodyLimit);
      body = parsePart(route.body, rawBody, "body");
    } else {
      // Drain (and bound) a body nobody reads, so the socket stays usable.
      const extra = await readBody(req, o.bodyLimit);
      if (extra.length && route.method !== "GET" && route.method !== "DELETE") {
        throw new InvalidArgumentError(`${routeLabel} takes no request body`, { issues: [{ path: "body", message: "must be empty" }] });
      }
    }
    const ctx: RequestContext = { params: params as Record<string, string>, query: query as Record<string, unknown>, body, principal, requestId, logger, headers: req.headers };
    const idemKey = req.headers["idempotency-key"];
    const reply =
      route.idempotent && typeof idemKey === "string"
        ? await o.idempotency(route, ctx, idemKey, rawBody, () => route.handler(ctx))
        : await route.handler(ctx);
    status = reply.status;
    send(res, reply, requestId, req.method === "HEAD");
  } catch (e) {
    const err = toStorageError(e);
    status = e instanceof HttpError ? e.status : httpStatusFor[err.code];
    if (status >= 500 && !(e instanceof HttpError)) {
      logger.error("request failed", { method: req.method, route: routeLabel, error: err, cause: (e as Error)?.stack });
    }
    // A body we stopped reading would be parsed as the next request: close the connection instead.
    if (status === 413) res.setHeader("Connection", "close");
    send(res, { status, body: problemOf(err, requestId, status) }, requestId, req.method === "HEAD", true);
  } finally {
    o.metrics.inflightDelta(-1);
    const seconds = (performance.now() - started) / 1000;
    o.metrics.requests.inc({ route: routeLabel, status: String(status) });
    o.metrics.requestSeconds.observe({ route: routeLabel }, seconds);
    logger.info("request", {
      method: req.method,
      path: url.pathname,
      route: routeLabel,
      status,
      ms: Math.round(seconds * 1000),
      // "client", not "token": the logger redacts token-named fields, and this is only the token's name.
      ...(principal ? { client: principal.name } : {}),
    });
  }
}

const emptyQuery = z.object({}).strict();

function send(res: ServerResponse, reply: Reply, requestId: string, head: boolean, problem = false): void {
  if (res.headersSent) return;
  res.setHeader("X-Request-Id", requestId);
  for (const [k, v] of Object.entries(reply.headers ?? {})) res.setHeader(k, v);
  if (reply.text) {
    res.writeHead(reply.status, { "Content-Type": reply.text.contentType });
    res.end(head ? undefined : reply.text.body);
    return;
  }
  if (reply.body === undefined) {
    res.writeHead(reply.status);
    res.end();
    return;
  }
  const text = JSON.stringify(reply.body);
  res.writeHead(reply.status, {
    "Content-Type": problem ? "application/problem+json" : "application/json",
    "Content-Length": Buffer.byteLength(text),
  });
  res.end(head ? undefined : text);
}

export { isStorageError };
