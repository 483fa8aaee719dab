import {
  isStorageError,
  type ConnectionRecord,
  type Lock,
  type LockManager,
  type Persistence,
  type RecordKind,
  type RecordOf,
  type SnapshotRecord,
  type VolumeRecord,
} from "@cinderts/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

/** Options of {@link persistenceContract}. */
export interface PersistenceContractOptions {
  /** Shown in the describe title (default "persistence"). */
  name?: string;
  /** Parallel read-modify-write loops on one record (default 8). */
  writers?: number;
  /** Increments each loop makes (default 5). */
  incrementsPerWriter?: number;
  /**
   * The store exposes cross-process `locks` (default false). When true the LockManager contract runs on them;
   * either way the suite checks that the store matches what is declared here.
   */
  locks?: boolean;
  /** Parallel holders in the lock mutual-exclusion test (default 8). */
  lockHolders?: number;
}

/** Options of {@link lockManagerContract}. */
export interface LockManagerContractOptions {
  name?: string;
  /** Parallel holders in the mutual-exclusion test (default 8). */
  holders?: number;
}

type Factory<T> = () => Promise<T> | T;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Ids are unique per test so that a persistence shared between tests (a database) cannot leak results across them. */
let seq = 0;
const uid = (prefix: string) => `${prefix}-${process.pid}-${Date.now().toString(36)}-${(seq++).toString(36)}`;

function volume(over: Partial<VolumeRecord> = {}): VolumeRecord {
  return {
    id: uid("vol"),
    version: 0,
    backend: "be-a",
    name: "data disk",
    created_at: "2025-01-01T00:00:00.000Z",
    updated_at: "2025-01-01T00:00:01.000Z",
    metadata: { tier: "gold", "ünïcode": "✓ \"quoted\" \\ back\nslash" },
    intent: {
      op: "create_volume",
      started_at: "2025-01-01T00:00:00.500Z",
      owner: "host-1:4242",
      args: { size: 2, nested: { list: [1, "two", null, true], empty: {} } },
    },
    status_reason: null,
    provider_location: "/srv/volumes/volume-x",
    provider_id: "px-1",
    provider_auth: "CHAP user secret",
    provider_geometry: null,
    size: 2,
    status: "available",
    source_volume_id: null,
    snapshot_id: null,
    ...over,
  };
}

function snapshot(volume_id: string, over: Partial<SnapshotRecord> = {}): SnapshotRecord {
  return {
    id: uid("snap"),
    version: 0,
    backend: "be-a",
    name: "nightly",
    created_at: "2025-01-02T00:00:00.000Z",
    updated_at: "2025-01-02T00:00:00.000Z",
    metadata: {},
    intent: null,
    status_reason: "because",
    provider_location: null,
    provider_id: null,
    provider_auth: null,
    provider_geometry: "512/4096",
    volume_id,
    volume_size: 2,
    status: "available",
    ...over,
  };
}

function connection(volume_id: string, over: Partial<ConnectionRecord> = {}): ConnectionRecord {
  return {
    id: uid("conn"),
    version: 0,
    backend: "be-a",
    volume_id,
    status: "attached",
    protocol: "iscsi",
    connector: {
      host: "node-1",
      ip: "127.0.0.1",
      initiator: "iqn.1993-08.org.debian:01:abc",
      multipath: false,
      wwpns: ["5001", "5002"],
      vendor_extra: { deep: [1, 2, { x: "y" }] },
    },
    conn_info: {
      driver_volume_type: "iscsi",
      data: {
        target_iqn: "iqn.2010-10.org.openstack:volume-x",
        target_portal: "127.0.0.1:3260",
        target_lun: 1,
        auth_method: "CHAP",
        discard: true,
        target_portals: ["127.0.0.1:3260"],
      },
    },
    attach_info: {
      connector: "iscsi",
      method: "kernel",
      path: "/dev/sdb",
      host: "node-1",
      handle: { session: 3, devices: ["/dev/sdb"], multipath: null },
    },
    node_id: "node-1",
    created_at: "2025-01-03T00:00:00.000Z",
    updated_at: "2025-01-03T00:00:00.000Z",
    intent: null,
    status_reason: null,
    ...over,
  };
}

