import { readFile } from "node:fs/promises";
import {
  CreateSnapshotInput,
  CreateVolumeInput,
  ResourceIdSchema,
  InvalidArgumentError,
  parseInput,
  type Cinderts,
  type LoadedManifest,
} from "@cinderts/core";
import { sizeArg, str, type Options, type Parsed } from "./args.js";
import { details, oneLine, table, type IO, type Output } from "./output.js";
import type { Records } from "./records.js";
import type { Service } from "./service.js";

/** What a command gets: its parsed arguments, the output, and lazy access to the library. */
export interface CommandContext {
  values: Parsed["values"];
  positionals: string[];
  io: IO;
  out: Output;
  /** The manifest, resolved once (flag, ./cinderts.yaml, env, embedded default). */
  manifest(): Promise<LoadedManifest>;
  /** The library opened on that manifest; driver setup is deferred (see ready()). */
  open(): Promise<Cinderts>;
  /** Only the records (persistence), for commands that list and show. */
  records(): Promise<Records>;
  /** URL the CLI resolves its own plugins from. */
  cliUrl: string;
  /** An AbortSignal that fires on Ctrl-C, for long copies. */
  signal: AbortSignal;
  /**
   * What commands call: the library in this process, or a cinderts server with --server / $CINDERTS_SERVER.
   * Resolved on first use, after the command has checked its input.
   */
  service(): Promise<Service>;
  /** The server commands run against, if any (for commands that exist only with a server or only without). */
  server: { url: string } | undefined;
}

export interface CommandSpec {
  words: readonly string[];
  args?: string;
  summary: string;
  options?: Options;
  /** Names of the positionals, required unless in brackets ("[NAME]"). */
  positionals?: readonly string[];
  /** false: runs in-process only; with --server it fails with INVALID_ARGUMENT saying so. */
  remote?: boolean;
  run(ctx: CommandContext): Promise<void>;
}

// ───────────── helpers ─────────────

function positional(ctx: CommandContext, i: number, name: string): string {
  const v = ctx.positionals[i];
  if (v === undefined || v === "") throw new InvalidArgumentError(`missing ${name}`, { issues: [{ path: name, message: "required" }] });
  return v;
}

