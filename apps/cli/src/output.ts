/** Everything the CLI touches of its process, so that tests can run it in-process. */
export interface IO {
  stdout(text: string): void;
  stderr(text: string): void;
  readStdin(): Promise<string>;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Both streams are terminals: progress bars and colour are allowed. */
  interactive: boolean;
  columns: number;
}

export interface GlobalFlags {
  json: boolean;
  quiet: boolean;
  verbose: boolean;
  manifest?: string;
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;

/**
 * Text from records (names loaded from a dump) or from the user (a bad backend name) may hold control
 * characters; printed raw they would rewrite the terminal. Shown escaped instead.
 */
export function safeText(s: string): string {
  return s.replace(CONTROL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** One line, whatever the message: newlines become " | ", other control characters are escaped. */
export function oneLine(s: string): string {
  return safeText(s.replace(/\s*\r?\n\s*/g, " | ").trim());
}

/**
 * JSON for output. JSON.stringify leaves C1 control characters raw; escaped they are still the same JSON
 * string and cannot drive a terminal.
 */
export function toJson(value: unknown, pretty = true): string {
  return JSON.stringify(value, null, pretty ? 2 : undefined).replace(
    /[\u007f-\u009f\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

export function cell(v: unknown): string {
  if (v === null || v === undefined) return "-";
  if (typeof v === "object") return safeText(JSON.stringify(v));
  return safeText(String(v));
}

export function table(rows: readonly Record<string, unknown>[], columns: readonly (readonly [string, string])[]): string {
  const head = columns.map(([, title]) => title);
  const body = rows.map((r) => columns.map(([key]) => cell(r[key])));
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(head), ...body.map(line)].join("\n") + "\n";
}

/** `key  value` lines for one object; nested values as compact JSON. */
export function details(obj: Record<string, unknown>): string {
  const keys = Object.keys(obj);
  const w = Math.max(...keys.map((k) => k.length));
  return keys.map((k) => `${k.padEnd(w)}  ${cell(obj[k])}`).join("\n") + "\n";
}

export class Output {
  constructor(
    private readonly io: IO,
    readonly flags: GlobalFlags,
  ) {}

  /**
   * Print a command's result: the object itself with --json, the id(s) with --quiet, otherwise the
   * human form.
   */
  result(value: unknown, human: () => string, quiet?: () => string | undefined): void {
    if (this.flags.json) {
      this.io.stdout(toJson(value) + "\n");
      return;
    }
    if (this.flags.quiet) {
      const q = quiet?.();
      if (q) this.io.stdout(q.endsWith("\n") ? q : q + "\n");
      return;
    }
    const text = human();
    if (text) this.io.stdout(text.endsWith("\n") ? text : text + "\n");
  }

  /** Progress notes for humans, on stderr so that stdout stays the result. Silent with --json/--quiet. */
  note(text: string): void {
    if (!this.flags.json && !this.flags.quiet) this.io.stderr(oneLine(text) + "\n");
  }
}

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];
export function bytes(n: number): string {
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(1)} ${UNITS[u]}`;
}
