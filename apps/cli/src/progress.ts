import { bytes } from "./output.js";

/** The bar's text for a state of a copy; pure, so that it is tested without a terminal. */
export function renderBar(label: string, done: number, total: number, width: number, elapsedMs: number): string {
  const frac = total > 0 ? Math.min(1, Math.max(0, done / total)) : 0;
  const pct = `${Math.floor(frac * 100)}%`.padStart(4);
  const rate = elapsedMs > 0 ? `${bytes((done / elapsedMs) * 1000)}/s` : "";
  const tail = ` ${pct} ${bytes(done)}/${bytes(total)} ${rate}`.trimEnd();
  const barWidth = Math.max(10, Math.min(40, width - label.length - tail.length - 4));
  const full = Math.round(frac * barWidth);
  return `${label} [${"#".repeat(full)}${"-".repeat(barWidth - full)}]${tail}`;
}

export interface ProgressBar {
  update(done: number, total: number): void;
  finish(): void;
}

/**
 * A one-line bar redrawn with \r on stderr, at most 10 times a second. Created only when both streams are
 * terminals and neither --json nor --quiet is set (the caller decides).
 */
export function progressBar(write: (s: string) => void, label: string, columns: number, now = () => performance.now()): ProgressBar {
  const started = now();
  let last = -Infinity;
  let drawn = false;
  let state = { done: 0, total: 0 };
  const draw = () => {
    const line = renderBar(label, state.done, state.total, columns, now() - started);
    write(`\r${line.padEnd(columns - 1).slice(0, Math.max(20, columns - 1))}`);
    drawn = true;
  };
  return {
    update(done, total) {
      state = { done, total };
      const t = now();
      if (t - last >= 100 || done >= total) {
        last = t;
        draw();
      }
    },
    finish() {
      if (drawn) {
        draw();
        write("\n");
      }
    },
  };
}
