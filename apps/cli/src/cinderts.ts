import { writeSync } from "node:fs";
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
  writeFd(2, "cinderts: interrupted, stopping (again to quit now)\n");
  abort.abort(new Error(`interrupted by ${sig}`));
};
process.on("SIGINT", onSignal);
process.on("SIGTERM", onSignal);
/**
 * Output goes straight to the file descriptor. Merely touching `process.stdout` on a pipe builds a net.Socket and
 * loads the stream and net modules: ~7 ms of every cold start, for one write. Pipes and files block on Linux, so a
 * write is whole; a descriptor a parent left non-blocking (EAGAIN) falls back to the stream, which queues.
 */
function writeFd(fd: 1 | 2, text: string): void {
  let buf = Buffer.from(text, "utf8");
  try {
    while (buf.length > 0) buf = buf.subarray(writeSync(fd, buf));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // `cinderts volume list | head -1`: a reader that went away is not an error worth a stack trace.
    if (code === "EPIPE") process.exit(fd === 1 ? 0 : 1);
    if (code !== "EAGAIN") throw e;
    (fd === 1 ? process.stdout : process.stderr).write(buf);
  }
}

let stdin: Promise<string> | undefined;
const code = await main(
  process.argv.slice(2),
  {
    stdout: (s) => writeFd(1, s),
    stderr: (s) => writeFd(2, s),
    readStdin: () =>
      (stdin ??= new Promise<string>((resolve, reject) => {
        const chunks: Buffer[] = [];
        process.stdin.on("data", (c: Buffer) => chunks.push(c));
        process.stdin.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
        process.stdin.on("error", reject);
      })),
    env: process.env,
    cwd: process.cwd(),
    // Asked only where a progress bar may be drawn, so that plain and --json runs never build the streams.
    get interactive() {
      return Boolean(process.stdout.isTTY && process.stderr.isTTY);
    },
    get columns() {
      return process.stderr.columns || 80;
    },
  },
  { signal: abort.signal },
);
// Exit now rather than wait for stray handles of plugins: everything printed was written synchronously above
// (or, after EAGAIN, by a stream that flushes pipes and files synchronously on Linux), so nothing is lost.
process.exit(code);
