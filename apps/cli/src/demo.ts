import { mkdtempSync, rmSync } from "node:fs";
import { open as openFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Cinderts, silentLogger, volumeView, type Backend, type ConnectionRecord } from "@cinderts/core";
import { str } from "./args.js";
import type { CommandContext, CommandSpec } from "./commands.js";
import { embeddedManifest } from "./manifest.js";
import { safeText, table } from "./output.js";

const FIRST = "cinderts demo: written BEFORE the snapshot";
const SECOND = "cinderts demo: written AFTER the snapshot";
const BLOCK = 512;

async function writeAt(path: string, text: string): Promise<void> {
  const buf = Buffer.alloc(BLOCK); // zero-padded: the second text fully replaces the first
  buf.write(text);
  const fh = await openFile(path, "r+");
  try {
    await fh.write(buf, 0, BLOCK, 0);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function readAt(path: string): Promise<string> {
  const buf = Buffer.alloc(BLOCK);
  const fh = await openFile(path, "r");
  try {
    await fh.read(buf, 0, BLOCK, 0);
  } finally {
    await fh.close();
  }
  const end = buf.indexOf(0);
  return buf.subarray(0, end < 0 ? BLOCK : end).toString("utf8");
}

/**
 * The main job, end to end on the embedded default (file backend + SQLite) in a temporary data directory:
 * create, attach, write, snapshot, overwrite, restore and clone, read back, clean up — printing each step.
 */
async function runDemo(ctx: CommandContext): Promise<void> {
  const given = str(ctx.values, "data-dir");
  const dataDir = given ? resolve(ctx.io.cwd, given) : mkdtempSync(join(tmpdir(), "cinderts-demo-"));
  const keep = ctx.values.keep === true || given !== undefined;
  const steps: { step: string; result: Record<string, unknown> }[] = [];
  let n = 0;
  const step = (what: string, result: Record<string, unknown>, line: string) => {
    steps.push({ step: what, result });
    if (!ctx.out.flags.json && !ctx.out.flags.quiet) ctx.io.stdout(`[${++n}] ${what}: ${safeText(line)}\n`);
  };

  const ct = await Cinderts.open(embeddedManifest(dataDir), { resolveFrom: [ctx.cliUrl], logger: silentLogger });
  const attached: { b: Backend; volumeId: string }[] = [];
  const created: string[] = [];
  let snapshotId: string | undefined;
  try {
    const b = ct.backend("default");
    step("data directory", { dataDir }, `${dataDir} (file backend "default", SQLite state beside it)`);

    const src = await b.createVolume({ size: 1, name: "demo-source" });
    created.push(src.id);
    step("create volume", volumeView(src), `${src.id}, 1 GiB, ${src.status}`);

    const attach = async (id: string): Promise<ConnectionRecord> => {
      const c = await b.attach(id);
      attached.push({ b, volumeId: id });
      return c;
    };
    const srcConn = await attach(src.id);
    const srcPath = srcConn.attach_info!.path;
    step("attach locally", { volume_id: src.id, path: srcPath }, `${srcPath}`);

    await writeAt(srcPath, FIRST);
    step("write through the attached path", { path: srcPath, data: FIRST }, `"${FIRST}"`);

    const snap = await b.createSnapshot({ volume_id: src.id, name: "demo-snapshot" });
    snapshotId = snap.id;
    step("snapshot", { id: snap.id, status: snap.status }, `${snap.id}, ${snap.status}`);

    await writeAt(srcPath, SECOND);
    step("overwrite the source", { path: srcPath, data: SECOND }, `"${SECOND}"`);

    const restored = await b.createVolume({ size: 1, name: "demo-from-snapshot", snapshot_id: snap.id });
    created.push(restored.id);
    const restoredPath = (await attach(restored.id)).attach_info!.path;
    const restoredData = await readAt(restoredPath);
    step("volume from the snapshot shows the old data", { volume_id: restored.id, path: restoredPath, data: restoredData }, `"${restoredData}"`);

    const clone = await b.createVolume({ size: 1, name: "demo-clone", source_volume_id: src.id });
    created.push(clone.id);
    const clonePath = (await attach(clone.id)).attach_info!.path;
    const cloneData = await readAt(clonePath);
    step("clone of the source shows the new data", { volume_id: clone.id, path: clonePath, data: cloneData }, `"${cloneData}"`);

    const list = (await b.listVolumes()).map(volumeView);
    steps.push({ step: "volumes", result: { volumes: list } });
    if (!ctx.out.flags.json && !ctx.out.flags.quiet) ctx.io.stdout(table(list, [["id", "ID"], ["name", "NAME"], ["size", "SIZE_GIB"], ["status", "STATUS"]]));

    if (restoredData !== FIRST || cloneData !== SECOND) {
      throw new Error(`demo data mismatch: from snapshot "${restoredData}", clone "${cloneData}"`);
    }
  } finally {
    // Clean up whatever was made, also after a failure half-way.
    for (const { b, volumeId } of attached.reverse()) await b.detachVolume(volumeId).catch(() => undefined);
    if (snapshotId) await ct.backend("default").deleteSnapshot(snapshotId).catch(() => undefined);
    for (const id of created.reverse()) await ct.backend("default").deleteVolume({ id, force: true }).catch(() => undefined);
    const left = (await ct.listVolumes().catch(() => [])).length;
    await ct.close();
    if (!keep) rmSync(dataDir, { recursive: true, force: true });
    step("clean up", { volumes_left: left, data_dir_removed: !keep }, `detached, deleted ${created.length} volume(s) and the snapshot${keep ? `; kept ${dataDir}` : `; removed ${dataDir}`}`);
  }
  if (ctx.out.flags.json) ctx.io.stdout(JSON.stringify({ steps }, null, 2) + "\n");
}

export const DEMO: CommandSpec = {
  words: ["demo"],
  args: "[--data-dir DIR] [--keep]",
  summary: "the main job on the embedded default: create, attach, write, snapshot, clone, show, clean up",
  // It shows the library on a private data directory; against a server it would be a different demo.
  remote: false,
  options: {
    "data-dir": { type: "string", value: "DIR", help: "use this data directory (kept) instead of a temporary one" },
    keep: { type: "boolean", help: "keep the temporary data directory" },
  },
  run: runDemo,
};
