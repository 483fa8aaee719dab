import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { open, stat, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assertPlugin, isStorageError, type AttachInfo, type ConnectionInfo, type StorageError } from "@cinderts/core";
import { connectorContract } from "@cinderts/testkit";
import { afterAll, describe, expect, it } from "vitest";
import plugin, { ConnectorLocalOptions } from "../src/index.js";
import { loopsOf, makeConnector, skipUnlessLoop } from "./helpers.js";

const MiB = 1024 * 1024;
const root = mkdtempSync(join(tmpdir(), "connector-local-test-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

async function volumeFile(sizeBytes = 16 * MiB): Promise<{ path: string; connInfo: ConnectionInfo }> {
  const path = join(root, `volume-${n++}`);
  await writeFile(path, "");
  await truncate(path, sizeBytes);
  return { path, connInfo: { driver_volume_type: "file", data: { path, format: "raw" } } };
}

async function failure(p: Promise<unknown>): Promise<StorageError> {
  try {
    await p;
  } catch (e) {
    if (isStorageError(e)) return e;
    throw e;
  }
  throw new Error("expected a StorageError");
}

async function readAt(path: string, offset: number, length: number): Promise<Buffer> {
  const fh = await open(path, "r");
  try {
    const b = Buffer.alloc(length);
    await fh.read(b, 0, length, offset);
    return b;
  } finally {
    await fh.close();
  }
}

async function writeAt(path: string, offset: number, data: Buffer): Promise<void> {
  const fh = await open(path, "r+");
  try {
    await fh.write(data, 0, data.length, offset);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

describe("connector-local: file attach", () => {
  it("returns the file path, tracks the attach, and detaches idempotently", async () => {
    const c = makeConnector();
    expect(c.protocols).toEqual(["file"]);
    expect(await c.getConnectorProperties()).toEqual({});
    const { path, connInfo } = await volumeFile();
    const a = await c.connectVolume(connInfo);
    expect(a).toMatchObject({ connector: "local", method: "file", path });
    expect(await c.checkAttached(a)).toBe(true);
    await truncate(path, 32 * MiB);
    expect(await c.extendVolume(connInfo, a)).toBe(32 * MiB);
    await c.disconnectVolume(connInfo, a);
    expect(await c.checkAttached(a)).toBe(false);
    await c.disconnectVolume(connInfo, a);
  });

  it("refuses other protocols, relative or odd paths, and missing files", async () => {
    const c = makeConnector();
    expect((await failure(c.connectVolume({ driver_volume_type: "iscsi", data: {} }))).code).toBe("INVALID_ARGUMENT");
    expect((await failure(c.connectVolume({ driver_volume_type: "file", data: {} }))).code).toBe("INVALID_ARGUMENT");
    expect((await failure(c.connectVolume({ driver_volume_type: "file", data: { path: "rel/volume" } }))).code).toBe("INVALID_ARGUMENT");
    expect((await failure(c.connectVolume({ driver_volume_type: "file", data: { path: `${root}/../etc/passwd` } }))).code).toBe(
      "INVALID_ARGUMENT",
    );
    expect((await failure(c.connectVolume({ driver_volume_type: "file", data: { path: join(root, "nope") } }))).code).toBe("NOT_FOUND");
    expect((await failure(c.connectVolume({ driver_volume_type: "file", data: { path: root } }))).code).toBe("INVALID_ARGUMENT");
  });

  it("is a connector plugin with a strict options schema", () => {
    const p = assertPlugin({ default: plugin }, "connector", "@cinderts/connector-local");
    expect(p.protocols).toEqual(["file"]);
    expect(ConnectorLocalOptions.parse({})).toEqual({ loop: false });
    expect(ConnectorLocalOptions.safeParse({ loop: "yes" }).success).toBe(false);
    expect(ConnectorLocalOptions.safeParse({ other: 1 }).success).toBe(false);
  });
});

describe.skipIf(skipUnlessLoop())("connector-local: loop attach (root)", () => {
  it("attaches a loop device, I/O reaches the file, extend shows the new size, detach releases it", async () => {
    const c = makeConnector({ loop: true });
    const { path, connInfo } = await volumeFile(16 * MiB);
    const a = await c.connectVolume(connInfo);
    try {
      expect(a.method).toBe("loop");
      expect(a.path).toMatch(/^\/dev\/loop\d+$/);
      expect(loopsOf(path)).toEqual([a.path]);
      expect(a.handle).toMatchObject({ device: a.path, backing_file: path, backing_inode: (await stat(path)).ino });
      const data = randomBytes(64 * 1024);
      await writeAt(a.path, MiB, data);
      expect((await readAt(path, MiB, data.length)).equals(data)).toBe(true);
      await truncate(path, 48 * MiB);
      expect(await c.extendVolume(connInfo, a)).toBe(48 * MiB);
      expect(await c.checkAttached(a)).toBe(true);
    } finally {
      await c.disconnectVolume(connInfo, a);
    }
    expect(loopsOf(path)).toEqual([]);
    expect(await c.checkAttached(a)).toBe(false);
    await c.disconnectVolume(connInfo, a);
  });

  it("uses a loop device when the connection data asks, even without the option", async () => {
    const c = makeConnector();
    const { path, connInfo } = await volumeFile();
    const a = await c.connectVolume({ ...connInfo, data: { ...connInfo.data, loop: true } });
    expect(a.method).toBe("loop");
    expect(loopsOf(path)).toEqual([a.path]);
    await c.disconnectVolume(connInfo, a);
    expect(loopsOf(path)).toEqual([]);
  });

  it("after a restart, detaches from the persisted AttachInfo and never a device reused by another file", async () => {
    const store = new Map<string, unknown>();
    const first = makeConnector({ loop: true }, store);
    const vol1 = await volumeFile();
    const attach: AttachInfo = JSON.parse(JSON.stringify(await first.connectVolume(vol1.connInfo)));

    // A new process: a fresh connector with only the persisted state.
    const restarted = makeConnector({ loop: true }, store);
    expect(await restarted.checkAttached(attach)).toBe(true);
    await restarted.disconnectVolume(vol1.connInfo, attach);
    expect(loopsOf(vol1.path)).toEqual([]);

    // Someone else (another process) now uses the same device number for another file.
    const vol2 = await volumeFile();
    execFileSync("losetup", [attach.path, vol2.path]);
    try {
      expect(loopsOf(vol2.path)).toEqual([attach.path]);
      // A stale detach (a retried disconnect of the first attach) must leave it alone.
      await restarted.disconnectVolume(vol1.connInfo, attach);
      expect(loopsOf(vol2.path)).toEqual([attach.path]);
      expect(await restarted.checkAttached(attach)).toBe(false);
      expect((await failure(restarted.extendVolume(vol1.connInfo, attach))).code).toBe("NOT_FOUND");
    } finally {
      execFileSync("losetup", ["-d", attach.path]);
    }
    expect(loopsOf(vol2.path)).toEqual([]);
  });

  it("detaches a loop device whose backing file was deleted meanwhile", async () => {
    const c = makeConnector({ loop: true });
    const { path, connInfo } = await volumeFile();
    const a = await c.connectVolume(connInfo);
    rmSync(path);
    expect(await c.checkAttached(a)).toBe(true);
    await c.disconnectVolume(connInfo, a);
    expect(await c.checkAttached(a)).toBe(false);
  });

  it("refuses a tampered handle instead of passing it to losetup", async () => {
    const c = makeConnector({ loop: true });
    const { connInfo } = await volumeFile();
    const bad: AttachInfo = {
      connector: "local",
      method: "loop",
      path: "/dev/sda",
      host: "h",
      handle: { device: "/dev/sda", backing_file: "/x", backing_inode: 1, backing_dev: "1:1" },
    };
    expect((await failure(c.disconnectVolume(connInfo, bad))).code).toBe("INVALID_ARGUMENT");
  });
});

connectorContract("connector-local (file)", async () => {
  const c = makeConnector();
  const { path, connInfo } = await volumeFile(16 * MiB);
  return {
    connector: c,
    connInfo,
    sizeBytes: 16 * MiB,
    grow: async () => {
      await truncate(path, 32 * MiB);
      return 32 * MiB;
    },
    cleanup: async () => rmSync(path, { force: true }),
  };
});

if (!skipUnlessLoop()) {
  connectorContract("connector-local (loop)", async () => {
    const store = new Map<string, unknown>();
    const c = makeConnector({ loop: true }, store);
    const { path, connInfo } = await volumeFile(16 * MiB);
    return {
      connector: c,
      connInfo,
      sizeBytes: 16 * MiB,
      grow: async () => {
        await truncate(path, 32 * MiB);
        return 32 * MiB;
      },
      restarted: () => makeConnector({ loop: true }, store),
      cleanup: async () => {
        // Whatever a failed scenario left attached.
        for (const dev of loopsOf(path)) execFileSync("losetup", ["-d", dev]);
        rmSync(path, { force: true });
      },
    };
  });
}
