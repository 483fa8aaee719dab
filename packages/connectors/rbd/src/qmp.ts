import { createConnection } from "node:net";

/**
 * Minimal QMP client: one connection per call sequence, as qemu-storage-daemon's monitor is only used for
 * rare control operations (resize, quit).
 */
export async function qmp(socketPath: string, commands: { execute: string; arguments?: Record<string, unknown> }[], timeoutMs = 10_000): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(socketPath);
    const results: unknown[] = [];
    let buf = "";
    let greeted = false;
    let next = 0;
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`QMP ${socketPath}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    const all = [{ execute: "qmp_capabilities" }, ...commands];
    const send = () => {
      const c = all[next];
      if (!c) {
        clearTimeout(timer);
        sock.end();
        resolve(results.slice(1));
        return;
      }
      sock.write(JSON.stringify({ ...c, id: next }) + "\n");
    };
    sock.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    sock.on("close", () => {
      clearTimeout(timer);
      // `quit` closes the socket right after its answer (or before it reaches us)
      if (next >= all.length - 1 && all.at(-1)?.execute === "quit") resolve(results.slice(1));
      else if (next < all.length) reject(new Error(`QMP ${socketPath}: connection closed`));
    });
    sock.on("data", (d) => {
      buf += d.toString("utf8");
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i).trim();
        buf = buf.slice(i + 1);
        if (!line) continue;
        const msg = JSON.parse(line) as { QMP?: unknown; return?: unknown; error?: { class: string; desc: string }; id?: number; event?: string };
        if (msg.QMP && !greeted) {
          greeted = true;
          send();
        } else if (msg.id === next && ("return" in msg || msg.error)) {
          if (msg.error) {
            clearTimeout(timer);
            sock.destroy();
            reject(new Error(`QMP ${all[next]!.execute}: ${msg.error.class}: ${msg.error.desc}`));
            return;
          }
          results.push(msg.return);
          next++;
          send();
        }
      }
    });
  });
}
