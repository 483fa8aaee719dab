import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiError, CindertsClient, type VolumeJson } from "../src/client.js";
import { ADMIN_TOKEN, dropSchema, mainJs, manifest, pgEnv, scratchSchema, startProcess, tempDir, writeManifest, type ServerProcess } from "./harness.js";

const GiB = 1024 ** 3;
const CLIENTS = 8;
const OPS_PER_CLIENT = 200;

/** A small deterministic PRNG so that a failing run can be replayed with the same seed. */
function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

// Conflicts the clients may legitimately meet while racing each other on shared volumes.
const EXPECTED = new Set(["NOT_FOUND", "INVALID_STATE", "IN_USE", "HAS_DEPENDENTS", "CONFLICT", "INVALID_ARGUMENT"]);

describe.skipIf(!pgEnv)("two server instances on one PostgreSQL and one file directory", () => {
  const schema = scratchSchema("cluster");
  const dir = tempDir("cluster");
  const volumesDir = join(dir, "volumes");
  let a: ServerProcess;
  let b: ServerProcess;

  beforeAll(async () => {
    if (!existsSync(mainJs)) throw new Error(`${mainJs} is missing: build @cinderts/server first (turbo runs build before test)`);
    const file = writeManifest(dir, await manifest({ schema, volumesDir, stateDir: join(dir, "state") }));
    // Both start at once: their migrations race on the empty schema.
    [a, b] = await Promise.all([startProcess(file), startProcess(file)]);
  });
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    if (pgEnv) await dropSchema(schema);
  });

  it(`${CLIENTS} clients × ${OPS_PER_CLIENT} mixed operations across both: records match the files, nothing twice, no lost update`, async () => {
    const clients = [a, b].map((s) => new CindertsClient({ url: s.url, token: ADMIN_TOKEN, retries: 5 }));
    const created = new Map<string, number>(); // id → times a create answered with it
    const acknowledgedSize = new Map<string, number>(); // id → largest size an extend acknowledged
    const unexpected: string[] = [];
    const conflicts: Record<string, number> = {};
    const counts: Record<string, number> = {};
    let shared: string[] = [];

    const run = async (n: number) => {
      const rand = rng(1000 + n);
      const pick = () => shared[Math.floor(rand() * shared.length)];
      for (let i = 0; i < OPS_PER_CLIENT; i++) {
        const c = clients[Math.floor(rand() * 2)]!;
        const r = rand();
        const kind = r < 0.22 ? "create" : r < 0.34 ? "extend" : r < 0.46 ? "snapshot" : r < 0.54 ? "clone" : r < 0.66 ? "delete-snapshot" : r < 0.8 ? "delete" : r < 0.9 ? "list" : "get";
        counts[kind] = (counts[kind] ?? 0) + 1;
        try {
          switch (kind) {
            case "create": {
              // Retried with the same key, as a client does after a lost answer: must not create twice.
              const key = `c${n}-${i}`;
              const v1 = await c.createVolume({ size: 1, name: `c${n}-${i}` }, { idempotencyKey: key });
              const v2 = await clients[(n + i) % 2]!.createVolume({ size: 1, name: `c${n}-${i}` }, { idempotencyKey: key });
              expect(v2.id).toBe(v1.id);
              created.set(v1.id, (created.get(v1.id) ?? 0) + 1);
              shared.push(v1.id);
              break;
            }
            case "extend": {
              const id = pick();
              if (!id) break;
              const cur = await c.getVolume(id);
              const v = await c.extendVolume(id, cur.size + 1);
              acknowledgedSize.set(id, Math.max(acknowledgedSize.get(id) ?? 0, v.size));
              break;
            }
            case "snapshot": {
              const id = pick();
              if (id) await c.createSnapshot({ volume_id: id });
              break;
            }
            case "clone": {
              const id = pick();
              if (!id) break;
              const src = await c.getVolume(id);
              // Headroom over the source's size: core checks the size before it locks the source, so an extend
              // landing in between would copy a larger source into a smaller record (see the it.fails test in
              // api.test.ts, reported for core). +3 outruns any extends that can land in that window.
              const v = await c.createVolume({ size: src.size + 3, source_volume_id: id }, { idempotencyKey: `k${n}-${i}` });
              created.set(v.id, (created.get(v.id) ?? 0) + 1);
              shared.push(v.id);
              break;
            }
            case "delete-snapshot": {
              const id = pick();
              if (!id) break;
              const snaps = await c.listSnapshots({ volume_id: id });
              if (snaps[0]) await c.deleteSnapshot(snaps[0].id);
              break;
            }
            case "delete": {
              const id = pick();
              if (!id) break;
              await c.deleteVolume(id);
              shared = shared.filter((x) => x !== id);
              break;
            }
            case "list":
              await c.listVolumes();
              break;
            case "get": {
              const id = pick();
              if (id) await c.getVolume(id);
              break;
            }
          }
        } catch (e) {
          const code = (e as ApiError).code;
          if (!(e instanceof ApiError) || !EXPECTED.has(code)) unexpected.push(`${kind}: ${(e as Error).message}`);
          else conflicts[code] = (conflicts[code] ?? 0) + 1;
        }
      }
    };
    const started = Date.now();
    await Promise.all(Array.from({ length: CLIENTS }, (_, n) => run(n)));
    const seconds = (Date.now() - started) / 1000;
    console.log(`cluster: ${CLIENTS * OPS_PER_CLIENT} ops in ${seconds.toFixed(1)} s`, counts, "refused as expected:", conflicts);

    expect(unexpected).toEqual([]);
    // The clients really contended for the same volumes (otherwise this proves little).
    expect(Object.values(conflicts).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    // No volume created twice: each id answered to exactly one logical create.
    for (const [id, n] of created) expect(n, id).toBe(1);

    // Afterwards, every record matches the files.
    const api = clients[0]!;
    const vols = await api.listVolumes({ includeDeleted: true });
    const byId = new Map<string, VolumeJson>(vols.map((v) => [v.id, v]));
    for (const id of created.keys()) expect(byId.has(id), `record of ${id}`).toBe(true);
    const files = readdirSync(volumesDir);
    expect(files.filter((f) => f.startsWith(".partial-"))).toEqual([]);
    const volumeFiles = new Set(files.filter((f) => f.startsWith("volume-")).map((f) => f.slice("volume-".length)));
    for (const v of vols) {
      expect(["available", "deleted"], `${v.id} settled`).toContain(v.status);
      if (v.status === "available") {
        expect(volumeFiles.has(v.id), `file of ${v.id}`).toBe(true);
        expect(statSync(join(volumesDir, `volume-${v.id}`)).size, JSON.stringify(v)).toBe(v.size * GiB);
      } else {
        expect(volumeFiles.has(v.id), `no file for deleted ${v.id}`).toBe(false);
      }
    }
    for (const id of volumeFiles) expect(byId.get(id)?.status, `record for file ${id}`).toBe("available");
    const snaps = await api.listSnapshots();
    const snapFiles = new Set(files.filter((f) => f.startsWith("snapshot-")).map((f) => f.slice("snapshot-".length)));
    for (const s of snaps) {
      expect(s.status).toBe("available");
      expect(snapFiles.has(s.id), `file of snapshot ${s.id}`).toBe(true);
    }
    expect(snapFiles.size).toBe(snaps.length);
    // No lost update: the stored size is at least every size an extend acknowledged (sizes only grow).
    for (const [id, size] of acknowledgedSize) {
      const v = byId.get(id)!;
      if (v.status !== "deleted") expect(v.size, `size of ${id}`).toBeGreaterThanOrEqual(size);
    }
    // One Idempotency-Key sent to both instances at once, three times each: one volume.
    const racing = await Promise.all([0, 1, 0, 1, 0, 1].map((i) => clients[i]!.createVolume({ size: 1, name: "race" }, { idempotencyKey: "race-both" })));
    expect(new Set(racing.map((v) => v.id)).size).toBe(1);
    expect((await api.listVolumes()).filter((v) => v.name === "race")).toHaveLength(1);
    // Both instances served.
    const served = await Promise.all(clients.map((c) => c.call<string>("GET", "/metrics")));
    for (const m of served) expect(m).toMatch(/cinderts_operations_total\{backend="local",op="create",outcome="ok"\} [1-9]/);
  }, 600_000);
});
