import { parseArgs, type ParseArgsConfig } from "node:util";
import { InvalidArgumentError } from "@cinderts/core";

export type OptionSpec = NonNullable<ParseArgsConfig["options"]>[string] & { help?: string; value?: string };
export type Options = Record<string, OptionSpec>;

/** Flags every command accepts, wherever they appear on the line. */
export const GLOBAL_OPTIONS = {
  manifest: { type: "string", value: "FILE", help: "manifest to use (default ./cinderts.yaml, $CINDERTS_MANIFEST, else the embedded default)" },
  server: { type: "string", value: "URL", help: "run the command against this cinderts server (default $CINDERTS_SERVER)" },
  token: {
    type: "string",
    value: "TOKEN",
    help: "bearer token for --server; prefer $CINDERTS_TOKEN: a token on the command line is visible to other users in ps",
  },
  json: { type: "boolean", help: "machine output: one JSON document on stdout" },
  quiet: { type: "boolean", short: "q", help: "print only ids (or nothing)" },
  verbose: { type: "boolean", short: "v", help: "log operations (JSON lines on stderr)" },
  help: { type: "boolean", short: "h", help: "show help" },
} satisfies Options;

export interface Parsed {
  /** Command words as typed, e.g. ["volume", "create"]. */
  words: string[];
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

/**
 * Finds the command words: the leading bare words, skipping global flags (and their values) so that
 * `cinderts --json volume list` and `cinderts volume list --json` both work.
 */
const GLOBAL_FLAG = /^(--(json|quiet|verbose|help|manifest|server|token)(=.*)?|-[qvhm])$/;
/** Global flags whose value is the next word (unless given as --flag=value). */
const TAKES_VALUE = new Set(["--manifest", "-m", "--server", "--token"]);

export function commandWords(argv: readonly string[], max: number): { words: string[]; rest: string[] } {
  const words: string[] = [];
  const rest: string[] = [];
  let i = 0;
  for (; i < argv.length && words.length < max; i++) {
    const t = argv[i]!;
    if (t === "--") break;
    if (t.startsWith("-")) {
      // A command's own flag ends the command words: its value must not be taken for one (`reconcile --backend b`).
      if (!GLOBAL_FLAG.test(t)) break;
      rest.push(t);
      if (TAKES_VALUE.has(t) && i + 1 < argv.length) rest.push(argv[++i]!);
      continue;
    }
    words.push(t);
  }
  rest.push(...argv.slice(i));
  return { words, rest };
}

/**
 * node's parseArgs refuses `--size -1` as ambiguous; a negative number after a value option is clearly its
 * value, and saying "size must be at least 1" is more helpful than "ambiguous option".
 */
function joinNegativeValues(argv: readonly string[], options: Options): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const t = argv[i]!;
    const next = argv[i + 1];
    const name = t.startsWith("--") ? t.slice(2) : undefined;
    if (name && !name.includes("=") && options[name]?.type === "string" && next !== undefined && /^-\d/.test(next)) {
      out.push(`${t}=${next}`);
      i++;
    } else out.push(t);
  }
  return out;
}

export function parseCommandArgs(argv: readonly string[], options: Options): { values: Parsed["values"]; positionals: string[] } {
  const all: Options = { ...GLOBAL_OPTIONS, ...options };
  const config = Object.fromEntries(
    Object.entries(all).map(([k, { help: _h, value: _v, ...o }]) => [k, o]),
  ) as NonNullable<ParseArgsConfig["options"]>;
  try {
    const r = parseArgs({ args: joinNegativeValues(argv, all), options: config, allowPositionals: true, strict: true });
    return { values: r.values as Parsed["values"], positionals: r.positionals };
  } catch (e) {
    // node's messages run over several lines with advice about "--"; the first sentence is the useful part.
    const msg = (e as Error).message.split("\n")[0]!.replace(/\. To specify a positional argument.*$/, "");
    throw new InvalidArgumentError(msg);
  }
}

/** A string flag's value, or undefined. */
export function str(values: Parsed["values"], name: string): string | undefined {
  const v = values[name];
  return typeof v === "string" ? v : undefined;
}

/**
 * A size in GiB as typed. Numbers (also negative or fractional) go to core's validation so that the message
 * is the same as the library's; anything else is refused here.
 */
export function sizeArg(values: Parsed["values"], name = "size"): number | undefined {
  const text = str(values, name);
  if (text === undefined) return undefined;
  if (!/^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(text.trim())) {
    throw new InvalidArgumentError(`--${name}: must be a whole number of GiB, not ${JSON.stringify(text)}`, {
      issues: [{ path: name, message: "must be a whole number of GiB" }],
    });
  }
  return Number(text);
}
