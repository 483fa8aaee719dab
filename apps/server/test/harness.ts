import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Cinderts, createJsonLogger, parseManifest, silentLogger, type Logger } from "@cinderts/core";
import { testbedEnv } from "@cinderts/testkit";
import pg from "pg";
import { hashToken } from "../src/auth.js";
import { CindertsServer } from "../src/server.js";

/** The PostgreSQL testbed (skip locally without it; testbedEnv throws in CI). */
export const pgEnv = testbedEnv("postgres", ["CINDERTS_PG_URL"]);

export const ADMIN_TOKEN = "ct_test-admin-7f3c2a9e41d84b6f9a0e";
export const READER_TOKEN = "ct_test-reader-0b1d9e8c7a6f5e4d3c2b";

export const serverDir = fileURLToPath(new URL("..", import.meta.url));
export const mainJs = join(serverDir, "dist", "main.js");

export async function tokens() {
  return [
    { name: "ops-admin", role: "admin" as const, hash: await hashToken(ADMIN_TOKEN) },
    // scrypt for one of them, so that both hash kinds are exercised on every run.
    { name: "dash-reader", role: "reader" as const, hash: await hashToken(READER_TOKEN, "scrypt") },
  ];
}

export function scratchSchema(tag: string): string {
  return `srv_${tag}_${process.pid}_${Date.now().toString(36)}`.toLowerCase().replace(/[^a-z0-9_]/g, "_");
}

export async function dropSchema(schema: string): Promise<void> {
  const c = new pg.Client({ connectionString: pgEnv!.CINDERTS_PG_URL });
  await c.connect();
  try {
    await c.query(`drop schema if exists "${schema}" cascade`);
  } finally {
    await c.end();
  }
}

export interface ManifestOptions {
  schema?: string;
  sqlitePath?: string;
  volumesDir: string;
  server?: Record<string, unknown>;
  stateDir?: string;
}

export async function manifest(o: ManifestOptions): Promise<Record<string, unknown>> {
  return {
    persistence: o.sqlitePath
      ? { plugin: "@cinderts/persistence-sqlite", options: { path: o.sqlitePath } }
      : { plugin: "@cinderts/persistence-postgres", options: { url: pgEnv!.CINDERTS_PG_URL, schema: o.schema, pool_size: 8 } },
    backends: [{ name: "local", driver: "@cinderts/driver-file", options: { path: o.volumesDir } }],
    connectors: [{ plugin: "@cinderts/connector-local", options: {} }],
    ...(o.stateDir ? { state_dir: o.stateDir } : {}),
    logging: { level: "info" },
    server: { host: "127.0.0.1", port: 0, tokens: await tokens(), shutdown_timeout_ms: 10_000, ...o.server },
  };
}

export function tempDir(tag: string): string {
  return mkdtempSync(join(tmpdir(), `cinderts-server-${tag}-`));
}

export interface Running {
  url: string;
  server: CindertsServer;
  ct: Cinderts;
  logs: string[];
  close(): Promise<void>;
}

/** A server in this process (API tests): same code as the bin, without a child process. */
export async function startInProcess(m: Record<string, unknown>, file?: string): Promise<Running> {
  const logs: string[] = [];
  const logger: Logger = createJsonLogger({ level: "info", write: (l) => logs.push(l) });
  const loaded = parseManifest(m, file);
  const ct = await Cinderts.open(loaded, { resolveFrom: [import.meta.url], lazySetup: true, logger: silentLogger });
  const server = new CindertsServer(ct, { config: m.server, logger, fromUrl: import.meta.url });
  const url = await server.listen();
  return {
    url,
    server,
    ct,
    logs,
    close: async () => {
      await server.close({ timeoutMs: 20_000 });
      await ct.close();
    },
  };
}

export interface Reply {
  status: number;
  headers: Headers;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  text: string;
}

export async function call(
  url: string,
  method: string,
  path: string,
  o: { token?: string | null; body?: unknown; raw?: string | Buffer; headers?: Record<string, string> } = {},
): Promise<Reply> {
  const token = o.token === undefined ? ADMIN_TOKEN : o.token;
  const headers: Record<string, string> = { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...o.headers };
  let body: string | Buffer | undefined;
  if (o.raw !== undefined) body = o.raw;
  else if (o.body !== undefined) {
    body = JSON.stringify(o.body);
    headers["Content-Type"] ??= "application/json";
  }
  const res = await fetch(url + path, { method, headers, body });
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, json, text };
}

export interface ServerProcess {
  url: string;
  child: ChildProcess;
  logs: string[];
  /** SIGTERM and wait for exit; returns the exit code. */
  stop(): Promise<number | null>;
}

/** The built bin (dist/main.js) as a separate process, as operators run it. */
export async function startProcess(manifestFile: string, env: NodeJS.ProcessEnv = {}): Promise<ServerProcess> {
  const child = spawn(process.execPath, [mainJs, "--manifest", manifestFile], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
  const logs: string[] = [];
  let stderr = "";
  child.stderr!.on("data", (c: Buffer) => (stderr += c.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    let buf = "";
    const timer = setTimeout(() => reject(new Error(`server did not start in 30 s: ${stderr}`)), 30_000);
    child.stdout!.on("data", (c: Buffer) => {
      buf += c.toString();
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        logs.push(line);
        try {
          const j = JSON.parse(line) as { msg?: string; url?: string };
          if (j.msg === "listening" && j.url) {
            clearTimeout(timer);
            resolve(j.url);
          }
        } catch {
          /* not a log line */
        }
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}: ${stderr}`));
    });
  });
  return {
    url,
    child,
    logs,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
      child.kill("SIGTERM");
      return exited;
    },
  };
}

export function writeManifest(dir: string, m: Record<string, unknown>): string {
  const file = join(dir, "cinderts.json");
  writeFileSync(file, JSON.stringify(m, null, 2));
  return file;
}
