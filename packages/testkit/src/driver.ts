import { open as openFile, stat } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  Cinderts,
  MemoryPersistence,
  definePersistence,
  isStorageError,
  parseManifest,
  type AnyPlugin,
  type Backend,
  type CommandRunner,
  type PluginSpec,
} from "@cinderts/core";
import { z } from "@cinderts/core";

/** Reads and writes bytes at an attached path: local fs by default, or through a runner on a remote host. */
export interface AttachedIo {
  write(path: string, offset: number, data: Buffer): Promise<void>;
  read(path: string, offset: number, length: number): Promise<Buffer>;
  /** Size in bytes as the host sees it (file size or block device size). */
  size(path: string): Promise<number>;
}

export const localIo: AttachedIo = {
  async write(path, offset, data) {
    const fh = await openFile(path, "r+");
    try {
      await fh.write(data, 0, data.length, offset);
      await fh.sync();
    } finally {
      await fh.close();
    }
  },
  async read(path, offset, length) {
    const fh = await openFile(path, "r");
    try {
      const buf = Buffer.alloc(length);
      const { bytesRead } = await fh.read(buf, 0, length, offset);
      return buf.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  },
  async size(path) {
    const st = await stat(path);
    if (st.isFile()) return st.size;
    // Block devices report size 0 through stat: ask the kernel by seeking to the end.
    const fh = await openFile(path, "r");
    try {
      return Number((await fh.stat({ bigint: true })).size) || (await blockSize(path));
    } finally {
      await fh.close();
    }
  },
};

async function blockSize(path: string): Promise<number> {
  const { readFile } = await import("node:fs/promises");
  const { basename } = await import("node:path");
  const { realpath } = await import("node:fs/promises");
  const dev = basename(await realpath(path));
  const sectors = Number((await readFile(`/sys/class/block/${dev}/size`, "utf8")).trim());
  return sectors * 512;
}

/** Attached-path I/O through a command runner (dd / blockdev on the host the runner reaches). */
export function runnerIo(runner: CommandRunner): AttachedIo {
  return {
    async write(path, offset, data) {
      await runner.run(["dd", `of=${path}`, "bs=4096", `seek=${offset}`, "oflag=seek_bytes,direct", "conv=notrunc,fsync", "status=none"], {
        input: data,
        root: true,
      });
    },
    async read(path, offset, length) {
      const r = await runner.run(
        ["dd", `if=${path}`, "bs=4096", `skip=${offset}`, `count=${length}`, "iflag=skip_bytes,count_bytes,direct", "status=none"],
        { binary: true, root: true },
      );
      return r.stdoutBuffer ?? Buffer.from(r.stdout, "binary");
    },
    async size(path) {
      const r = await runner.run(["sh", "-c", 'if [ -b "$1" ]; then blockdev --getsize64 "$1"; else stat -c %s "$1"; fi', "size", path], {
        root: true,
      });
      return Number(r.stdout.trim());
    },
  };
}

export interface DriverContractOptions {
  /** Backend entry under test: driver plugin (object or specifier) and its options. */
  driver: PluginSpec;
  options: Record<string, unknown>;
  /** Command runner plugin for the backend and connectors (default @cinderts/runner-local, resolved by core). */
  runner?: { plugin: PluginSpec; options?: Record<string, unknown> };
  target?: { plugin: PluginSpec; options?: Record<string, unknown> };
  /** Host connectors used for attach (plugin objects or specifiers). */
  connectors: { plugin: PluginSpec; options?: Record<string, unknown> }[];
  /** Where plugin specifiers resolve from (the calling package's import.meta.url). */
  resolveFrom?: string;
  /** Arrays round sizes up: accept sizes up to this many GiB larger. */
  sizeToleranceGiB?: number;
  /** I/O at the attached path (default: local fs). */
  io?: AttachedIo;
  /** Volume size used by the scenarios (GiB). */
  sizeGiB?: number;
  /** Skip attach-based scenarios (backends with no connector that can run here). */
  skipAttach?: boolean;
  /** Per-test timeout (remote hosts under emulation are slow). */
  timeoutMs?: number;
  /** Label in the test names. */
  name?: string;
}

const memoryPersistence = definePersistence({
  id: "contract-memory",
  version: "0",
  description: "in-memory persistence for the contract",
  configSchema: z.object({}).strict(),
  create: () => new MemoryPersistence(),
});

/** Open a Cinderts with one backend named "contract" on in-memory persistence. */
export async function openContractHarness(o: DriverContractOptions): Promise<Cinderts> {
  const loaded = parseManifest({
    persistence: { plugin: memoryPersistence as AnyPlugin, options: {} },
    backends: [
      {
        name: "contract",
        driver: o.driver,
        options: o.options,
        ...(o.runner ? { runner: { plugin: o.runner.plugin, options: o.runner.options ?? {} } } : {}),
        ...(o.target ? { target: { plugin: o.target.plugin, options: o.target.options ?? {} } } : {}),
      },
    ],
    connectors: o.connectors.map((c) => ({ plugin: c.plugin, options: c.options ?? {} })),
    // Connectors run where the backend's commands run (a remote test host attaches there).
    ...(o.runner ? { runner: { plugin: o.runner.plugin, options: o.runner.options ?? {} } } : {}),
  });
  return Cinderts.open(loaded, { resolveFrom: o.resolveFrom ? [o.resolveFrom] : [] });
}

const GiB = 1024 ** 3;

function pattern(seed: string, length = 64 * 1024): Buffer {
  const b = Buffer.alloc(length);
  const s = Buffer.from(seed);
  for (let i = 0; i < length; i++) b[i] = s[i % s.length]! ^ (i & 0xff);
  return b;
}

/**
 * The cinderlib functional scenarios, run against a real backend through the core lifecycle.
 * Every driver package calls this once with its backend's options.
 */
export function driverContract(o: DriverContractOptions): void {
  const size = o.sizeGiB ?? 1;
  const tol = o.sizeToleranceGiB ?? 0;
  const io = o.io ?? localIo;
  const timeout = o.timeoutMs ?? 120_000;
  const label = o.name ?? (typeof o.driver === "string" ? o.driver : o.driver.id);

  describe(`driver contract: ${label}`, { timeout }, () => {
    let ct: Cinderts;
    let backend: Backend;
    const created: string[] = [];
    const snaps: string[] = [];

    beforeAll(async () => {
      ct = await openContractHarness(o);
      backend = ct.backend("contract");
    }, timeout);

    afterAll(async () => {
      if (!ct) return;
      // Best-effort cleanup so a failed scenario leaves nothing on a shared backend.
      for (const c of await ct.listConnections()) await backend.disconnect(c.id, { force: true }).catch(() => undefined);
      for (const s of snaps.reverse()) await backend.deleteSnapshot(s).catch(() => undefined);
      for (const v of created.reverse()) await backend.deleteVolume({ id: v, force: true }).catch(() => undefined);
      await ct.close();
    }, timeout);

    const createVolume = async (input: Parameters<Backend["createVolume"]>[0]) => {
      const v = await backend.createVolume(input);
      created.push(v.id);
      return v;
    };
    const createSnapshot = async (volume_id: string) => {
      const s = await backend.createSnapshot({ volume_id });
      snaps.push(s.id);
      return s;
    };
    const attach = async (volumeId: string) => {
      const conn = await backend.attach(volumeId);
      expect(conn.status).toBe("attached");
      expect(conn.attach_info?.path).toBeTruthy();
      return conn;
    };

    it("reports stats with Cinder's field names", async () => {
      const stats = await backend.stats({ refresh: true });
      expect(stats.volume_backend_name).toBe("contract");
      expect(typeof stats.vendor_name).toBe("string");
      expect(typeof stats.driver_version).toBe("string");
      expect(typeof stats.storage_protocol).toBe("string");
      expect(stats.pools.length).toBeGreaterThan(0);
      for (const p of stats.pools) {
        expect(typeof p.pool_name).toBe("string");
        expect(["number", "string"]).toContain(typeof p.total_capacity_gb);
        expect(["number", "string"]).toContain(typeof p.free_capacity_gb);
        expect(typeof p.thin_provisioning_support).toBe("boolean");
      }
    });

    it("stats after a create account for the new volume", async () => {
      const before = await backend.stats({ refresh: true });
      const v = await createVolume({ size });
      const after = await backend.stats({ refresh: true });
      const prov = (s: typeof before) => s.pools.reduce((a, p) => a + Number(p.provisioned_capacity_gb ?? NaN), 0);
      if (Number.isFinite(prov(before))) {
        expect(prov(after) - prov(before)).toBeGreaterThanOrEqual(size - 0.01);
        expect(prov(after) - prov(before)).toBeLessThanOrEqual(size + tol + 0.01);
      } else {
        const free = (s: typeof before) => s.pools.reduce((a, p) => a + Number(p.free_capacity_gb), 0);
        expect(free(after)).toBeLessThanOrEqual(free(before));
      }
      await backend.deleteVolume(v.id);
    });

    it("creates and deletes a volume, and deleting again succeeds", async () => {
      const v = await createVolume({ size, name: "contract create/delete" });
      expect(v.status).toBe("available");
      expect(v.size).toBeGreaterThanOrEqual(size);
      expect(v.size).toBeLessThanOrEqual(size + tol);
      await backend.deleteVolume(v.id);
      expect((await backend.getVolume(v.id)).status).toBe("deleted");
      await backend.deleteVolume(v.id);
      expect((await backend.getVolume(v.id)).status).toBe("deleted");
      // The backend itself must also tolerate deleting what is gone (Cinder's contract).
      await backend.driver.deleteVolume(await backend.getVolume(v.id));
    });

    it("creates and deletes a snapshot, and deleting again succeeds", async () => {
      const v = await createVolume({ size });
      const s = await createSnapshot(v.id);
      expect(s.status).toBe("available");
      expect(s.volume_size).toBe(v.size);
      await backend.deleteSnapshot(s.id);
      expect((await backend.getSnapshot(s.id)).status).toBe("deleted");
      await backend.deleteSnapshot(s.id);
      await backend.driver.deleteSnapshot(await backend.getSnapshot(s.id), v);
      await backend.deleteVolume(v.id);
    });

    it("refuses to delete a volume with snapshots unless forced", async () => {
      const v = await createVolume({ size });
      const s = await createSnapshot(v.id);
      const err = await backend.deleteVolume(v.id).catch((e: unknown) => e);
      expect(isStorageError(err) && err.code).toBe("HAS_DEPENDENTS");
      expect((await backend.getVolume(v.id)).status).toBe("available");
      await backend.deleteVolume({ id: v.id, force: true });
      expect((await backend.getSnapshot(s.id)).status).toBe("deleted");
      expect((await backend.getVolume(v.id)).status).toBe("deleted");
    });

    it("extends a detached volume", async () => {
      const v = await createVolume({ size });
      const grown = await backend.extendVolume({ id: v.id, size: v.size + 1 });
      expect(grown.size).toBe(v.size + 1);
      expect(grown.status).toBe("available");
      await backend.deleteVolume(v.id);
    });

    it("connects a volume for a host and disconnects it", async () => {
      const v = await createVolume({ size });
      const props = await ct.connectorProperties();
      const conn = await backend.connect({ volume_id: v.id, connector: props });
      expect(conn.status).toBe("connected");
      expect(typeof conn.conn_info?.driver_volume_type).toBe("string");
      expect(conn.conn_info?.data.access_mode).toBe("rw");
      expect((await backend.getVolume(v.id)).status).toBe("in-use");
      const inUse = await backend.deleteVolume(v.id).catch((e: unknown) => e);
      expect(isStorageError(inUse) && inUse.code).toBe("IN_USE");
      await backend.disconnect(conn.id);
      await backend.disconnect(conn.id);
      expect((await backend.getVolume(v.id)).status).toBe("available");
      await backend.deleteVolume(v.id);
    });

    if (o.skipAttach) return;

    it("attaches and detaches a volume, with disk I/O through the attached path", async () => {
      const v = await createVolume({ size });
      const conn = await attach(v.id);
      const path = conn.attach_info!.path;
      expect(await io.size(path)).toBe(v.size * GiB);
      const head = pattern(`head-${v.id}`);
      const tail = pattern(`tail-${v.id}`);
      await io.write(path, 0, head);
      await io.write(path, v.size * GiB - tail.length, tail);
      expect((await io.read(path, 0, head.length)).equals(head)).toBe(true);
      expect((await io.read(path, v.size * GiB - tail.length, tail.length)).equals(tail)).toBe(true);
      await backend.detachVolume(v.id);
      expect((await backend.getVolume(v.id)).status).toBe("available");
      expect(await ct.listConnections({ volume_id: v.id })).toEqual([]);
      // The data survives a detach/attach cycle.
      const again = await attach(v.id);
      expect((await io.read(again.attach_info!.path, 0, head.length)).equals(head)).toBe(true);
      await backend.detachVolume(v.id);
      await backend.deleteVolume(v.id);
    });

    it("extends while attached: the attached size grows and data stays", async () => {
      const v = await createVolume({ size });
      const conn = await attach(v.id);
      const data = pattern(`extend-${v.id}`);
      await io.write(conn.attach_info!.path, 0, data);
      const grown = await backend.extendVolume({ id: v.id, size: v.size + 1 });
      expect(grown.status).toBe("in-use");
      const fresh = await backend.getConnection(conn.id);
      expect(await io.size(fresh.attach_info!.path)).toBe((v.size + 1) * GiB);
      const end = pattern(`end-${v.id}`, 4096);
      await io.write(fresh.attach_info!.path, (v.size + 1) * GiB - end.length, end);
      expect((await io.read(fresh.attach_info!.path, (v.size + 1) * GiB - end.length, end.length)).equals(end)).toBe(true);
      expect((await io.read(fresh.attach_info!.path, 0, data.length)).equals(data)).toBe(true);
      await backend.detachVolume(v.id);
      await backend.deleteVolume(v.id);
    });

    it("clone keeps the data; volume from snapshot has the data as at snapshot time", async () => {
      const v = await createVolume({ size });
      const before = pattern(`before-${randomBytes(4).toString("hex")}`);
      const after = pattern(`after-${randomBytes(4).toString("hex")}`);
      let conn = await attach(v.id);
      await io.write(conn.attach_info!.path, 0, before);
      await backend.detachVolume(v.id);
      const snap = await createSnapshot(v.id);
      conn = await attach(v.id);
      await io.write(conn.attach_info!.path, 0, after);
      await backend.detachVolume(v.id);

      const fromSnap = await createVolume({ size: v.size, snapshot_id: snap.id });
      expect(fromSnap.snapshot_id).toBe(snap.id);
      const clone = await createVolume({ size: v.size + 1, source_volume_id: v.id });
      expect(clone.source_volume_id).toBe(v.id);
      expect(clone.size).toBeGreaterThanOrEqual(v.size + 1);

      const c1 = await attach(fromSnap.id);
      expect((await io.read(c1.attach_info!.path, 0, before.length)).equals(before)).toBe(true);
      await backend.detachVolume(fromSnap.id);
      const c2 = await attach(clone.id);
      expect((await io.read(c2.attach_info!.path, 0, after.length)).equals(after)).toBe(true);
      expect(await io.size(c2.attach_info!.path)).toBe(clone.size * GiB);
      await backend.detachVolume(clone.id);

      // Source and clone are independent: deleting the snapshot and the source leaves the copies intact.
      await backend.deleteSnapshot(snap.id);
      await backend.deleteVolume(v.id);
      const c3 = await attach(fromSnap.id);
      expect((await io.read(c3.attach_info!.path, 0, before.length)).equals(before)).toBe(true);
      await backend.detachVolume(fromSnap.id);
      await backend.deleteVolume(fromSnap.id);
      await backend.deleteVolume(clone.id);
    });

    it("dumps and loads the backend's state without loss", async () => {
      const v = await createVolume({ size, name: "dump me" });
      const s = await createSnapshot(v.id);
      const dump = await ct.dump({ backend: "contract", includeSecrets: true });
      const json = JSON.parse(JSON.stringify(dump));
      const loaded = await ct.load(json);
      expect(loaded.dump.volumes.find((x) => x.id === v.id)).toEqual(await backend.getVolume(v.id));
      expect(loaded.dump.snapshots.find((x) => x.id === s.id)).toEqual(await backend.getSnapshot(s.id));
      // Restore into a fresh process state and keep operating on the restored objects.
      const other = await openContractHarness(o);
      try {
        await other.load(json, { persist: true });
        const ob = other.backend("contract");
        expect(await ob.getVolume(v.id)).toMatchObject({ id: v.id, name: "dump me", status: "available" });
        await ob.deleteSnapshot(s.id);
        await ob.deleteVolume(v.id);
        expect((await ob.getVolume(v.id)).status).toBe("deleted");
      } finally {
        await other.close();
      }
    });
  });
}
