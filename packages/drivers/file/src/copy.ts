import { constants } from "node:fs";
import { copyFile, open, rm, stat } from "node:fs/promises";
import type { CommandRunner } from "@cinderts/core";

export type Progress = (doneBytes: number, totalBytes: number) => void;

/** Errors by which the kernel says "no reflink here" (filesystem without FICLONE, across filesystems). */
const NO_REFLINK = new Set(["ENOTSUP", "EOPNOTSUPP", "EXDEV", "EINVAL", "ENOSYS", "ENOTTY", "EBADF"]);

export const isNoReflink = (e: unknown): boolean => NO_REFLINK.has((e as NodeJS.ErrnoException)?.code ?? "");

/**
 * FICLONE: the destination shares every extent with the source, instantly, whatever the size. Throws
 * the kernel's error when the filesystem cannot (callers decide whether to fall back).
 */
export async function reflinkCopy(src: string, dst: string): Promise<void> {
  await copyFile(src, dst, constants.COPYFILE_FICLONE_FORCE);
}

/** Creates a small file and tries to reflink it: does this directory's filesystem support FICLONE? */
export async function probeReflink(dir: string): Promise<boolean> {
  const base = `${dir}/.probe-reflink-${process.pid}-${Date.now()}`;
  try {
    const fh = await open(base, "w", 0o600);
    await fh.write(Buffer.alloc(4096, 0x5a), 0, 4096, 0);
    await fh.close();
    await reflinkCopy(base, `${base}.clone`);
    return true;
  } catch (e) {
    if (isNoReflink(e)) return false;
    throw e;
  } finally {
    await rm(base, { force: true });
    await rm(`${base}.clone`, { force: true });
  }
}

/** Calls progress at most every `everyMs`, and always for the final figure. */
function throttled(progress: Progress | undefined, everyMs = 200): Progress {
  if (!progress) return () => undefined;
  let last = 0;
  return (done, total) => {
    const now = performance.now();
    if (done >= total || now - last >= everyMs) {
      last = now;
      progress(done, total);
    }
  };
}

export interface SparseCopyOptions {
  progress?: Progress;
  signal?: AbortSignal;
}

/**
 * `cp --sparse=always --reflink=never`: GNU cp finds the data with SEEK_DATA/SEEK_HOLE, so holes are
 * neither read nor written, and turns zero runs inside data into holes. Node's fs has no SEEK_DATA, which
 * is why this is the default copy method (bench/file measures it against the in-process copy).
 * Progress is the destination's allocated bytes against the source's, polled while cp runs.
 */
export async function sparseCopyWithCp(runner: CommandRunner, src: string, dst: string, opts: SparseCopyOptions = {}): Promise<void> {
  const total = (await stat(src)).blocks * 512;
  const report = throttled(opts.progress);
  let polling = true;
  const poll = setInterval(() => {
    stat(dst).then(
      (s) => polling && report(Math.min(s.blocks * 512, total), total),
      () => undefined,
    );
  }, 250);
  try {
    // No timeout: a large volume takes as long as the disks need; the caller's signal stops it.
    await runner.run(["cp", "--sparse=always", "--reflink=never", "--", src, dst], { timeoutMs: 0, signal: opts.signal });
  } finally {
    polling = false;
    clearInterval(poll);
  }
  report(total, total);
}

const BLOCK = 4096;

/**
 * In-process sparse copy: reads the source in chunks, skips blocks that are all zeros (the destination
 * is ftruncated to size first, so skipped blocks are holes) and coalesces the rest into large writes.
 * Holes in the source are read as zeros, which costs memory bandwidth that cp's SEEK_DATA avoids.
 */
export async function sparseCopyInProcess(src: string, dst: string, chunkBytes: number, opts: SparseCopyOptions = {}): Promise<void> {
  const report = throttled(opts.progress);
  const s = await open(src, "r");
  try {
    const size = (await s.stat()).size;
    const d = await open(dst, "w", 0o600);
    try {
      await d.truncate(size);
      const buf = Buffer.allocUnsafe(chunkBytes);
      const zeros = Buffer.alloc(chunkBytes);
      const zeroBlock = zeros.subarray(0, BLOCK);
      for (let pos = 0; pos < size; ) {
        opts.signal?.throwIfAborted();
        const { bytesRead } = await s.read(buf, 0, Math.min(chunkBytes, size - pos), pos);
        if (bytesRead === 0) break;
        const chunk = buf.subarray(0, bytesRead);
        if (!chunk.equals(zeros.subarray(0, bytesRead))) {
          // Write runs of non-zero blocks; zero blocks inside the chunk stay holes.
          let runStart = -1;
          for (let off = 0; off <= bytesRead; off += BLOCK) {
            const end = Math.min(off + BLOCK, bytesRead);
            const isData = off < bytesRead && !chunk.subarray(off, end).equals(end - off === BLOCK ? zeroBlock : zeros.subarray(0, end - off));
            if (isData && runStart < 0) runStart = off;
            if (!isData && runStart >= 0) {
              await writeAll(d, chunk.subarray(runStart, off), pos + runStart);
              runStart = -1;
            }
          }
        }
        pos += bytesRead;
        report(pos, size);
      }
      report(size, size);
    } finally {
      await d.close();
    }
  } finally {
    await s.close();
  }
}

async function writeAll(fh: Awaited<ReturnType<typeof open>>, data: Buffer, position: number): Promise<void> {
  for (let off = 0; off < data.length; ) {
    const { bytesWritten } = await fh.write(data, off, data.length - off, position + off);
    off += bytesWritten;
  }
}
