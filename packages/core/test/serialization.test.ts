import { describe, expect, it } from "vitest";
import { MemoryPersistence, StateDumpSchema, dumpObject, loadObject, isStorageError } from "../src/index.js";
import { openFake } from "./fakes.js";

describe("state dump and load", () => {
  it("round-trips every object through JSON into another store, leaving the source untouched", async () => {
    const src = await openFake();
    const v = await src.backend.createVolume({ size: 2, name: "keep", metadata: { team: "storage" } });
    const s = await src.backend.createSnapshot({ volume_id: v.id, name: "snap" });
    const conn = await src.backend.connect({ volume_id: v.id, connector: { host: "other", initiator: "iqn.x" } });
    const dump = JSON.parse(JSON.stringify(await src.ct.dump({ includeSecrets: true })));
    expect(StateDumpSchema.parse(dump).version).toBe(1);

    const target = new MemoryPersistence();
    const dst = await openFake({ persistence: target });
    const dry = await dst.ct.load(dump);
    expect(dry.written).toEqual({ volumes: 0, snapshots: 0, connections: 0 });
    expect(await target.find("volume")).toEqual([]);
    const res = await dst.ct.load(dump, { persist: true });
    expect(res.written).toEqual({ volumes: 1, snapshots: 1, connections: 1 });
    const strip = <T extends { version: number }>(r: T) => ({ ...r, version: 0 });
    expect(strip((await target.get("volume", v.id))!)).toEqual(strip(await src.backend.getVolume(v.id)));
    expect(strip((await target.get("snapshot", s.id))!)).toEqual(strip(await src.backend.getSnapshot(s.id)));
    expect(strip((await target.get("connection", conn.id))!)).toEqual(strip(await src.backend.getConnection(conn.id)));
    // Loading twice is an upsert, not a duplicate.
    await dst.ct.load(dump, { persist: true });
    expect(await target.find("volume")).toHaveLength(1);
    await src.ct.close();
    await dst.ct.close();
  });

  it("redacts secrets unless asked, and refuses to persist a redacted dump", async () => {
    const { ct, backend, persistence } = await openFake();
    const v = await backend.createVolume({ size: 1 });
    const rec = (await persistence.get("volume", v.id))!;
    await persistence.put("volume", { ...rec, provider_auth: "CHAP user s3cr3t-chap" });
    await backend.connect({ volume_id: v.id, connector: { host: "h" } });
    const redacted = JSON.stringify(await ct.dump());
    expect(redacted).not.toContain("s3cr3t-chap");
    expect(redacted).not.toContain("chap-secret-123");
    expect(redacted).not.toContain("hunter2");
    const full = JSON.stringify(await ct.dump({ includeSecrets: true }));
    expect(full).toContain("s3cr3t-chap");
    expect(full).toContain("hunter2");
    const e = await ct.load(JSON.parse(redacted), { persist: true }).catch((x: unknown) => x);
    expect(isStorageError(e) && e.code).toBe("INVALID_ARGUMENT");
    await ct.close();
  });

  it("refuses a dump of another format or a newer version with a clear error", async () => {
    const { ct } = await openFake();
    for (const bad of [{}, { format: "x" }, { ...(await ct.dump()), version: 99 }]) {
      const e = await ct.load(bad).catch((x: unknown) => x);
      expect(isStorageError(e) && e.code).toBe("INVALID_ARGUMENT");
    }
    await ct.close();
  });

  it("serializes single objects and loads them back", async () => {
    const { ct, backend } = await openFake();
    const v = await backend.createVolume({ size: 1 });
    const json = JSON.parse(JSON.stringify(dumpObject("volume", v)));
    expect(loadObject(json)).toEqual({ format: "cinderts-state", version: 1, kind: "volume", record: v });
    await ct.close();
  });
});
