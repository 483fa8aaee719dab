import { readFileSync } from "node:fs";
import { createServer as createHttp, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttps } from "node:https";
import type { AddressInfo } from "node:net";
import { ConfigError, parseConfig, type Cinderts, type Logger } from "@cinderts/core";
import { TokenVerifier } from "./auth.js";
import { ServerConfigSchema, type ServerConfig } from "./config.js";
import { compile, dispatch, type Route } from "./http.js";
import { IdempotencyStore } from "./idempotency.js";
import { Metrics } from "./metrics.js";
import { openApiDocument } from "./openapi.js";
import { buildRoutes, type App } from "./routes.js";

export interface ServerOptions {
  /** The manifest's `server:` section (validated here) — or an already parsed config. */
  config: unknown;
  logger: Logger;
  /** Where plugins (drivers for /v1/drivers) resolve from. */
  fromUrl?: string;
  file?: string;
}

/** Parse the manifest's `server:` section; errors name the file and the field. */
export function parseServerConfig(section: unknown, file?: string): ServerConfig {
  if (section === undefined) {
    throw new ConfigError(`${file ? `${file}: ` : ""}the manifest has no server: section (tokens are required)`, {
      issues: [{ path: "server", message: "required" }],
      file,
    });
  }
  return parseConfig(ServerConfigSchema, section, { file, path: "server", what: "server settings" });
}

/**
 * The HTTP server around one composed Cinderts. Stateless apart from metrics: every instance on the same
 * persistence serves the same data, and locks/idempotency keys are shared through the persistence.
 */
export class CindertsServer {
  readonly config: ServerConfig;
  readonly metrics = new Metrics();
  readonly routes: Route[];
  private readonly http: Server;
  private readonly background = new Set<Promise<unknown>>();
  private readonly inflight = new Set<Promise<void>>();
  private draining = false;
  private sweepTimer: NodeJS.Timeout | undefined;
  private readonly idempotency: IdempotencyStore;

  constructor(
    readonly ct: Cinderts,
    private readonly opts: ServerOptions,
  ) {
    this.config = parseServerConfig(opts.config, opts.file);
    const app: App = {
      ct,
      config: this.config,
      metrics: this.metrics,
      logger: opts.logger,
      fromUrl: opts.fromUrl ?? import.meta.url,
      track: (p) => {
        this.background.add(p);
        void p.finally(() => this.background.delete(p)).catch(() => undefined);
      },
      isDraining: () => this.draining,
    };
    this.routes = buildRoutes(app);
    let doc: Record<string, unknown> | undefined;
    this.routes.push({
      method: "GET", path: "/openapi.json", tag: "service", role: "public", summary: "This document",
      responses: { 200: { description: "OpenAPI 3 document" } },
      handler: async () => ({ status: 200, body: (doc ??= openApiDocument(this.routes)) }),
    });
    this.idempotency = new IdempotencyStore(ct.persistence, ct.locks, this.config.idempotency_ttl_s * 1000);
    const compiled = compile(this.routes);
    const verifier = new TokenVerifier(this.config.tokens);
    const handle = (req: IncomingMessage, res: ServerResponse) => {
      const p = dispatch(req, res, {
        routes: compiled,
        verifier,
        logger: opts.logger,
        metrics: this.metrics,
        bodyLimit: this.config.body_limit_bytes,
        idempotency: (route, ctx, key, raw, run) => this.idempotency.run(route, ctx, key, raw, run),
        isDraining: () => this.draining,
      }).catch((e: unknown) => opts.logger.error("dispatch failed", { error: e }));
      this.inflight.add(p);
      void p.finally(() => this.inflight.delete(p));
    };
    const tls = this.config.tls;
    this.http = tls
      ? createHttps({ cert: readFileSync(tls.cert), key: readFileSync(tls.key) }, handle)
      : createHttp(handle);
    this.http.keepAliveTimeout = 5_000;
    this.http.requestTimeout = 5 * 60_000;
  }

  /** Listen; resolves with the base URL. */
  async listen(overrides: { host?: string; port?: number } = {}): Promise<string> {
    const host = overrides.host ?? this.config.host;
    const port = overrides.port ?? this.config.port;
    await new Promise<void>((resolve, reject) => {
      this.http.once("error", reject);
      this.http.listen(port, host, () => {
        this.http.off("error", reject);
        resolve();
      });
    });
    const a = this.http.address() as AddressInfo;
    const url = `${this.config.tls ? "https" : "http"}://${a.family === "IPv6" ? `[${a.address}]` : a.address}:${a.port}`;
    this.opts.logger.info("listening", { url });
    this.sweepTimer = setInterval(() => void this.idempotency.sweep().catch(() => undefined), 3600_000);
    this.sweepTimer.unref();
    return url;
  }

  /**
   * Graceful stop: refuse new connections and requests (503), wait for in-flight requests and background
   * operations up to shutdown_timeout_ms, then close every socket. Operations still running after that
   * keep their intent records, which reconcile settles.
   */
  async close(opts: { timeoutMs?: number } = {}): Promise<{ unfinished: number }> {
    this.draining = true;
    clearInterval(this.sweepTimer);
    const closed = new Promise<void>((r) => this.http.close(() => r()));
    this.http.closeIdleConnections();
    const timeoutMs = opts.timeoutMs ?? this.config.shutdown_timeout_ms;
    const deadline = Date.now() + timeoutMs;
    while ((this.inflight.size || this.background.size) && Date.now() < deadline) {
      await Promise.race([
        Promise.allSettled([...this.inflight, ...this.background]),
        new Promise((r) => setTimeout(r, Math.max(1, deadline - Date.now()))),
      ]);
    }
    const unfinished = this.inflight.size + this.background.size;
    if (unfinished) this.opts.logger.warn("shutdown timeout: operations left to reconcile", { unfinished });
    this.http.closeAllConnections();
    await closed;
    return { unfinished };
  }
}
