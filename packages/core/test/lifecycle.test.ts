import { afterEach, describe, expect, it } from "vitest";
import { isStorageError, type StorageError } from "../src/index.js";
import { openFake } from "./fakes.js";

const failure = async (p: Promise<unknown>): Promise<StorageError> => {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  if (!isStorageError(e)) throw new Error(`expected a StorageError, got ${String(e)}`);
  return e;
};

describe("volume lifecycle", () => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
  });

  it("creates, extends, snapshots, clones and deletes with legal statuses", async () => {
    const { ct, backend, array } = await openFake();
    close = () => ct.close();
    const v = await backend.createVolume({ size: 1, name: "data" });
    expect(v).toMatchObject({ status: "available", size: 1, name: "data", provider_location: `fake:${v.id}`, intent: null });
    array.volumes.get(v.id)!.data = "v1";
    const s = await backend.createSnapshot({ volume_id: v.id });
    array.volumes.get(v.id)!.data = "v2";
    const fromSnap = await backend.createVolume({ size: 2, snapshot_id: s.id });
    const clone = await backend.createVolume({ size: 1, source_volume_id: v.id });
    expect(array.volumes.get(fromSnap.id)!.data).toBe("v1");
    expect(array.volumes.get(clone.id)!.data).toBe("v2");
    expect((await backend.extendVolume({ id: v.id, size: 3 })).size).toBe(3);
    expect(array.volumes.get(v.id)!.size).toBe(3);
    await backend.deleteSnapshot(s.id);
    await backend.deleteVolume(v.id);
    expect((await backend.getVolume(v.id)).status).toBe("deleted");
    expect(array.volumes.has(v.id)).toBe(false);
  });

  it("deleting twice succeeds; an unknown id is NOT_FOUND", async () => {
    const { ct, backend } = await openFake();
    close = () => ct.close();
    const v = await backend.createVolume({ size: 1 });
    await backend.deleteVolume(v.id);
    await backend.deleteVolume(v.id);
    expect((await failure(backend.deleteVolume("no-such-volume"))).code).toBe("NOT_FOUND");
    const s = await backend.createSnapshot({ volume_id: (await backend.createVolume({ size: 1 })).id });
    await backend.deleteSnapshot(s.id);
    await backend.deleteSnapshot(s.id);
  });

  it("refuses to delete a volume with snapshots (HAS_DEPENDENTS naming them) or connections (IN_USE) unless forced", async () => {
    const { ct, backend, array } = await openFake();
    close = () => ct.close();
    const v = await backend.createVolume({ size: 1 });
    const s = await backend.createSnapshot({ volume_id: v.id });
    const e = await failure(backend.deleteVolume(v.id));
    expect(e.code).toBe("HAS_DEPENDENTS");
    expect(e.details.data?.dependents).toEqual([{ kind: "snapshot", id: s.id }]);
    await backend.deleteSnapshot(s.id);
    const conn = await backend.connect({ volume_id: v.id, connector: { host: "h2", initiator: "iqn.x" } });
    expect((await failure(backend.deleteVolume(v.id))).code).toBe("IN_USE");
    expect((await backend.getVolume(v.id)).status).toBe("in-use");
    await backend.deleteVolume({ id: v.id, force: true });
    expect(await ct.listConnections({ volume_id: v.id })).toEqual([]);
    expect(array.exports.has(v.id)).toBe(false);
    expect(conn.status).toBe("connected");
  });

  it("rejects bad input before changing anything", async () => {
    const { ct, backend, array } = await openFake();
    close = () => ct.close();
    for (const bad of [{ size: -1 }, { size: 1.5 }, { size: 0 }, { size: "2" }, { size: 1, name: "bad\u0007name" }, { size: 1, extra: true }]) {
      const e = await failure(backend.createVolume(bad as never));
      expect(e.code).toBe("INVALID_ARGUMENT");
    }
    const v = await backend.createVolume({ size: 2 });
    expect((await failure(backend.extendVolume({ id: v.id, size: 1 }))).code).toBe("INVALID_ARGUMENT");
    expect((await failure(backend.createVolume({ size: 1, source_volume_id: v.id, snapshot_id: "x" }))).code).toBe("INVALID_ARGUMENT");
    expect((await failure(backend.createVolume({ size: 1, source_volume_id: v.id }))).message).toMatch(/smaller than source/);
    expect((await failure(backend.connect({ volume_id: v.id, connector: { ip: "1" } }))).message).toMatch(/connector\.host|host/);
    expect(await backend.listVolumes()).toHaveLength(1);
    expect(array.calls.filter((c) => c === "createVolume")).toHaveLength(1);
    expect(() => ct.backend("nope")).toThrow(/backend nope not found/);
  });

  it("a failed create cleans the backend and leaves an error record with the reason", async () => {
    const { ct, backend, array } = await openFake();
    close = () => ct.close();
    array.failNext.set("createVolume", new Error("array is full"));
    const e = await failure(backend.createVolume({ size: 1 }));
    expect(e.message).toBe("array is full");
    const [rec] = await backend.listVolumes();
    expect(rec).toMatchObject({ status: "error", status_reason: "array is full", intent: null });
    expect(array.volumes.size).toBe(0);
  });

  it("a create refused because the backend object already exists leaves that object alone", async () => {
    const { ct, backend, array } = await openFake();
    close = () => ct.close();
    const { AlreadyExistsError } = await import("../src/index.js");
    array.failNext.set("createVolume", new AlreadyExistsError("volume", "x"));
    await failure(backend.createVolume({ size: 1, id: "pre-existing" }));
    expect(array.volumes.has("pre-existing")).toBe(true);
    expect((await backend.getVolume("pre-existing")).status).toBe("error");
  });

  it("re-checks a clone's size under the source lock (an extend may land in between)", async () => {
    const { ct, backend, array } = await openFake();
    close = () => ct.close();
    const src = await backend.createVolume({ size: 1 });
    let reached!: () => void;
    const atHang = new Promise<void>((r) => (reached = r));
    array.hang = { op: "extendVolume", reached };
    const extend = backend.extendVolume({ id: src.id, size: 4 });
    await atHang;
    const clone = backend.createVolume({ size: 2, source_volume_id: src.id });
    await new Promise((r) => setTimeout(r, 20));
    array.hang.release!();
    array.hang = undefined;
    await extend;
    const e = await failure(clone);
    expect(e.code).toBe("INVALID_ARGUMENT");
    expect(array.volumes.size).toBe(1);
  });

  it("a failed extend marks error_extending; extend of a deleted volume is refused", async () => {
    const { ct, backend, array } = await openFake();
    close = () => ct.close();
    const v = await backend.createVolume({ size: 1 });
    array.failNext.set("extendVolume", new Error("boom"));
    await failure(backend.extendVolume({ id: v.id, size: 2 }));
    expect((await backend.getVolume(v.id)).status).toBe("error_extending");
    const w = await backend.createVolume({ size: 1 });
    await backend.deleteVolume(w.id);
    expect((await failure(backend.extendVolume({ id: w.id, size: 2 }))).code).toBe("INVALID_STATE");
  });

  it("connect → attach → detach → disconnect keeps volume status and exports in step", async () => {
    const { ct, backend, array, connector } = await openFake();
    close = () => ct.close();
    const v = await backend.createVolume({ size: 1 });
    const conn = await backend.attach(v.id);
    expect(conn).toMatchObject({ status: "attached", protocol: "fake", node_id: ct.nodeId });
    expect(conn.conn_info?.data.access_mode).toBe("rw");
    expect(connector.attached.has(conn.attach_info!.path)).toBe(true);
    expect((await backend.getVolume(v.id)).status).toBe("in-use");
    await backend.detachVolume(v.id);
    expect(connector.attached.size).toBe(0);
    expect(array.exports.has(v.id)).toBe(false);
    expect((await backend.getVolume(v.id)).status).toBe("available");
    expect(array.calls).toEqual(expect.arrayContaining(["createExport", "initializeConnection", "terminateConnection", "removeExport"]));
  });

  it("a failed connect undoes the export and leaves no connection", async () => {
    const { ct, backend, array } = await openFake();
    close = () => ct.close();
    const v = await backend.createVolume({ size: 1 });
    array.failNext.set("initializeConnection", new Error("no target"));
    await failure(backend.connect({ volume_id: v.id, connector: { host: "h" } }));
    expect(await ct.listConnections()).toEqual([]);
    expect(array.exports.has(v.id)).toBe(false);
    expect((await backend.getVolume(v.id)).status).toBe("available");
  });

  it("serializes operations on one volume and runs independent ones in parallel", async () => {
    const { ct, backend, array } = await openFake();
    close = () => ct.close();
    const v = await backend.createVolume({ size: 1 });
    let reached!: () => void;
    const atHang = new Promise<void>((r) => (reached = r));
    array.hang = { op: "extendVolume", reached };
    const extend = backend.extendVolume({ id: v.id, size: 2 });
    await atHang;
    // Same volume: waits for the extend. Another volume: goes through.
    let snapDone = false;
    const snap = backend.createSnapshot({ volume_id: v.id }).then((s) => ((snapDone = true), s));
    const other = await backend.createVolume({ size: 1 });
    expect(other.status).toBe("available");
    await new Promise((r) => setTimeout(r, 50));
    expect(snapDone).toBe(false);
    array.hang.release!();
    array.hang = undefined;
    await extend;
    const s = await snap;
    expect(s.volume_size).toBe(2);
  });
});
