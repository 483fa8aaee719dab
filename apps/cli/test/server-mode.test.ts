import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { hashToken } from "@cinderts/server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * `--server URL`: the BUILT CLI (dist/cinderts.js, a separate process) against a real cinderts server started
 * here (the built cinderts-server bin, file backend + SQLite in a temp dir, bearer tokens), compared with the
 * same commands in-process. Both processes get a clean environment: what a plugin resolves must not depend on
 * the test runner's NODE_PATH.
 */

const CLI = fileURLToPath(new URL("../dist/cinderts.js", import.meta.url));
const SERVER = fileURLToPath(new URL("../../server/dist/main.js", import.meta.url));
const ADMIN = "ct_cli-server-admin-5d1e0b7f2a9c4e31";
const READER = "ct_cli-server-reader-8a2f6c0d3b1e9f47";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

let dir: string;
let url: string;
let server: ChildProcess;
/** The in-process side: a manifest of the same shape as the server's (same backend name), its own data. */
let localManifest: string;
let connectorFile: string;

function backendManifest(root: string) {
  return {
    persistence: { plugin: "@cinderts/persistence-sqlite", options: { path: join(root, "cinderts.db") } },
    backends: [{ name: "default", driver: "@cinderts/driver-file", options: { path: join(root, "volumes") } }],
    connectors: [{ plugin: "@cinderts/connector-local", options: {} }],
    state_dir: join(root, "state"),
  };
}

/** The built CLI with a private HOME/XDG (the embedded default lives there) and only the env given. */
function cli(args: readonly string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: join(dir, "home"), XDG_DATA_HOME: join(dir, "xdg"), LANG: "C.UTF-8", ...env }, cwd: join(dir, "home") },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

type Mode = "in-process" | "server";
/** One command in a mode: in-process on localManifest, or against the server with the admin token (from env). */
function inMode(mode: Mode, args: readonly string[]): Promise<Run> {
  return mode === "server" ? cli(["--server", url, ...args], { CINDERTS_TOKEN: ADMIN }) : cli(["--manifest", localManifest, ...args]);
}

/** Ids, timestamps and data paths differ between the two runs; everything else must not. */
function normalizer() {
  const ids = new Map<string, string>();
  return (text: string) =>
    text
      .replaceAll(dir, "<dir>")
      .replace(/<dir>\/(local|srv)\//g, "<root>/")
      .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/g, "<time>")
      .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, (id) => {
        if (!ids.has(id)) ids.set(id, `<id${ids.size + 1}>`);
        return ids.get(id)!;
      });
}

/** The keys of a JSON value, recursively, for outputs whose numbers legitimately differ (capacity). */
function shape(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(shape);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, shape(x)]));
  return typeof v;
}

/** The server's API directly (admin token), to check what the CLI did there. */
async function api<T = any>(method: string, path: string): Promise<T> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const res = await fetch(url + path, { method, headers: { Authorization: `Bearer ${ADMIN}` } });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

