#!/usr/bin/env node
import { parseArgs } from "node:util";
import { Cinderts, createJsonLogger, isStorageError, readManifest } from "@cinderts/core";
import { generateToken, hashToken } from "./auth.js";
import { CindertsServer, parseServerConfig } from "./server.js";

const USAGE = `usage:
  cinderts-server [--manifest FILE] [--host ADDR] [--port N]
      serve the manifest's backends over HTTP (settings and tokens in its server: section)
  cinderts-server hash-token [--scrypt]
      read a token on stdin, print the hash to put in server.tokens[].hash
  cinderts-server new-token --name NAME [--role reader|admin] [--scrypt]
      print a new random token (once) and the manifest entry with its hash
Manifest: --manifest, else $CINDERTS_MANIFEST, else ./cinderts.yaml.`;

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8").trim();
}

async function serve(values: { manifest?: string; host?: string; port?: string }): Promise<void> {
  const file = values.manifest ?? process.env.CINDERTS_MANIFEST ?? "cinderts.yaml";
  const loaded = await readManifest(file);
  const config = parseServerConfig((loaded.manifest as Record<string, unknown>).server, loaded.file);
  const logger = createJsonLogger({
    level: loaded.manifest.logging?.level ?? "info",
    write: (line) => process.stdout.write(line + "\n"),
    bindings: { service: "cinderts-server", pid: process.pid },
  });
  const ct = await Cinderts.open(loaded, { logger, resolveFrom: [import.meta.url], lazySetup: true });
  const server = new CindertsServer(ct, { config, logger, fromUrl: import.meta.url, file: loaded.file });
  const port = values.port !== undefined ? Number(values.port) : undefined;
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) throw new Error(`--port ${values.port}: must be 0-65535`);
  await server.listen({ host: values.host, port });
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info("shutting down", { signal });
    const { unfinished } = await server.close();
    await ct.close();
    logger.info("stopped", { unfinished });
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      manifest: { type: "string", short: "m" },
      host: { type: "string" },
      port: { type: "string", short: "p" },
      scrypt: { type: "boolean" },
      name: { type: "string" },
      role: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE + "\n");
    return 0;
  }
  const kind = values.scrypt ? "scrypt" : "sha256";
  switch (positionals[0]) {
    case undefined:
    case "serve":
      await serve(values);
      return -1; // keep running
    case "hash-token": {
      const token = await readStdin();
      if (!token) throw new Error("no token on stdin");
      process.stdout.write((await hashToken(token, kind)) + "\n");
      return 0;
    }
    case "new-token": {
      if (!values.name || !/^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$/.test(values.name)) throw new Error("--name NAME is required (A-Z a-z 0-9 _ . @ -)");
      const role = values.role ?? "reader";
      if (role !== "reader" && role !== "admin") throw new Error("--role must be reader or admin");
      const token = generateToken();
      process.stdout.write(`token (shown once): ${token}\nmanifest entry:\n  - { name: ${values.name}, role: ${role}, hash: '${await hashToken(token, kind)}' }\n`);
      return 0;
    }
    default:
      process.stderr.write(`unknown command ${positionals[0]}\n${USAGE}\n`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`cinderts-server: ${isStorageError(e) || e instanceof Error ? e.message : String(e)}\n`);
    process.exit(isStorageError(e) && e.code === "CONFIG_ERROR" ? 3 : 1);
  },
);
