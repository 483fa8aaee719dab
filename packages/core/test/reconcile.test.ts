import { describe, expect, it } from "vitest";
import { MemoryPersistence, processOwner } from "../src/index.js";
import { FakeArray, openFake } from "./fakes.js";

/** A process that died mid-operation: same host, a pid that cannot exist. */
const deadOwner = () => processOwner().replace(/^([^:]+):\d+/, "$1:999999999");

describe("reconcile after a crash", () => {
  it("finishes a create that completed on the backend and fails one that did not, removing the partial copy", async () => {
    const persistence = new MemoryPersistence();
    const array = new FakeArray();
    const first = await openFake({ persistence, array });
    const done = await first.backend.createVolume({ size: 1 });
    const partial = await first.backend.createVolume({ size: 1 });
    // Simulate the crash: intents left behind, one volume complete on the array, one half-copied.
    for (const [v, complete] of [[done, true], [partial, false]] as const) {
      const rec = (await persistence.get("volume", v.id))!;
      await persistence.put("volume", { ...rec, status: "creating", intent: { op: "clone", started_at: rec.created_at, owner: deadOwner() } });
      array.volumes.get(v.id)!.complete = complete;
    }
    await first.ct.close();

    const second = await openFake({ persistence, array });
    const report = await second.ct.reconcile();
    expect((await second.backend.getVolume(done.id)).status).toBe("available");
    expect(await second.backend.getVolume(partial.id)).toMatchObject({ status: "error", intent: null });
    expect(array.volumes.has(partial.id)).toBe(false);
    expect(report.actions.map((a) => a.id).sort()).toEqual([done.id, partial.id].sort());
    // Nothing stuck, nothing left to do on a second run.
    expect((await second.ct.reconcile()).actions).toEqual([]);
    await second.backend.deleteVolume(partial.id);
    await second.ct.close();
  });

  it("leaves records of live operations alone", async () => {
    const { ct, backend, persistence } = await openFake();
    const v = await backend.createVolume({ size: 1 });
    const rec = (await persistence.get("volume", v.id))!;
    await persistence.put("volume", { ...rec, status: "creating", intent: { op: "create", started_at: rec.created_at, owner: processOwner() } });
    const report = await ct.reconcile();
    expect(report.actions).toEqual([]);
    expect((await backend.getVolume(v.id)).status).toBe("creating");
    await ct.close();
  });

  it("completes interrupted deletes and extends, and removes half-made connections", async () => {
    const { ct, backend, persistence, array } = await openFake();
    const a = await backend.createVolume({ size: 1 });
    const b = await backend.createVolume({ size: 1 });
    const c = await backend.createVolume({ size: 1 });
    const conn = await backend.connect({ volume_id: c.id, connector: { host: "elsewhere" } });
    const owner = deadOwner();
    const ra = (await persistence.get("volume", a.id))!;
    await persistence.put("volume", { ...ra, status: "deleting", intent: { op: "delete", started_at: ra.created_at, owner } });
    const rb = (await persistence.get("volume", b.id))!;
    await persistence.put("volume", { ...rb, status: "extending", intent: { op: "extend", started_at: rb.created_at, owner, args: { from: 1, to: 4, back: "available" } } });
    const rc = (await persistence.get("connection", conn.id))!;
    await persistence.put("connection", { ...rc, status: "connecting", intent: { op: "connect", started_at: rc.created_at, owner } });

    await ct.reconcile();
    expect((await backend.getVolume(a.id)).status).toBe("deleted");
    expect(array.volumes.has(a.id)).toBe(false);
    expect(await backend.getVolume(b.id)).toMatchObject({ status: "available", size: 4 });
    expect(array.volumes.get(b.id)!.size).toBe(4);
    expect(await ct.listConnections()).toEqual([]);
    expect((await backend.getVolume(c.id)).status).toBe("available");
    expect(array.exports.has(c.id)).toBe(false);
    await ct.close();
  });

  it("reports backend volumes without a record, and deletes them only when asked", async () => {
    const { ct, array } = await openFake();
    array.volumes.set("orphan-1", { size: 1, data: "", complete: true });
    const report = await ct.reconcile();
    expect(report.orphans).toEqual([{ backend: "b1", id: "orphan-1", deleted: false }]);
    expect(array.volumes.has("orphan-1")).toBe(true);
    const fixed = await ct.reconcile({ deleteOrphans: true });
    expect(fixed.orphans).toEqual([{ backend: "b1", id: "orphan-1", deleted: true }]);
    expect(array.volumes.has("orphan-1")).toBe(false);
    await ct.close();
  });

  it("reports records whose backend object is gone", async () => {
    const { ct, backend, array } = await openFake();
    const v = await backend.createVolume({ size: 1 });
    array.volumes.delete(v.id);
    expect((await ct.reconcile()).missing).toEqual([{ backend: "b1", kind: "volume", id: v.id }]);
    await ct.close();
  });
});

describe("reconcile asks the persistence about owners on other hosts", () => {
  it("settles an intent whose remote owner the shared store says is gone", async () => {
    const persistence = new MemoryPersistence();
    const gone = new Set(["other-host:42:x"]);
    Object.assign(persistence, { ownerAlive: async (o: string) => !gone.has(o) });
    const { ct, backend } = await openFake({ persistence });
    const a = await backend.createVolume({ size: 1 });
    const b = await backend.createVolume({ size: 1 });
    for (const [v, owner] of [[a, "other-host:42:x"], [b, "other-host:43:x"]] as const) {
      const rec = (await persistence.get("volume", v.id))!;
      await persistence.put("volume", { ...rec, status: "creating", intent: { op: "create", started_at: rec.created_at, owner } });
    }
    await ct.reconcile();
    expect((await backend.getVolume(a.id)).status).toBe("available");
    expect((await backend.getVolume(b.id)).status).toBe("creating");
    await ct.close();
  });
});