async function readJsonArg(ctx: CommandContext, source: string, flag: string): Promise<unknown> {
  let text: string;
  try {
    text = source === "-" ? await ctx.io.readStdin() : await readFile(source, "utf8");
  } catch (e) {
    throw new InvalidArgumentError(`${flag} ${source}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new InvalidArgumentError(`${flag} ${source === "-" ? "(stdin)" : source}: not valid JSON: ${(e as Error).message}`);
  }
}

function metadataArg(values: Parsed["values"]): Record<string, string> | undefined {
  const list = values.metadata;
  if (!Array.isArray(list) || list.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const kv of list) {
    const i = kv.indexOf("=");
    if (i <= 0) throw new InvalidArgumentError(`--metadata ${JSON.stringify(kv)}: must be KEY=VALUE`, { issues: [{ path: "metadata", message: "must be KEY=VALUE" }] });
    out[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return out;
}

const showSecrets = (values: Parsed["values"]) => values["show-secrets"] === true;
const VOLUME_COLUMNS = [
  ["id", "ID"],
  ["name", "NAME"],
  ["backend", "BACKEND"],
  ["size", "SIZE_GIB"],
  ["status", "STATUS"],
] as const;
const SNAPSHOT_COLUMNS = [
  ["id", "ID"],
  ["name", "NAME"],
  ["volume_id", "VOLUME"],
  ["volume_size", "SIZE_GIB"],
  ["status", "STATUS"],
] as const;
const CONNECTION_COLUMNS = [
  ["id", "ID"],
  ["volume_id", "VOLUME"],
  ["protocol", "PROTOCOL"],
  ["status", "STATUS"],
  ["node_id", "NODE"],
  ["path", "PATH"],
] as const;

// ───────────── commands ─────────────

const BACKEND = { backend: { type: "string", value: "NAME", help: "backend (default: the only one, or 'default')" } } satisfies Options;

export const COMMANDS: CommandSpec[] = [
  {
    words: ["backend", "list"],
    summary: "list the backends of the manifest",
    async run(ctx) {
      const list = await (await ctx.service()).backends();
      ctx.out.result(
        list,
        () => table(list, [["name", "NAME"], ["driver", "DRIVER"], ["driver_version", "VERSION"], ["vendor", "VENDOR"]]),
        () => list.map((b) => b.name).join("\n"),
      );
    },
  },
  {
    words: ["backend", "stats"],
    args: "[NAME] [--refresh]",
    summary: "capacity and capabilities with Cinder's field names (all backends without NAME)",
    positionals: ["[NAME]"],
    options: { refresh: { type: "boolean", help: "ask the backend again instead of using cached stats" } },
    async run(ctx) {
      const refresh = ctx.values.refresh === true;
      const name = ctx.positionals[0];
      const all = await (await ctx.service()).stats(name, { refresh });
      if (name !== undefined) {
        const s = all[0]!;
        ctx.out.result(s, () => JSON.stringify(s, null, 2), () => s.volume_backend_name);
        return;
      }
      ctx.out.result(all, () => JSON.stringify(all, null, 2), () => all.map((s) => s.volume_backend_name).join("\n"));
    },
  },
  {
    words: ["driver", "list"],
    summary: "installed driver plugins with their options as JSON Schema",
    async run(ctx) {
      const list = await (await ctx.service()).drivers();
      ctx.out.result(
        list,
        () =>
          table(
            list.map((d) => ({ ...d, backends: d.backends.join(",") || "-", state: d.error ? `error: ${oneLine(d.error)}` : "ok" })),
            [["id", "ID"], ["package", "PACKAGE"], ["version", "VERSION"], ["vendor", "VENDOR"], ["backends", "BACKENDS"], ["state", "STATE"]],
          ) + "\n(--json shows each driver's options as JSON Schema)",
        () => list.map((d) => d.package).join("\n"),
      );
    },
  },

  // volumes
  {
    words: ["volume", "create"],
    args: "--size GIB [--backend NAME] [--name TEXT] [--from-snapshot ID | --from-volume ID] [--metadata K=V]…",
    summary: "create a volume, empty or as a copy of a snapshot or a volume",
    options: {
      size: { type: "string", value: "GIB", help: "size in GiB (default with a source: the source's size)" },
      ...BACKEND,
      name: { type: "string", value: "TEXT", help: "display name" },
      "from-snapshot": { type: "string", value: "ID", help: "new volume with the data of this snapshot" },
      "from-volume": { type: "string", value: "ID", help: "clone of this volume" },
      metadata: { type: "string", multiple: true, value: "K=V", help: "metadata entry (repeatable)" },
    },
    async run(ctx) {
      const size = sizeArg(ctx.values);
      const name = str(ctx.values, "name");
      const snapshotId = str(ctx.values, "from-snapshot");
      const sourceId = str(ctx.values, "from-volume");
      const metadata = metadataArg(ctx.values);
      if (size === undefined && !snapshotId && !sourceId) {
        throw new InvalidArgumentError("--size is required (a whole number of GiB)", { issues: [{ path: "size", message: "required" }] });
      }
      // Validate everything that can be checked without the manifest first: bad input never opens a store.
      const input = { size: size ?? 1, name, snapshot_id: snapshotId, source_volume_id: sourceId, metadata };
      parseInput(CreateVolumeInput, input, "volume");

      const view = await (await ctx.service()).createVolume({ ...input, size, backend: str(ctx.values, "backend") });
      ctx.out.result(view, () => details(view), () => view.id);
    },
  },
  {
    words: ["volume", "list"],
    args: "[--backend NAME] [--all]",
    summary: "list volumes",
    options: { backend: { type: "string", value: "NAME", help: "only this backend" }, all: { type: "boolean", help: "include deleted volumes" } },
    async run(ctx) {
      const list = await (await ctx.service()).listVolumes({ backend: str(ctx.values, "backend"), all: ctx.values.all === true });
      ctx.out.result(list, () => table(list, VOLUME_COLUMNS), () => list.map((v) => v.id).join("\n"));
    },
  },
  {
    words: ["volume", "show"],
    args: "ID",
    summary: "show a volume",
    positionals: ["ID"],
    async run(ctx) {
      const id = positional(ctx, 0, "volume ID");
      const view = await (await ctx.service()).getVolume(id);
      ctx.out.result(view, () => details(view), () => view.id);
    },
  },
  {
    words: ["volume", "extend"],
    args: "ID --size GIB",
    summary: "grow a volume (also while attached: the attached path grows too)",
    positionals: ["ID"],
    options: { size: { type: "string", value: "GIB", help: "new size in GiB" } },
    async run(ctx) {
      const id = positional(ctx, 0, "volume ID");
      const size = sizeArg(ctx.values);
      if (size === undefined) throw new InvalidArgumentError("--size is required (the new size in GiB)", { issues: [{ path: "size", message: "required" }] });
      const view = await (await ctx.service()).extendVolume(id, size);
      ctx.out.result(view, () => details(view), () => view.id);
    },
  },
  {
    words: ["volume", "delete"],
    args: "ID [--force]",
    summary: "delete a volume (deleting a deleted volume succeeds)",
    positionals: ["ID"],
    options: { force: { type: "boolean", help: "also disconnect it and delete its snapshots" } },
    async run(ctx) {
      const id = positional(ctx, 0, "volume ID");
      const view = await (await ctx.service()).deleteVolume(id, { force: ctx.values.force === true });
      ctx.out.result(view, () => `volume ${view.id} deleted`);
    },
  },
  {
    words: ["volume", "attach"],
    args: "ID",
    summary: "attach a volume on this host; prints the connection with its path",
    positionals: ["ID"],
    async run(ctx) {
      const id = positional(ctx, 0, "volume ID");
      const view = await (await ctx.service()).attachVolume(id);
      ctx.out.result(view, () => details(view), () => view.path ?? view.id);
    },
  },
  {
    words: ["volume", "detach"],
    args: "ID [--force]",
    summary: "detach a volume attached on this host and remove its connection",
    positionals: ["ID"],
    options: { force: { type: "boolean", help: "detach even if the host side reports it busy" } },
    async run(ctx) {
      const id = positional(ctx, 0, "volume ID");
      const view = await (await ctx.service()).detachVolume(id, { force: ctx.values.force === true });
      ctx.out.result(view, () => `volume ${view.id} detached`);
    },
  },
  {
    words: ["volume", "connect"],
    args: "ID --connector FILE|- [--show-secrets]",
    summary: "export a volume and map it to a host; prints the connection with conn_info",
    positionals: ["ID"],
    options: {
      connector: { type: "string", value: "FILE|-", help: "the host's connector properties (JSON; - reads stdin)" },
      "show-secrets": { type: "boolean", help: "include CHAP secrets in conn_info (the host needs them to log in)" },
    },
    async run(ctx) {
      const id = positional(ctx, 0, "volume ID");
      const source = str(ctx.values, "connector");
      if (!source) throw new InvalidArgumentError("--connector FILE|- is required", { issues: [{ path: "connector", message: "required" }] });
      const connector = await readJsonArg(ctx, source, "--connector");
      const view = await (await ctx.service()).connect(id, connector, { secrets: showSecrets(ctx.values) });
      ctx.out.result(view, () => details(view), () => view.id);
    },
  },

  // snapshots
  {
    words: ["snapshot", "create"],
    args: "VOLUME_ID [--name TEXT]",
    summary: "snapshot a volume",
    positionals: ["VOLUME_ID"],
    options: {
      name: { type: "string", value: "TEXT", help: "display name" },
      metadata: { type: "string", multiple: true, value: "K=V", help: "metadata entry (repeatable)" },
    },
    async run(ctx) {
      const volumeId = positional(ctx, 0, "VOLUME_ID");
      const input = { volume_id: volumeId, name: str(ctx.values, "name"), metadata: metadataArg(ctx.values) };
      parseInput(CreateSnapshotInput, input, "snapshot");
      const view = await (await ctx.service()).createSnapshot(input);
      ctx.out.result(view, () => details(view), () => view.id);
    },
  },
  {
    words: ["snapshot", "list"],
    args: "[--volume ID] [--all]",
    summary: "list snapshots",
    options: { volume: { type: "string", value: "ID", help: "only snapshots of this volume" }, all: { type: "boolean", help: "include deleted snapshots" } },
    async run(ctx) {
      const list = await (await ctx.service()).listSnapshots({ volume_id: str(ctx.values, "volume"), all: ctx.values.all === true });
      ctx.out.result(list, () => table(list, SNAPSHOT_COLUMNS), () => list.map((s) => s.id).join("\n"));
    },
  },
  {
    words: ["snapshot", "show"],
    args: "ID",
    summary: "show a snapshot",
    positionals: ["ID"],
    async run(ctx) {
      const id = positional(ctx, 0, "snapshot ID");
      const view = await (await ctx.service()).getSnapshot(id);
      ctx.out.result(view, () => details(view), () => view.id);
    },
  },
  {
    words: ["snapshot", "delete"],
    args: "ID",
    summary: "delete a snapshot (deleting a deleted snapshot succeeds)",
    positionals: ["ID"],
    async run(ctx) {
      const id = positional(ctx, 0, "snapshot ID");
      const view = await (await ctx.service()).deleteSnapshot(id);
      ctx.out.result(view, () => `snapshot ${view.id} deleted`);
    },
  },

  // connections
  {
    words: ["connection", "list"],
    args: "[--volume ID] [--show-secrets]",
    summary: "list connections (exports mapped to hosts, local attaches)",
    options: { volume: { type: "string", value: "ID", help: "only connections of this volume" }, "show-secrets": { type: "boolean", help: "include secrets in conn_info" } },
    async run(ctx) {
      const list = await (await ctx.service()).listConnections({ volume_id: str(ctx.values, "volume"), secrets: showSecrets(ctx.values) });
      ctx.out.result(list, () => table(list, CONNECTION_COLUMNS), () => list.map((c) => c.id).join("\n"));
    },
  },
  {
    words: ["connection", "show"],
    args: "ID [--show-secrets]",
    summary: "show a connection",
    positionals: ["ID"],
    options: { "show-secrets": { type: "boolean", help: "include secrets in conn_info" } },
    async run(ctx) {
      const id = positional(ctx, 0, "connection ID");
      const view = await (await ctx.service()).getConnection(id, { secrets: showSecrets(ctx.values) });
      ctx.out.result(view, () => details(view), () => view.id);
    },
  },
  {
    words: ["connection", "disconnect"],
    args: "CONNECTION_ID [--force]",
    summary: "unmap a connection (detaching first if attached here); disconnecting twice succeeds",
    positionals: ["CONNECTION_ID"],
    options: { force: { type: "boolean", help: "also when attached on another node" } },
    async run(ctx) {
      const id = positional(ctx, 0, "CONNECTION_ID");
      parseInput(ResourceIdSchema, id, "connection id");
      const existed = await (await ctx.service()).disconnect(id, { force: ctx.values.force === true });
      const result = { id, disconnected: true };
      ctx.out.result(result, () => (existed ? `connection ${id} disconnected` : `connection ${id} is not connected (nothing to do)`));
    },
  },

  // host side
  {
    words: ["connector", "show"],
    summary: "this host's connector properties (what `volume connect --connector` wants from a host)",
    async run(ctx) {
      const props = await (await ctx.service()).connectorProperties();
      ctx.out.result(props, () => JSON.stringify(props, null, 2), () => props.host);
    },
  },
  {
    words: ["connector", "validate"],
    args: "--backend NAME --connector FILE|-",
    summary: "check that a host's connector properties suit a backend",
    options: { ...BACKEND, connector: { type: "string", value: "FILE|-", help: "connector properties (JSON; - reads stdin)" } },
    async run(ctx) {
      const source = str(ctx.values, "connector");
      if (!source) throw new InvalidArgumentError("--connector FILE|- is required", { issues: [{ path: "connector", message: "required" }] });
      const connector = await readJsonArg(ctx, source, "--connector");
      const result = await (await ctx.service()).validateConnector(str(ctx.values, "backend"), connector);
      const host = (result.connector as { host?: unknown }).host;
      ctx.out.result(result, () => `connector of host ${String(host)} is valid for backend ${result.backend}`, () => result.backend);
    },
  },

  // state
  {
    words: ["state", "dump"],
    args: "[--backend NAME] [--include-secrets]",
    summary: "dump records and backend descriptions as JSON (versioned format; secrets redacted)",
    options: { backend: { type: "string", value: "NAME", help: "only this backend" }, "include-secrets": { type: "boolean", help: "keep secrets (needed to restore exports with CHAP)" } },
    async run(ctx) {
      const dump = await (await ctx.service()).dump({ backend: str(ctx.values, "backend"), includeSecrets: ctx.values["include-secrets"] === true });
      // A dump is data, not a report: it is printed as JSON with or without --json.
      ctx.io.stdout(JSON.stringify(dump, null, 2) + "\n");
    },
  },
  {
    words: ["state", "load"],
    args: "FILE|- [--check]",
    summary: "load a dump into persistence (records are upserted; --check only validates)",
    positionals: ["FILE"],
    options: { check: { type: "boolean", help: "parse and check the dump, write nothing" } },
    async run(ctx) {
      const file = positional(ctx, 0, "FILE");
      const json = await readJsonArg(ctx, file, "state load");
      const check = ctx.values.check === true;
      const r = await (await ctx.service()).load(json, { check });
      const result = { file, persisted: !check, volumes: r.volumes, snapshots: r.snapshots, connections: r.connections, written: r.written };
      const { written } = result;
      ctx.out.result(result, () =>
        check
          ? `${file}: valid dump with ${result.volumes} volume(s), ${result.snapshots} snapshot(s), ${result.connections} connection(s); nothing written`
          : `loaded ${written.volumes} volume(s), ${written.snapshots} snapshot(s), ${written.connections} connection(s) from ${file}`,
      );
    },
  },
  {
    words: ["reconcile"],
    args: "[--backend NAME] [--delete-orphans] [--stale-after SECONDS]",
    summary: "settle what crashed operations left behind (records stuck in creating, orphans)",
    options: {
      backend: { type: "string", value: "NAME", help: "only this backend" },
      "delete-orphans": { type: "boolean", help: "delete backend volumes that have no record (default: report them)" },
      "stale-after": { type: "string", value: "SECONDS", help: "treat intents of other hosts older than this as dead" },
    },
    async run(ctx) {
      const staleText = str(ctx.values, "stale-after");
      const staleAfter = staleText === undefined ? undefined : Number(staleText);
      if (staleAfter !== undefined && !(Number.isFinite(staleAfter) && staleAfter >= 0)) {
        throw new InvalidArgumentError(`--stale-after: must be a number of seconds, not ${JSON.stringify(staleText)}`);
      }
      const report = await (await ctx.service()).reconcile({
        backend: str(ctx.values, "backend"),
        deleteOrphans: ctx.values["delete-orphans"] === true,
        staleAfterMs: staleAfter === undefined ? undefined : staleAfter * 1000,
      });
      ctx.out.result(report, () => {
        const lines = [
          ...report.actions.map((a) => `${a.backend}: ${a.kind} ${a.id}: ${a.action}`),
          ...report.orphans.map((o) => `${o.backend}: orphan ${o.id}${o.deleted ? " deleted" : " (no record; --delete-orphans removes it)"}`),
          ...report.missing.map((m) => `${m.backend}: ${m.kind} ${m.id} has a record but is missing on the backend`),
          ...report.skipped.map((s) => `${s.kind} ${s.id} skipped: ${s.reason}`),
        ];
        return lines.length ? lines.join("\n") : "nothing to reconcile";
      });
    },
  },
];
