import {
  Cinderts,
  InvalidArgumentError,
  createJsonLogger,
  exitCodeFor,
  isStorageError,
  silentLogger,
  toStorageError,
  type LoadedManifest,
  type LogLevel,
} from "@cinderts/core";
import { GLOBAL_OPTIONS, commandWords, parseCommandArgs, type Options } from "./args.js";
import { COMMANDS, type CommandContext, type CommandSpec } from "./commands.js";
import { DEMO } from "./demo.js";
import { NODE_COMMANDS } from "./node.js";
import { resolveManifest } from "./manifest.js";
import { LocalService } from "./local.js";
import { Records } from "./records.js";
import { serverTarget, type Service } from "./service.js";
import { Output, oneLine, toJson, type GlobalFlags, type IO } from "./output.js";

export { type IO } from "./output.js";

const ALL: CommandSpec[] = [...COMMANDS, ...NODE_COMMANDS, DEMO];
const VERSION = "0.1.0";

function optionHelp(options: Options): string[] {
  return Object.entries(options).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : "    "}--${name}${o.value ? ` ${o.value}` : ""}`;
    return `  ${flag.padEnd(30)} ${o.help ?? ""}`.trimEnd();
  });
}

function usage(): string {
  const lines = ALL.map((c) => `  ${[...c.words, c.args ?? ""].join(" ").trim()}\n      ${c.summary}`);
  return [
    "cinderts — create, snapshot, clone, attach and connect block-storage volumes",
    "",
    "usage: cinderts [--manifest FILE | --server URL] [--json] [--quiet] COMMAND …",
    "",
    "commands:",
    ...lines,
    "",
    "global flags:",
    ...optionHelp(GLOBAL_OPTIONS),
    "",
    "Without --manifest: ./cinderts.yaml, else $CINDERTS_MANIFEST, else the embedded default (a file backend",
    "named default and SQLite under $XDG_DATA_HOME/cinderts). With --server URL (or $CINDERTS_SERVER) every command",
    "runs against that cinderts server instead, with the token from $CINDERTS_TOKEN (or --token, which other users",
    "can read in ps); attach/detach still run this host's connector. Exit codes: 0 ok, 2 bad input, 3 configuration,",
    "4 not found, 5 conflict/in use, 6 busy, 7 timeout, 8 backend error, 9 unsupported, 10 not authenticated/",
    "not allowed, 1 internal.",
    "",
  ].join("\n");
}

function commandUsage(c: CommandSpec): string {
  return [
    `usage: cinderts ${[...c.words, c.args ?? ""].join(" ").trim()}`,
    "",
    c.summary,
    ...(c.options ? ["", "options:", ...optionHelp(c.options)] : []),
    "",
    "global flags:",
    ...optionHelp(GLOBAL_OPTIONS),
    "",
  ].join("\n");
}

function findCommand(words: string[]): CommandSpec | undefined {
  return ALL.find((c) => c.words.length <= words.length && c.words.every((w, i) => w === words[i]));
}

function loggerFor(flags: GlobalFlags, loaded: LoadedManifest, env: NodeJS.ProcessEnv, write: (s: string) => void) {
  // Errors are reported by the CLI itself (one line); logs are opt-in so that stderr stays that one line.
  const level: LogLevel | undefined =
    env.CINDERTS_DEBUG === "1"
      ? "debug"
      : flags.verbose
        ? "info"
        : (env.CINDERTS_LOG as LogLevel | undefined) ?? (loaded.manifest.logging ? loaded.manifest.logging.level : undefined);
  return level ? createJsonLogger({ level, write: (line) => write(line + "\n") }) : silentLogger;
}

/** Runs one command line; returns the exit code. Never throws. */
export async function main(argv: readonly string[], io: IO, opts: { signal?: AbortSignal; cliUrl?: string } = {}): Promise<number> {
  const debug = io.env.CINDERTS_DEBUG === "1";
  let json = argv.includes("--json");
  let ct: Cinderts | undefined;
  let records: Promise<Records> | undefined;
  try {
    const { words, rest } = commandWords(argv, 2);
    if (words.length === 0 || words[0] === "help") {
      if (argv.includes("--version")) {
        io.stdout(`cinderts ${VERSION}\n`);
        return 0;
      }
      const sub = words[0] === "help" ? findCommand(words.slice(1).concat(commandWords(rest, 2).words)) : undefined;
      io.stdout(sub ? commandUsage(sub) : usage());
      return words.length === 0 && !argv.some((a) => a === "--help" || a === "-h") ? 2 : 0;
    }
    const spec = findCommand(words);
    if (!spec) {
      const group = ALL.filter((c) => c.words[0] === words[0]);
      if (group.length) {
        if (words.length === 1 && rest.some((a) => a === "--help" || a === "-h")) {
          io.stdout(group.map(commandUsage).join("\n"));
          return 0;
        }
        throw new InvalidArgumentError(
          `unknown command "${words.join(" ")}"; ${words[0]} commands: ${group.map((c) => c.words.slice(1).join(" ")).join(", ")}`,
        );
      }
      throw new InvalidArgumentError(`unknown command "${words[0]}" (see cinderts --help)`);
    }
    // Words beyond the command's own are its positionals.
    const extra = words.slice(spec.words.length);
    const { values, positionals: tail } = parseCommandArgs(rest, spec.options ?? {});
    const positionals = [...extra, ...tail];
    const flags: GlobalFlags = {
      json: values.json === true,
      quiet: values.quiet === true,
      verbose: values.verbose === true,
      manifest: typeof values.manifest === "string" ? values.manifest : undefined,
    };
    json = flags.json;
    if (values.help === true) {
      io.stdout(commandUsage(spec));
      return 0;
    }
    const max = spec.positionals?.length ?? 0;
    if (positionals.length > max) {
      throw new InvalidArgumentError(
        `unexpected argument ${JSON.stringify(positionals[max])} for "${spec.words.join(" ")}" (usage: cinderts ${spec.words.join(" ")} ${spec.args ?? ""})`.trimEnd(),
      );
    }

    const server = serverTarget(values, io.env);
    if (server && spec.remote === false) {
      throw new InvalidArgumentError(
        `"${spec.words.join(" ")}" runs in-process only, not against a server: drop --server${io.env.CINDERTS_SERVER ? " and unset CINDERTS_SERVER" : ""}`,
        { issues: [{ path: "server", message: "not supported by this command" }] },
      );
    }

    let loaded: Promise<LoadedManifest> | undefined;
    let service: Promise<Service> | undefined;
    const manifest = () => (loaded ??= resolveManifest(flags.manifest, io.env, io.cwd).then((r) => r.loaded));
    const cliUrl = opts.cliUrl ?? import.meta.url;
    const logger = async () => loggerFor(flags, await manifest(), io.env, io.stderr);
    const ctx: CommandContext = {
      values,
      positionals,
      io,
      out: new Output(io, flags),
      cliUrl,
      signal: opts.signal ?? new AbortController().signal,
      manifest,
      open: async () => {
        if (ct) return ct;
        const m = await manifest();
        // lazySetup: listing and showing never pay for (or fail on) driver setup; commands that change
        // something run it for their backend first.
        ct = await Cinderts.open(m, { resolveFrom: [cliUrl], lazySetup: true, logger: await logger() });
        return ct;
      },
      records: async () => (records ??= manifest().then(async (m) => Records.open(m, { cliUrl, logger: await logger() }))),
      server: server ? { url: server.url } : undefined,
      // The server client (and its HTTP stack) loads only in server mode: in-process commands never pay for it.
      service: () =>
        (service ??= server ? import("./remote.js").then(({ RemoteService }) => new RemoteService(ctx, server)) : Promise.resolve(new LocalService(ctx))),
    };
    await spec.run(ctx);
    return 0;
  } catch (e) {
    const err = toStorageError(e);
    if (json) io.stderr(toJson({ error: err.toJSON() }, false) + "\n");
    else io.stderr(`cinderts: ${oneLine(err.message)}\n`);
    if (debug) io.stderr(`${(isStorageError(e) && e.cause instanceof Error ? e.cause : (e as Error))?.stack ?? String(e)}\n`);
    return exitCodeFor[err.code] ?? 1;
  } finally {
    await ct?.close().catch(() => undefined);
    await records?.then((r) => r.close()).catch(() => undefined);
  }
}