function json<T = any>(r: Run): T { // eslint-disable-line @typescript-eslint/no-explicit-any
  if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

beforeAll(async () => {
  for (const f of [CLI, SERVER]) if (!existsSync(f)) throw new Error(`${f} is missing: build first (pnpm --filter cinderts build && pnpm --filter @cinderts/server build)`);
  dir = mkdtempSync(join(tmpdir(), "cinderts-cli-server-"));
  for (const d of ["home", "xdg", "local", "srv"]) mkdirSync(join(dir, d));
  const m = {
    ...backendManifest(join(dir, "srv")),
    // No node_id: the server runs on this host, so its node id (the host name) is the in-process CLI's too, and
    // what drivers put in conn_info (the exporting host) is the same in both modes.
    server: {
      host: "127.0.0.1",
      port: 0,
      tokens: [
        { name: "ops", role: "admin", hash: await hashToken(ADMIN) },
        { name: "dash", role: "reader", hash: await hashToken(READER) },
      ],
    },
  };
  const serverManifest = join(dir, "srv", "cinderts.json");
  writeFileSync(serverManifest, JSON.stringify({ ...m, logging: { level: "info" } }));
  server = spawn(process.execPath, [SERVER, "--manifest", serverManifest], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: join(dir, "home"), LANG: "C.UTF-8" },
  });
  let stderr = "";
  server.stderr!.on("data", (c: Buffer) => (stderr += c.toString()));
  url = await new Promise<string>((resolve, reject) => {
    let buf = "";
    const timer = setTimeout(() => reject(new Error(`server did not start in 30 s: ${stderr}`)), 30_000);
    // Read stdout to the end (a full pipe would stall the server); the "listening" line carries the URL.
    server.stdout!.on("data", (c: Buffer) => {
      buf += c.toString();
      const m = /"msg":"listening"[^\n]*"url":"([^"]+)"/.exec(buf);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
      if (buf.length > 65536) buf = buf.slice(-4096);
    });
    server.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}: ${stderr}`));
    });
  });
  localManifest = join(dir, "local", "cinderts.json");
  writeFileSync(localManifest, JSON.stringify(backendManifest(join(dir, "local"))));
  // This host's connector properties: what `volume connect --connector` takes.
  connectorFile = join(dir, "connector.json");
  const props = await cli(["connector", "show", "--json"]);
  json(props);
  writeFileSync(connectorFile, props.stdout);
}, 60_000);

afterAll(async () => {
  if (server && server.exitCode === null && server.signalCode === null) {
    const exited = new Promise((r) => server.once("exit", r));
    server.kill("SIGTERM");
    await exited;
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/**
 * The whole command set, in order, as a user would type it. Returns per step the exit code and the normalized
 * stdout (stats: their JSON shape, as capacity moves between runs).
 */
async function transcript(mode: Mode): Promise<{ step: string; code: number; out: unknown }[]> {
  const norm = normalizer();
  const steps: { step: string; code: number; out: unknown }[] = [];
  const step = async (name: string, args: readonly string[], o: { shape?: boolean } = {}) => {
    const r = await inMode(mode, args);
    const out = o.shape && r.code === 0 ? shape(JSON.parse(r.stdout)) : norm(r.stdout);
    steps.push({ step: name, code: r.code, out: r.code === 0 ? out : norm(r.stderr) });
    return r;
  };
  await step("backend list", ["backend", "list", "--json"]);
  await step("backend list (human)", ["backend", "list"]);
  await step("backend stats", ["backend", "stats", "--json"], { shape: true });
  await step("backend stats NAME", ["backend", "stats", "default", "--json"], { shape: true });
  await step("driver list", ["driver", "list", "--json"]);

  const vol = json<{ id: string }>(await step("volume create", ["volume", "create", "--size", "1", "--name", "first", "--metadata", "team=storage", "--json"])).id;
  await step("volume create (quiet)", ["volume", "create", "--size", "1", "-q"]);
  await step("volume list", ["volume", "list", "--json"]);
  await step("volume list (human)", ["volume", "list"]);
  await step("volume show", ["volume", "show", vol, "--json"]);
  await step("volume show (human)", ["volume", "show", vol]);
  await step("volume extend", ["volume", "extend", vol, "--size", "2", "--json"]);

  const snap = json<{ id: string }>(await step("snapshot create", ["snapshot", "create", vol, "--name", "s1", "--json"])).id;
  await step("snapshot list", ["snapshot", "list", "--json"]);
  await step("snapshot list --volume", ["snapshot", "list", "--volume", vol, "--json"]);
  await step("snapshot show", ["snapshot", "show", snap, "--json"]);
  await step("volume delete with a snapshot (HAS_DEPENDENTS)", ["volume", "delete", vol, "--json"]);
  const fromSnap = json<{ id: string }>(await step("volume create --from-snapshot", ["volume", "create", "--from-snapshot", snap, "--json"])).id;
  const clone = json<{ id: string }>(await step("volume create --from-volume", ["volume", "create", "--from-volume", vol, "--name", "copy", "--json"])).id;

  const conn = json<{ id: string }>(await step("volume connect", ["volume", "connect", vol, "--connector", connectorFile, "--json"])).id;
  await step("connection list", ["connection", "list", "--json"]);
  await step("connection list --show-secrets", ["connection", "list", "--volume", vol, "--show-secrets", "--json"]);
  await step("connection show", ["connection", "show", conn, "--json"]);
  await step("connection show (human)", ["connection", "show", conn]);
  await step("connection disconnect", ["connection", "disconnect", conn, "--json"]);
  await step("connection disconnect again", ["connection", "disconnect", conn]);

  await step("volume attach", ["volume", "attach", clone, "--json"]);
  await step("volume attach: connection", ["connection", "list", "--volume", clone, "--json"]);
  await step("volume detach", ["volume", "detach", clone, "--json"]);
  await step("volume detach again (not attached)", ["volume", "detach", clone]);

  await step("connector show", ["connector", "show", "--json"]);
  await step("connector validate", ["connector", "validate", "--connector", connectorFile, "--json"]);
  await step("connector validate (human)", ["connector", "validate", "--backend", "default", "--connector", connectorFile]);

  await step("snapshot delete", ["snapshot", "delete", snap, "--json"]);
  await step("snapshot list --all", ["snapshot", "list", "--all", "--json"]);
  await step("volume delete", ["volume", "delete", fromSnap, "--json"]);
  await step("volume delete again", ["volume", "delete", fromSnap]);
  await step("volume delete --force", ["volume", "delete", clone, "--force", "--json"]);
  await step("volume list --all", ["volume", "list", "--all", "--json"]);

  const dump = await step("state dump", ["state", "dump"]);
  const dumpFile = join(dir, mode === "server" ? "srv" : "local", "dump.json");
  writeFileSync(dumpFile, dump.stdout);
  await step("state load --check", ["state", "load", dumpFile, "--check", "--json"]);
  await step("state load", ["state", "load", dumpFile, "--json"]);
  await step("reconcile", ["reconcile", "--json"]);
  await step("reconcile --stale-after 0 (human)", ["reconcile", "--stale-after", "0"]);

  await step("unknown volume", ["volume", "show", "3f0c0a52-0000-4000-8000-00000000dead"]);
  await step("unknown volume (--json error)", ["volume", "extend", "3f0c0a52-0000-4000-8000-00000000dead", "--size", "9", "--json"]);
  await step("unknown snapshot", ["snapshot", "delete", "3f0c0a52-0000-4000-8000-00000000beef"]);
  await step("unknown backend", ["volume", "create", "--size", "1", "--backend", "nope"]);
  await step("unknown backend (list)", ["volume", "list", "--backend", "nope"]);
  await step("unknown backend (stats)", ["backend", "stats", "nope"]);
  await step("unknown backend (--json error)", ["volume", "list", "--backend", "no such", "--json"]);
  await step("unknown backend (dump)", ["state", "dump", "--backend", "nope"]);
  await step("snapshot of a deleted volume (INVALID_STATE)", ["snapshot", "create", fromSnap]);
  return steps;
}

describe("cinderts --server URL", () => {
  it("prints the same output and exits with the same codes as in-process, command by command", async () => {
    const local = await transcript("in-process");
    const remote = await transcript("server");
    expect(remote.map((s) => s.step)).toEqual(local.map((s) => s.step));
    for (let i = 0; i < local.length; i++) expect({ step: remote[i]!.step, code: remote[i]!.code, out: remote[i]!.out }).toEqual(local[i]);
    // The sequence is not vacuous: successes and the expected failures are in it.
    const codes = Object.fromEntries(local.map((s) => [s.step, s.code]));
    expect(codes).toMatchObject({
      "volume create": 0,
      "volume attach": 0,
      "volume delete with a snapshot (HAS_DEPENDENTS)": 5,
      "volume detach again (not attached)": 5,
      "unknown volume": 4,
      "unknown snapshot": 4,
      "unknown backend": 4,
      "unknown backend (list)": 4,
      "unknown backend (--json error)": 4,
      "unknown backend (dump)": 4,
      "snapshot of a deleted volume (INVALID_STATE)": 5,
    });
    expect(JSON.parse(String(local.find((s) => s.step === "unknown volume (--json error)")!.out))).toMatchObject({
      error: { error: "NotFoundError", code: "NOT_FOUND", resource: { kind: "volume" } },
    });
    // What the server mode did, it did on the server: its records, not the local ones.
    expect((await api<unknown[]>("GET", "/v1/volumes?include_deleted=true")).length).toBeGreaterThanOrEqual(4);
  }, 240_000);

  it("volume attach runs this host's connector on the server's export: data written there lands in the server's volume", async () => {
    const env = { CINDERTS_SERVER: url, CINDERTS_TOKEN: ADMIN };
    const vol = json<{ id: string }>(await cli(["volume", "create", "--size", "1", "--json"], env)).id;
    const conn = json<{ id: string; path: string; attached: boolean; node_id: string }>(await cli(["volume", "attach", vol, "--json"], env));
    expect(conn.attached).toBe(true);
    const onServer = await api("GET", `/v1/connections/${conn.id}`);
    expect(onServer.status).toBe("attached");
    expect(onServer.node_id).toBe(conn.node_id);
    writeFileSync(conn.path, "written through the attach", { flag: "r+" });
    expect(readFileSync(join(dir, "srv", "volumes", `volume-${vol}`)).subarray(0, 26).toString()).toBe("written through the attach");
    expect(json(await cli(["volume", "show", vol, "--json"], env))).toMatchObject({ status: "in-use" });
    const detached = json<{ id: string; status: string }>(await cli(["volume", "detach", vol, "--json"], env));
    expect(detached).toMatchObject({ id: vol, status: "available" });
    expect(await api("GET", `/v1/connections?volume_id=${vol}`)).toEqual([]);
  });

  it("a wrong token exits 10 with one clear line; a reader token reads but cannot create", async () => {
    const wrong = await cli(["volume", "list", "--server", url], { CINDERTS_TOKEN: "ct_not-a-token" });
    expect(wrong).toEqual({ code: 10, stdout: "", stderr: "cinderts: invalid token\n" });
    const wrongJson = await cli(["volume", "list", "--server", url, "--json"], { CINDERTS_TOKEN: "ct_not-a-token" });
    expect(wrongJson.code).toBe(10);
    expect(JSON.parse(wrongJson.stderr)).toMatchObject({ error: { error: "AuthError", code: "UNAUTHENTICATED", message: "invalid token" } });

    const env = { CINDERTS_SERVER: url, CINDERTS_TOKEN: READER };
    expect(json<unknown[]>(await cli(["volume", "list", "--json"], env))).toBeInstanceOf(Array);
    const before = (await api<unknown[]>("GET", "/v1/volumes")).length;
    const create = await cli(["volume", "create", "--size", "1"], env);
    expect(create.code).toBe(10);
    expect(create.stdout).toBe("");
    expect(create.stderr).toMatch(/^cinderts: [^\n]*needs the admin role; token dash has reader\n$/);
    expect((await api<unknown[]>("GET", "/v1/volumes")).length).toBe(before);
    // --token works too (and wins over the environment).
    expect((await cli(["volume", "list", "--token", READER, "-q"], { CINDERTS_SERVER: url, CINDERTS_TOKEN: "ct_wrong" })).code).toBe(0);
  });

  it("refuses bad input before any request: exit 2 even when no server listens at the URL", async () => {
    // Port 1 on 127.0.0.1: a request would fail with a connection error (exit 8), not exit 2.
    const nowhere = { CINDERTS_SERVER: "http://127.0.0.1:1", CINDERTS_TOKEN: ADMIN };
    for (const args of [
      ["volume", "create", "--size", "-1"],
      ["volume", "create", "--size", "1", "--name", "a\u0007b"],
      ["volume", "create", "--from-snapshot", "x", "--from-volume", "y"],
      ["volume", "extend", "x"],
      ["volume", "connect", "x"],
      ["snapshot", "create", "bad/id"],
      ["connection", "disconnect", "bad/id"],
      ["reconcile", "--stale-after", "soon"],
      ["state", "load", join(dir, "no-such-dump.json")],
      ["volume", "list", "--bogus"],
      ["demo"],
    ]) {
      const r = await cli(args, nowhere);
      expect({ args, code: r.code, stdout: r.stdout }).toEqual({ args, code: 2, stdout: "" });
      expect(r.stderr).toMatch(/^cinderts: [^\n]+\n$/);
    }
    expect((await cli(["demo"], nowhere)).stderr).toBe('cinderts: "demo" runs in-process only, not against a server: drop --server and unset CINDERTS_SERVER\n');
    // The reachable case for contrast: a connection error is a backend error (8), named as the server's.
    const down = await cli(["volume", "list"], nowhere);
    expect(down.code).toBe(8);
    expect(down.stderr).toMatch(/^cinderts: cinderts server http:\/\/127\.0\.0\.1:1: /);
  });

  it("refuses a bad --server URL or a missing token as bad input", async () => {
    expect(await cli(["volume", "list", "--server", "ftp://127.0.0.1/x"], { CINDERTS_TOKEN: ADMIN })).toMatchObject({ code: 2, stdout: "" });
    expect(await cli(["volume", "list", "--server", "not a url"], { CINDERTS_TOKEN: ADMIN })).toMatchObject({ code: 2, stdout: "" });
    const noToken = await cli(["volume", "list", "--server", url]);
    expect(noToken).toEqual({ code: 2, stdout: "", stderr: "cinderts: no token: set CINDERTS_TOKEN (or give --token, which other users can see in ps)\n" });
    const nodeNoServer = await cli(["node", "register"]);
    expect(nodeNoServer).toMatchObject({ code: 2, stderr: "cinderts: no server: give --server URL or set CINDERTS_SERVER\n" });
  });

  it("--help names --server and --token and warns that a token on the command line shows in ps", async () => {
    const help = await cli(["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--server URL\s+run the command against this cinderts server \(default \$CINDERTS_SERVER\)/);
    expect(help.stdout).toMatch(/--token TOKEN\s+bearer token for --server; prefer \$CINDERTS_TOKEN: a token on the command line is visible to other users in ps/);
  });

  it("keeps the server client out of in-process runs: the bundle imports it only dynamically", () => {
    const bundle = readFileSync(CLI, "utf8");
    const refs = bundle.match(/.{0,20}["']@cinderts\/server[^"']*["']/g) ?? [];
    expect(refs.length).toBeGreaterThan(0);
    for (const r of refs) expect(r).toMatch(/import\(\s*["']@cinderts\/server\/client["']$/);
  });
});