async function expectCode(p: Promise<unknown>, code: string): Promise<unknown> {
  let caught: unknown;
  try {
    await p;
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected a StorageError with code ${code}, but nothing was thrown`).toBeDefined();
  expect(isStorageError(caught), `expected a StorageError with code ${code}, got ${String(caught)}`).toBe(true);
  expect((caught as { code: string }).code).toBe(code);
  return caught;
}

const ids = (rs: readonly { id: string }[]) => rs.map((r) => r.id).sort();

/**
 * Registers vitest suites proving that a Persistence implementation keeps the contract of
 * `@cinderts/core`'s `Persistence` interface. `factory` is called before every test and must return a
 * fresh, empty, not yet initialised store; the suite calls `init()` and `close()` itself.
 * With `opts.locks` the {@link lockManagerContract} tests run on the store's `locks` too.
 *
 * ```ts
 * import { persistenceContract } from "@cinderts/testkit";
 * persistenceContract(() => new MyPersistence({ url: process.env.MY_URL! }));
 * ```
 */
export function persistenceContract(factory: Factory<Persistence>, opts: PersistenceContractOptions = {}): void {
  const writers = opts.writers ?? 8;
  const perWriter = opts.incrementsPerWriter ?? 5;
  const expectLocks = opts.locks ?? false;

  describe(`persistence contract: ${opts.name ?? "persistence"}`, () => {
    let p: Persistence;
    beforeEach(async () => {
      p = await factory();
      await p.init();
    });
    afterEach(async () => {
      await p?.close();
    });

    describe("records", () => {
      const samples = (): { [K in RecordKind]: RecordOf[K] } => {
        const v = volume();
        return { volume: v, snapshot: snapshot(v.id), connection: connection(v.id) };
      };

      for (const kind of ["volume", "snapshot", "connection"] as const) {
        it(`${kind}: put then get round-trips every field exactly`, async () => {
          const rec = samples()[kind];
          const stored = await p.put(kind, rec);
          expect(stored).toStrictEqual({ ...rec, version: 1 });
          expect(await p.get(kind, rec.id)).toStrictEqual({ ...rec, version: 1 });
        });

        it(`${kind}: get of an unknown id is undefined`, async () => {
          expect(await p.get(kind, uid("missing"))).toBeUndefined();
        });

        it(`${kind}: every put increments version, whatever version the caller passes`, async () => {
          const rec = samples()[kind];
          expect((await p.put(kind, { ...rec, version: 41 })).version).toBe(1);
          const second = await p.put(kind, { ...rec, status_reason: "second" } as RecordOf[typeof kind]);
          expect(second.version).toBe(2);
          expect(second.status_reason).toBe("second");
          const third = await p.put(kind, second, { expectVersion: 2 });
          expect(third.version).toBe(3);
          expect((await p.get(kind, rec.id))?.version).toBe(3);
        });

        it(`${kind}: delete removes it, and deleting a missing record succeeds`, async () => {
          const rec = samples()[kind];
          await p.put(kind, rec);
          await p.delete(kind, rec.id);
          expect(await p.get(kind, rec.id)).toBeUndefined();
          expect(ids(await p.find(kind, { ids: [rec.id] }))).toEqual([]);
          await expect(p.delete(kind, rec.id)).resolves.toBeUndefined();
          await expect(p.delete(kind, uid("never-existed"))).resolves.toBeUndefined();
        });

        it(`${kind}: expectVersion 0 on an existing record is a CONFLICT and changes nothing`, async () => {
          const rec = samples()[kind];
          const stored = await p.put(kind, rec);
          const e = await expectCode(p.put(kind, { ...rec, status_reason: "clobber" } as RecordOf[typeof kind], { expectVersion: 0 }), "CONFLICT");
          expect((e as Error).name).toBe("ConflictError");
          expect(await p.get(kind, rec.id)).toStrictEqual(stored);
        });

        it(`${kind}: a stale expectVersion is a CONFLICT and changes nothing`, async () => {
          const rec = samples()[kind];
          await p.put(kind, rec);
          const v2 = await p.put(kind, { ...rec, status_reason: "v2" } as RecordOf[typeof kind]);
          await expectCode(p.put(kind, { ...rec, status_reason: "stale" } as RecordOf[typeof kind], { expectVersion: 1 }), "CONFLICT");
          await expectCode(p.put(kind, { ...rec, status_reason: "future" } as RecordOf[typeof kind], { expectVersion: 7 }), "CONFLICT");
          expect(await p.get(kind, rec.id)).toStrictEqual(v2);
        });

        it(`${kind}: expectVersion on a missing record is a CONFLICT and creates nothing`, async () => {
          const rec = samples()[kind];
          await expectCode(p.put(kind, rec, { expectVersion: 3 }), "CONFLICT");
          expect(await p.get(kind, rec.id)).toBeUndefined();
          expect((await p.put(kind, rec, { expectVersion: 0 })).version).toBe(1);
        });

        it(`${kind}: returned records are copies (mutating them changes nothing stored)`, async () => {
          const rec = samples()[kind];
          const stored = await p.put(kind, rec);
          (stored as { status_reason: string | null }).status_reason = "mutated";
          const got = (await p.get(kind, rec.id))!;
          expect(got.status_reason).toBe(rec.status_reason);
          (got as { status_reason: string | null }).status_reason = "mutated again";
          expect((await p.get(kind, rec.id))!.status_reason).toBe(rec.status_reason);
          (rec as { status_reason: string | null }).status_reason = "caller mutated input";
          expect((await p.get(kind, rec.id))!.status_reason).not.toBe("caller mutated input");
        });
      }

      it("kinds are separate: the same id in two kinds are two records", async () => {
        const id = uid("shared");
        const v = volume({ id });
        const s = snapshot(uid("vol"), { id });
        await p.put("volume", v);
        await p.put("snapshot", s);
        expect(await p.get("volume", id)).toStrictEqual({ ...v, version: 1 });
        expect(await p.get("snapshot", id)).toStrictEqual({ ...s, version: 1 });
        expect(await p.get("connection", id)).toBeUndefined();
        await p.delete("volume", id);
        expect(await p.get("volume", id)).toBeUndefined();
        expect(await p.get("snapshot", id)).toStrictEqual({ ...s, version: 1 });
      });
    });

    describe("find", () => {
      // A small world: two backends, volumes in several statuses, snapshots and connections on two volumes.
      async function world() {
        const tag = uid("w");
        const v1 = volume({ id: `${tag}-v1`, backend: `${tag}-a`, name: `${tag}-db`, status: "available", created_at: "2025-01-01T00:00:01.000Z" });
        const v2 = volume({ id: `${tag}-v2`, backend: `${tag}-a`, name: `${tag}-web`, status: "in-use", created_at: "2025-01-01T00:00:02.000Z" });
        const v3 = volume({ id: `${tag}-v3`, backend: `${tag}-b`, name: `${tag}-db`, status: "error", created_at: "2025-01-01T00:00:03.000Z" });
        const v4 = volume({ id: `${tag}-v4`, backend: `${tag}-b`, name: null, status: "creating", created_at: "2025-01-01T00:00:00.000Z" });
        const s1 = snapshot(v1.id, { id: `${tag}-s1`, backend: `${tag}-a`, name: `${tag}-nightly`, status: "available", created_at: "2025-01-02T00:00:01.000Z" });
        const s2 = snapshot(v1.id, { id: `${tag}-s2`, backend: `${tag}-a`, name: `${tag}-weekly`, status: "creating", created_at: "2025-01-02T00:00:02.000Z" });
        const s3 = snapshot(v3.id, { id: `${tag}-s3`, backend: `${tag}-b`, name: `${tag}-nightly`, status: "available", created_at: "2025-01-02T00:00:03.000Z" });
        const c1 = connection(v2.id, { id: `${tag}-c1`, backend: `${tag}-a`, node_id: `${tag}-n1`, status: "attached", created_at: "2025-01-03T00:00:01.000Z" });
        const c2 = connection(v2.id, { id: `${tag}-c2`, backend: `${tag}-a`, node_id: `${tag}-n2`, status: "connected", created_at: "2025-01-03T00:00:02.000Z" });
        const c3 = connection(v3.id, { id: `${tag}-c3`, backend: `${tag}-b`, node_id: `${tag}-n1`, status: "error", created_at: "2025-01-03T00:00:03.000Z" });
        const c4 = connection(v3.id, { id: `${tag}-c4`, backend: `${tag}-b`, node_id: null, status: "connecting", created_at: "2025-01-03T00:00:04.000Z" });
        // Written out of creation order so that ordering by insertion is not mistaken for ordering by created_at.
        for (const v of [v3, v1, v4, v2]) await p.put("volume", v);
        for (const s of [s2, s3, s1]) await p.put("snapshot", s);
        for (const c of [c4, c2, c1, c3]) await p.put("connection", c);
        return { tag, v1, v2, v3, v4, s1, s2, s3, c1, c2, c3, c4 };
      }

      it("without a filter returns every record of the kind, ordered by created_at", async () => {
        const w = await world();
        const mine = (rs: { id: string }[]) => rs.map((r) => r.id).filter((id) => id.startsWith(w.tag));
        expect(mine(await p.find("volume"))).toEqual([w.v4.id, w.v1.id, w.v2.id, w.v3.id]);
        expect(mine(await p.find("snapshot", {}))).toEqual([w.s1.id, w.s2.id, w.s3.id]);
        expect(mine(await p.find("connection"))).toEqual([w.c1.id, w.c2.id, w.c3.id, w.c4.id]);
      });

      it("returns the records whole, with their versions", async () => {
        const w = await world();
        expect(await p.find("connection", { ids: [w.c1.id] })).toStrictEqual([{ ...w.c1, version: 1 }]);
        expect(await p.find("volume", { ids: [w.v1.id] })).toStrictEqual([{ ...w.v1, version: 1 }]);
      });

      it("by backend", async () => {
        const w = await world();
        expect(ids(await p.find("volume", { backend: `${w.tag}-a` }))).toEqual(ids([w.v1, w.v2]));
        expect(ids(await p.find("volume", { backend: `${w.tag}-b` }))).toEqual(ids([w.v3, w.v4]));
        expect(ids(await p.find("snapshot", { backend: `${w.tag}-b` }))).toEqual(ids([w.s3]));
        expect(ids(await p.find("connection", { backend: `${w.tag}-a` }))).toEqual(ids([w.c1, w.c2]));
        expect(await p.find("volume", { backend: `${w.tag}-none` })).toEqual([]);
      });

      it("by volume_id", async () => {
        const w = await world();
        expect(ids(await p.find("snapshot", { volume_id: w.v1.id }))).toEqual(ids([w.s1, w.s2]));
        expect(ids(await p.find("snapshot", { volume_id: w.v3.id }))).toEqual(ids([w.s3]));
        expect(ids(await p.find("connection", { volume_id: w.v2.id }))).toEqual(ids([w.c1, w.c2]));
        expect(await p.find("snapshot", { volume_id: w.v2.id })).toEqual([]);
      });

      it("by name (a null name never matches)", async () => {
        const w = await world();
        expect(ids(await p.find("volume", { name: `${w.tag}-db` }))).toEqual(ids([w.v1, w.v3]));
        expect(ids(await p.find("snapshot", { name: `${w.tag}-nightly` }))).toEqual(ids([w.s1, w.s3]));
        expect(await p.find("volume", { name: `${w.tag}-DB` })).toEqual([]);
      });

      it("by status, as a string and as a list", async () => {
        const w = await world();
        const inWorld = (rs: { id: string }[]) => ids(rs.filter((r) => r.id.startsWith(w.tag)));
        expect(inWorld(await p.find("volume", { status: "error" }))).toEqual(ids([w.v3]));
        expect(inWorld(await p.find("volume", { status: ["available", "in-use"] }))).toEqual(ids([w.v1, w.v2]));
        expect(inWorld(await p.find("volume", { status: ["deleting"] }))).toEqual([]);
        expect(inWorld(await p.find("volume", { status: [] }))).toEqual([]);
        expect(inWorld(await p.find("snapshot", { status: "creating" }))).toEqual(ids([w.s2]));
        expect(inWorld(await p.find("connection", { status: ["error", "connecting"] }))).toEqual(ids([w.c3, w.c4]));
      });

      it("by ids (unknown ids are ignored, an empty list matches nothing)", async () => {
        const w = await world();
        expect(ids(await p.find("volume", { ids: [w.v2.id, w.v4.id, uid("nope")] }))).toEqual(ids([w.v2, w.v4]));
        expect(ids(await p.find("volume", { ids: [w.s1.id] }))).toEqual([]);
        expect(await p.find("volume", { ids: [] })).toEqual([]);
        const many = Array.from({ length: 1200 }, (_, i) => `${w.tag}-bulk-${i}`);
        expect(ids(await p.find("volume", { ids: [...many, w.v1.id] }))).toEqual(ids([w.v1]));
      });

      it("by node_id", async () => {
        const w = await world();
        expect(ids(await p.find("connection", { node_id: `${w.tag}-n1` }))).toEqual(ids([w.c1, w.c3]));
        expect(ids(await p.find("connection", { node_id: `${w.tag}-n2` }))).toEqual(ids([w.c2]));
        expect(await p.find("connection", { node_id: `${w.tag}-n3` })).toEqual([]);
      });

      it("filters combine with AND", async () => {
        const w = await world();
        expect(ids(await p.find("volume", { backend: `${w.tag}-b`, name: `${w.tag}-db` }))).toEqual(ids([w.v3]));
        expect(ids(await p.find("volume", { backend: `${w.tag}-a`, status: ["error", "in-use"] }))).toEqual(ids([w.v2]));
        expect(ids(await p.find("connection", { volume_id: w.v3.id, node_id: `${w.tag}-n1`, status: "error" }))).toEqual(ids([w.c3]));
        expect(await p.find("snapshot", { volume_id: w.v1.id, name: `${w.tag}-nightly`, status: "creating" })).toEqual([]);
      });

      it("sees updates and deletes: a record moves between filters as its fields change", async () => {
        const w = await world();
        await p.put("volume", { ...w.v1, status: "deleting", backend: `${w.tag}-b` });
        expect(ids(await p.find("volume", { backend: `${w.tag}-a` }))).toEqual(ids([w.v2]));
        expect(ids(await p.find("volume", { backend: `${w.tag}-b`, status: "deleting" }))).toEqual(ids([w.v1]));
        await p.delete("connection", w.c1.id);
        expect(ids(await p.find("connection", { node_id: `${w.tag}-n1` }))).toEqual(ids([w.c3]));
      });
    });

    describe("key-values", () => {
      it("set/get JSON values of every type, overwrite, and undefined for a missing key", async () => {
        const k = uid("kv");
        const values: unknown[] = [
          { a: 1, b: [true, null, "x"], c: { d: "é ✓ \n" } },
          ["list", 2, { three: 3 }],
          42,
          -1.5,
          "a string",
          "",
          true,
          false,
          null,
          {},
        ];
        expect(await p.getKey(`${k}/missing`)).toBeUndefined();
        for (const [i, v] of values.entries()) {
          await p.setKey(`${k}/${i}`, v);
        }
        for (const [i, v] of values.entries()) {
          expect(await p.getKey(`${k}/${i}`)).toStrictEqual(v);
        }
        await p.setKey(`${k}/0`, { replaced: true });
        expect(await p.getKey(`${k}/0`)).toStrictEqual({ replaced: true });
      });

      it("a returned value is a copy", async () => {
        const k = uid("kv");
        const v = { list: [1, 2] };
        await p.setKey(k, v);
        v.list.push(3);
        const got = (await p.getKey(k)) as { list: number[] };
        expect(got).toStrictEqual({ list: [1, 2] });
        got.list.push(4);
        expect(await p.getKey(k)).toStrictEqual({ list: [1, 2] });
      });

      it("delete removes a key, and deleting a missing key succeeds", async () => {
        const k = uid("kv");
        await p.setKey(k, "v");
        await p.deleteKey(k);
        expect(await p.getKey(k)).toBeUndefined();
        expect(await p.listKeys(k)).toEqual([]);
        await expect(p.deleteKey(k)).resolves.toBeUndefined();
      });

      it("listKeys(prefix) lists exactly the keys with that prefix, sorted", async () => {
        const k = uid("kv");
        for (const key of [`${k}:b/2`, `${k}:a/1`, `${k}:b/1`, `${k}:b`, `${k}:c`, `${k}:B/1`]) await p.setKey(key, 1);
        expect(await p.listKeys(`${k}:b/`)).toEqual([`${k}:b/1`, `${k}:b/2`]);
        expect(await p.listKeys(`${k}:b`)).toEqual([`${k}:b`, `${k}:b/1`, `${k}:b/2`]);
        expect(await p.listKeys(`${k}:`)).toEqual([`${k}:B/1`, `${k}:a/1`, `${k}:b`, `${k}:b/1`, `${k}:b/2`, `${k}:c`]);
        expect(await p.listKeys(`${k}:z`)).toEqual([]);
        const all = await p.listKeys();
        expect(all.filter((x) => x.startsWith(k))).toHaveLength(6);
        expect(await p.listKeys("")).toEqual(all);
      });

      it("listKeys treats wildcard characters in the prefix literally", async () => {
        const k = uid("kv");
        for (const key of [`${k}:50%_off`, `${k}:50xxoff`, `${k}:5*`, `${k}:5?`, `${k}:5[a]`, `${k}:5a`, `${k}:back\\slash`]) {
          await p.setKey(key, true);
        }
        expect(await p.listKeys(`${k}:50%_`)).toEqual([`${k}:50%_off`]);
        expect(await p.listKeys(`${k}:5*`)).toEqual([`${k}:5*`]);
        expect(await p.listKeys(`${k}:5?`)).toEqual([`${k}:5?`]);
        expect(await p.listKeys(`${k}:5[`)).toEqual([`${k}:5[a]`]);
        expect(await p.listKeys(`${k}:back\\`)).toEqual([`${k}:back\\slash`]);
      });

      it("keys are independent of records", async () => {
        const v = volume();
        await p.put("volume", v);
        await p.setKey(v.id, "kv");
        await p.delete("volume", v.id);
        expect(await p.getKey(v.id)).toBe("kv");
      });
    });

    describe("concurrent updates", () => {
      it(`${writers} parallel read-modify-write loops with retry on CONFLICT lose no update`, async () => {
        const rec = volume({ metadata: { counter: "0" } });
        await p.put("volume", rec);
        let conflicts = 0;
        const loop = async () => {
          for (let done = 0; done < perWriter; ) {
            const cur = (await p.get("volume", rec.id))!;
            const next = { ...cur, metadata: { ...cur.metadata, counter: String(Number(cur.metadata.counter) + 1) } };
            try {
              await p.put("volume", next, { expectVersion: cur.version });
              done++;
            } catch (e) {
              if (!isStorageError(e) || e.code !== "CONFLICT") throw e;
              conflicts++;
            }
          }
        };
        await Promise.all(Array.from({ length: writers }, loop));
        const final = (await p.get("volume", rec.id))!;
        expect(final.metadata.counter).toBe(String(writers * perWriter));
        expect(final.version).toBe(1 + writers * perWriter);
        // The loops really raced: otherwise this test would not prove the conditional write.
        expect(conflicts).toBeGreaterThan(0);
      });

      it("parallel puts with expectVersion 0 on one new id: exactly one wins", async () => {
        const id = uid("vol");
        const results = await Promise.allSettled(
          Array.from({ length: writers }, (_, i) => p.put("volume", volume({ id, name: `writer-${i}` }), { expectVersion: 0 })),
        );
        const won = results.filter((r) => r.status === "fulfilled");
        expect(won).toHaveLength(1);
        for (const r of results) {
          if (r.status === "rejected") expect((r.reason as { code?: string }).code).toBe("CONFLICT");
        }
        const winner = (won[0] as PromiseFulfilledResult<VolumeRecord>).value;
        expect(await p.get("volume", id)).toStrictEqual(winner);
      });
    });

    describe("locks", () => {
      it(expectLocks ? "exposes a LockManager as `locks`" : "has no `locks` (the host uses its in-process manager)", () => {
        if (expectLocks) expect(typeof p.locks?.acquire).toBe("function");
        else expect(p.locks).toBeUndefined();
      });
    });
  });

  if (expectLocks) {
    describe(`persistence contract: ${opts.name ?? "persistence"} locks`, () => {
      let p: Persistence | undefined;
      beforeEach(async () => {
        p = await factory();
        await p.init();
      });
      afterEach(async () => {
        await p?.locks?.close?.();
        await p?.close();
      });
      lockTests(() => p?.locks, opts.lockHolders ?? 8);
    });
  }
}

/**
 * Registers vitest suites proving the LockManager contract: mutual exclusion, timeout → LockTimeoutError,
 * release lets the next holder in, keys are independent. `factory` is called before every test.
 */
export function lockManagerContract(factory: Factory<LockManager>, opts: LockManagerContractOptions = {}): void {
  describe(`lock manager contract: ${opts.name ?? "locks"}`, () => {
    let m: LockManager | undefined;
    beforeEach(async () => {
      m = await factory();
    });
    afterEach(async () => {
      await m?.close?.();
    });
    lockTests(() => m, opts.holders ?? 8);
  });
}

function lockTests(get: () => LockManager | undefined, holders: number): void {
  const lit = (title: string, fn: (m: LockManager) => Promise<void>) =>
    it(title, async () => {
      const m = get();
      if (!m) throw new Error("no lock manager: the factory returned none, or the persistence has no `locks`");
      await fn(m);
    });

  lit(`mutual exclusion: ${holders} parallel holders of one key never overlap`, async (m) => {
    const key = uid("lock");
    let inside = 0;
    let maxInside = 0;
    let entries = 0;
    await Promise.all(
      Array.from({ length: holders }, async () => {
        const lock = await m.acquire(key, { timeoutMs: 30_000 });
        try {
          inside++;
          entries++;
          maxInside = Math.max(maxInside, inside);
          await sleep(5);
          inside--;
        } finally {
          await lock.release();
        }
      }),
    );
    expect(entries).toBe(holders);
    expect(maxInside).toBe(1);
  });

  lit("a lock returns its key", async (m) => {
    const key = uid("lock");
    const lock = await m.acquire(key);
    expect(lock.key).toBe(key);
    await lock.release();
  });

  lit("a held key times out with LockTimeoutError (LOCK_TIMEOUT), and the holder keeps it", async (m) => {
    const key = uid("lock");
    const held = await m.acquire(key);
    const started = Date.now();
    const e = await expectCode(m.acquire(key, { timeoutMs: 150 }), "LOCK_TIMEOUT");
    expect((e as Error).name).toBe("LockTimeoutError");
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    // The timed-out waiter must not have taken or broken the lock.
    await expectCode(m.acquire(key, { timeoutMs: 50 }), "LOCK_TIMEOUT");
    await held.release();
    const next = await m.acquire(key, { timeoutMs: 5_000 });
    await next.release();
  });

  lit("release lets the next waiter in", async (m) => {
    const key = uid("lock");
    const first = await m.acquire(key);
    let secondIn = false;
    const second = m.acquire(key, { timeoutMs: 10_000 }).then((l) => {
      secondIn = true;
      return l;
    });
    await sleep(100);
    expect(secondIn).toBe(false);
    await first.release();
    const l2 = await second;
    expect(secondIn).toBe(true);
    await l2.release();
  });

  lit("keys are independent", async (m) => {
    const a = await m.acquire(uid("lock-a"));
    const b = await m.acquire(uid("lock-b"), { timeoutMs: 1_000 });
    await b.release();
    await a.release();
  });

  lit("release is idempotent and a second release does not free the next holder's lock", async (m) => {
    const key = uid("lock");
    const first = await m.acquire(key);
    await first.release();
    const second: Lock = await m.acquire(key, { timeoutMs: 1_000 });
    await first.release();
    await expectCode(m.acquire(key, { timeoutMs: 100 }), "LOCK_TIMEOUT");
    await second.release();
  });
}
