import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, openSync, readSync, writeSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { testbedEnv } from "@cinderts/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO, okJson, sandbox, type Sandbox } from "../cli/helpers.js";

const pgEnv = testbedEnv("postgres", ["CINDERTS_PG_URL"]);
const SERVER = join(REPO, "apps/server/dist/main.js");
const TOKEN = `ct_e2e_${process.pid}_${Date.now()}`;

// The consumer is the CLI (embedded default manifest, node id = host name); the controller is a
// cinderts-server process on PostgreSQL with a node id of its own.
describe.skipIf(!pgEnv)("CLI node register / node attach / node detach against a server", () => {
  let sb: Sandbox;
  let server: ChildProcess;
  let url: string;
  const volumes = () => join(sb.dir, "controller-volumes");

  const http = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(url + path, {
      method,
      headers: { Authorization: `Bearer ${TOKEN}`, ...(body ? { "Content-Type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : undefined };
  };

  beforeAll(async () => {
    sb = await sandbox("node-cli");
    const manifest = join(sb.dir, "controller.json");
    await writeFile(
      manifest,
      JSON.stringify({
        persistence: { plugin: "@cinderts/persistence-postgres", options: { url: pgEnv!.CINDERTS_PG_URL, schema: `e2e_node_${process.pid}_${Date.now().toString(36)}` } },
        backends: [{ name: "local", driver: "@cinderts/driver-file", options: { path: volumes() } }],
        connectors: [],
        node_id: "controller",
        state_dir: join(sb.dir, "controller-state"),
        logging: { level: "info" },
        server: { host: "127.0.0.1", port: 0, tokens: [{ name: "e2e", role: "admin", hash: `sha256:${createHash("sha256").update(TOKEN).digest("hex")}` }] },
      }),
    );
    server = spawn(process.execPath, [SERVER, "--manifest", manifest], { stdio: ["ignore", "pipe", "inherit"] });
    url = await new Promise<string>((resolve, reject) => {
      let buf = "";
      server.stdout!.on("data", (c: Buffer) => {
        buf += c.toString();
        const m = /"msg":"listening"[^\n]*"url":"([^"]+)"/.exec(buf);
        if (m) resolve(m[1]!);
      });
      server.once("exit", (code) => reject(new Error(`server exited with ${code}`)));
    });
  });
  afterAll(async () => {
    if (server && server.exitCode === null) {
      const done = new Promise((r) => server.once("exit", r));
      server.kill("SIGTERM");
      await done;
    }
    await sb?.cleanup();
  });

  it("register → controller connects for the node → node attach → write → node detach → disconnect", async () => {
    const env = { CINDERTS_SERVER: url, CINDERTS_TOKEN: TOKEN };
    const node = await okJson<{ id: string; connector: { host: string } }>(sb, ["node", "register", "--json"], { env });
    expect(node.id).toBe(hostname());
    expect(node.connector.host).toBe(hostname());

    const vol = (await http("POST", "/v1/volumes", { size: 1 })).json;
    const conn = await http("POST", "/v1/connections", { volume_id: vol.id, node_id: node.id });
    expect(conn.status).toBe(201);

    const attached = await okJson<{ id: string; path: string; attached: boolean }>(sb, ["node", "attach", conn.json.id, "--server", url, "--json"], {
      env: { CINDERTS_TOKEN: TOKEN },
    });
    expect(attached).toMatchObject({ id: conn.json.id, attached: true });
    const data = Buffer.from("through the consumer's attach");
    const fd = openSync(attached.path, "r+");
    writeSync(fd, data, 0, data.length, 8192);
    closeSync(fd);
    const back = Buffer.alloc(data.length);
    const fd2 = openSync(join(volumes(), `volume-${vol.id}`), "r");
    readSync(fd2, back, 0, back.length, 8192);
    closeSync(fd2);
    expect(back.toString()).toBe(data.toString());
    expect((await http("GET", `/v1/connections/${conn.json.id}`)).json).toMatchObject({ status: "attached", node_id: node.id });

    const detached = await okJson<{ attached: boolean }>(sb, ["node", "detach", conn.json.id, "--json"], { env });
    expect(detached.attached).toBe(false);
    expect((await http("DELETE", `/v1/connections/${conn.json.id}`)).status).toBe(204);
    expect((await http("GET", `/v1/volumes/${vol.id}`)).json.status).toBe("available");
  });

  it("without a server or a token the command fails with one clear line and exit code 2", async () => {
    const { run } = await import("../cli/helpers.js");
    const noServer = await run(sb, ["node", "register"]);
    expect(noServer.exitCode).toBe(2);
    expect(noServer.stderr).toMatch(/no server: give --server URL or set CINDERTS_SERVER/);
    const noToken = await run(sb, ["node", "attach", "x", "--server", url]);
    expect(noToken.exitCode).toBe(2);
    expect(noToken.stderr).toMatch(/no token: set CINDERTS_TOKEN/);
    const bad = await run(sb, ["node", "attach", "x"], { env: { CINDERTS_SERVER: url, CINDERTS_TOKEN: "wrong" } });
    expect(bad.exitCode).toBe(10);
    expect(bad.stderr).toMatch(/invalid token/);
  });
});
