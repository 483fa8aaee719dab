import { z } from "@cinderts/core";
import { main } from "./main.js";

// A CLI process parses each schema once or twice: zod's per-schema code generation (its "JIT") costs more than
// it saves there. The server, which parses the same schemas all day, keeps it.
z.config({ jitless: true });

// Ctrl-C during a long copy: the first asks the operation to stop and clean up (the driver sees the
// AbortSignal), the second quits at once and leaves the rest to `cinderts reconcile`.
const abort = new AbortController();
let interrupts = 0;
const onSignal = (sig: NodeJS.Signals) => {
  if (++interrupts > 1) process.exit(130);
  process.stderr.write("cinderts: interrupted, stopping (again to quit now)\n");
  abort.abort(new Error(`interrupted by ${sig}`));
};
process.on("SIGINT", onSignal);
process.on("SIGTERM", onSignal);
// `cinderts volume list | head -1`: a reader that went away is not an error worth a stack trace.
process.stdout.on("error", (e: NodeJS.ErrnoException) => process.exit(e.code === "EPIPE" ? 0 : 1));

let stdin: Promise<string> | undefined;
const code = await main(
  process.argv.slice(2),
  {
    stdout: (s) => void process.stdout.write(s),
    stderr: (s) => void process.stderr.write(s),
    readStdin: () =>
      (stdin ??= new Promise<string>((resolve, reject) => {
        const chunks: Buffer[] = [];
        process.stdin.on("data", (c: Buffer) => chunks.push(c));
        process.stdin.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
        process.stdin.on("error", reject);
      })),
    env: process.env,
    cwd: process.cwd(),
    interactive: Boolean(process.stdout.isTTY && process.stderr.isTTY),
    columns: process.stderr.columns || 80,
  },
  { signal: abort.signal },
);
// Exit now rather than wait for stray handles of plugins: stdout/stderr writes to pipes and files are
// synchronous on Linux, so nothing printed is lost.
process.exit(code);
