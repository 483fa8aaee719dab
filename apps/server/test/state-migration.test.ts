import { hostname } from "node:os";
import { join } from "node:path";
import { Cinderts, parseManifest, silentLogger, type StateDump } from "@cinderts/core";
import { afterAll, describe, expect, it } from "vitest";
import { dropSchema, pgEnv, scratchSchema, tempDir } from "./harness.js";

/** Versions are concurrency counters of one store, not data: a load starts them afresh. */
const data = (d: StateDump) => ({
  backends: d.backends,
  volumes: d.volumes.map(({ version: _v, ...r }) => r),
  snapshots: d.snapshots.map(({ version: _v, ...r }) => r),
  connections: d.connections.map(({ version: _v, ...r }) => r),
});

describe.skipIf(!pgEnv)("state dump: SQLite → PostgreSQL → SQLite loses nothing", () => {
  const schema = scratchSchema("migrate");
  const dir = tempDir("migrate");
  const opened: Cinderts[] = [];
  afterAll(async () => {
    for (const c of opened) await c.close();
    if (pgEnv) await dropSchema(schema);
  });

  const open = async (persistence: Record<string, unknown>) => {
    const ct = await Cinderts.open(
      parseManifest({
        persistence,
        backends: [{ name: "local", driver: "@cinderts/driver-file", options: { path: join(dir, "volumes") } }],
        connectors: [{ plugin: "@cinderts/connector-local", options: {} }],
        state_dir: join(dir, "state"),
      }),
      { resolveFrom: [import.meta.url], lazySetup: true, logger: silentLogger },
    );
    opened.push(ct);
    return ct;
  };

  it("every record and field, secrets included, survives both ways", async () => {
    const sqlite = await open({ plugin: "@cinderts/persistence-sqlite", options: { path: join(dir, "a.db") } });
    const b = sqlite.backend("local");
    const v1 = await b.createVolume({ size: 1, name: "db ✓ ünïcode", metadata: { tier: "gold", note: 'quote " and \\ back' } });
    const v2 = await b.createVolume({ size: 2 });
    const s1 = await b.createSnapshot({ volume_id: v1.id, name: "nightly" });
    await b.createVolume({ size: 1, snapshot_id: s1.id, name: "from-snap" });
    await b.createVolume({ size: 3, source_volume_id: v2.id });
    await b.deleteVolume(v2.id).catch(() => undefined); // has a clone: stays, or is deleted: either way a record
    await b.connect({ volume_id: v1.id, connector: { host: hostname(), initiator: "iqn.2004-10.com.example:h", password: "chap-secret" }, node_id: "node-9" });
    // A driver-owned secret, as an iSCSI backend stores CHAP credentials.
    const rec = (await sqlite.persistence.get("volume", v2.id))!;
    await sqlite.persistence.put("volume", { ...rec, provider_auth: "CHAP user s3cret", provider_location: "127.0.0.1:3260,1 iqn.x 1" });

    const original = await sqlite.dump({ includeSecrets: true });
    expect(original.volumes).toHaveLength(4);
    expect(original.connections).toHaveLength(1);

    const pgStore = await open({ plugin: "@cinderts/persistence-postgres", options: { url: pgEnv!.CINDERTS_PG_URL, schema } });
    const loaded = await pgStore.load(JSON.parse(JSON.stringify(original)), { persist: true });
    expect(loaded.written).toEqual({ volumes: 4, snapshots: 1, connections: 1 });
    const fromPg = await pgStore.dump({ includeSecrets: true });
    expect(data(fromPg)).toStrictEqual(data(original));
    expect(fromPg.volumes.find((v) => v.id === v2.id)!.provider_auth).toBe("CHAP user s3cret");
    // The loaded records are live in PostgreSQL: the library works on them.
    expect((await pgStore.backend("local").getVolume(v1.id)).status).toBe("in-use");

    const back = await open({ plugin: "@cinderts/persistence-sqlite", options: { path: join(dir, "b.db") } });
    await back.load(JSON.parse(JSON.stringify(fromPg)), { persist: true });
    expect(data(await back.dump({ includeSecrets: true }))).toStrictEqual(data(original));

    // A redacted dump can be inspected but not persisted over secrets.
    const redacted = await sqlite.dump();
    expect(JSON.stringify(redacted)).not.toContain("s3cret");
    await expect(pgStore.load(redacted, { persist: true })).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
  });
});
