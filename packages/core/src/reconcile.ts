import { lockKey, reasonOf, type Backend } from "./backend.js";
import type { Cinderts } from "./cinderts.js";
import { isStorageError } from "./errors.js";
import { supportsInventory, type Persistence } from "./interfaces.js";
import type { ConnectionRecord, SnapshotRecord, VolumeRecord } from "./records.js";
import { nowIso, ownerIsAlive } from "./util.js";

export interface ReconcileOptions {
  /** Only this backend. */
  backend?: string;
  /** Delete backend volumes that this driver created but no record owns (default: report only). */
  deleteOrphans?: boolean;
  /** Treat intents of processes on other hosts older than this as dead (default: never). */
  staleAfterMs?: number;
  /** How long to wait for a lock held by a live operation before leaving that record alone. */
  lockTimeoutMs?: number;
}

export interface ReconcileAction {
  kind: "volume" | "snapshot" | "connection" | "orphan";
  id: string;
  backend: string;
  /** What was found and what was done, e.g. "creating → available (found on backend)". */
  action: string;
}

export interface ReconcileReport {
  actions: ReconcileAction[];
  /** Backend volumes with the cinderts tag and no live record. */
  orphans: { backend: string; id: string; deleted: boolean }[];
  /** Records that say available but whose backend object is gone. */
  missing: { backend: string; kind: "volume" | "snapshot"; id: string }[];
  /** Records left alone because a live operation holds them. */
  skipped: { kind: string; id: string; reason: string }[];
}

async function isAbandoned(
  persistence: Persistence,
  intent: { owner: string; started_at: string } | null,
  staleAfterMs?: number,
): Promise<boolean> {
  if (!intent) return false;
  if (!ownerIsAlive(intent.owner)) return true;
  if (persistence.ownerAlive && !(await persistence.ownerAlive(intent.owner))) return true;
  return staleAfterMs !== undefined && Date.now() - Date.parse(intent.started_at) > staleAfterMs;
}

/**
 * Settles what a crash left behind: every record with an intent whose owner is gone is finished or marked
 * error after asking the backend, and backend objects without a record are reported (or removed).
 * Safe to run while other processes work: it only touches records whose lock it gets.
 */
export async function reconcile(ct: Cinderts, opts: ReconcileOptions = {}): Promise<ReconcileReport> {
  const report: ReconcileReport = { actions: [], orphans: [], missing: [], skipped: [] };
  const backends = opts.backend ? [ct.backend(opts.backend)] : [...ct.backends.values()];
  for (const b of backends) {
    await reconcileBackend(b, opts, report);
  }
  return report;
}

async function reconcileBackend(b: Backend, opts: ReconcileOptions, report: ReconcileReport): Promise<void> {
  const { driver, persistence, locks, logger } = b.internals;
  const inventory = supportsInventory(driver) ? driver : undefined;
  const act = (kind: ReconcileAction["kind"], id: string, action: string) => {
    report.actions.push({ kind, id, backend: b.name, action });
    logger.warn("reconcile", { kind, id, action });
  };

  const tryLocked = async (keys: string[], fn: () => Promise<void>, what: { kind: string; id: string }) => {
    const held = [];
    try {
      for (const k of [...keys].sort()) held.push(await locks.acquire(k, { timeoutMs: opts.lockTimeoutMs ?? 2000 }));
    } catch (e) {
      for (const l of held.reverse()) await l.release();
      if (isStorageError(e) && e.code === "LOCK_TIMEOUT") {
        report.skipped.push({ ...what, reason: "held by a live operation" });
        return;
      }
      throw e;
    }
    try {
      await fn();
    } finally {
      for (const l of held.reverse()) await l.release();
    }
  };

  // Connections first: they hold volumes in-use.
  for (const c of await persistence.find("connection", { backend: b.name })) {
    if (!(await isAbandoned(persistence, c.intent, opts.staleAfterMs))) continue;
    await tryLocked([lockKey.volume(c.volume_id)], () => settleConnection(b, c, act), { kind: "connection", id: c.id });
  }

  for (const v of await persistence.find("volume", { backend: b.name })) {
    if (!(await isAbandoned(persistence, v.intent, opts.staleAfterMs))) continue;
    await tryLocked([lockKey.volume(v.id)], () => settleVolume(b, v, act), { kind: "volume", id: v.id });
  }

  for (const s of await persistence.find("snapshot", { backend: b.name })) {
    if (!(await isAbandoned(persistence, s.intent, opts.staleAfterMs))) continue;
    await tryLocked([lockKey.volume(s.volume_id), lockKey.snapshot(s.id)], () => settleSnapshot(b, s, act), {
      kind: "snapshot",
      id: s.id,
    });
  }

  if (!inventory) return;
  // Backend objects with our tag but no live record.
  const records = new Map((await persistence.find("volume", { backend: b.name })).map((v) => [v.id, v]));
  for (const managed of await inventory.listManagedVolumes()) {
    const rec = records.get(managed.id);
    if (rec && rec.status !== "deleted") continue;
    let deleted = false;
    if (opts.deleteOrphans) {
      const stub = orphanStub(b.name, managed.id, managed.sizeGiB ?? 1, rec);
      await driver.deleteVolume(stub);
      deleted = true;
      act("orphan", managed.id, "backend volume without a record: deleted");
    }
    report.orphans.push({ backend: b.name, id: managed.id, deleted });
  }
  // Records whose backend object is gone.
  for (const v of records.values()) {
    if (v.intent || !["available", "in-use"].includes(v.status)) continue;
    if ((await inventory.inspectVolume(v)) === "absent") report.missing.push({ backend: b.name, kind: "volume", id: v.id });
  }
}

function orphanStub(backend: string, id: string, size: number, rec?: VolumeRecord): VolumeRecord {
  const now = nowIso();
  return (
    rec ?? {
      id,
      version: 0,
      backend,
      name: null,
      size,
      status: "deleting",
      source_volume_id: null,
      snapshot_id: null,
      created_at: now,
      updated_at: now,
      metadata: {},
      intent: null,
      status_reason: null,
      provider_location: null,
      provider_id: null,
      provider_auth: null,
      provider_geometry: null,
    }
  );
}

type Act = (kind: ReconcileAction["kind"], id: string, action: string) => void;

async function settleVolume(b: Backend, stale: VolumeRecord, act: Act): Promise<void> {
  const { driver, persistence } = b.internals;
  const v = await persistence.get("volume", stale.id);
  if (!v || !v.intent) return;
  const inventory = supportsInventory(driver) ? driver : undefined;
  const from = `${v.status} (${v.intent.op} interrupted)`;
  try {
    switch (v.status) {
      case "creating": {
        const presence = inventory ? await inventory.inspectVolume(v) : "incomplete";
        if (presence === "present") {
          await b.save("volume", { ...v, status: "available", intent: null }, v);
          act("volume", v.id, `${from} → available: complete on the backend`);
        } else {
          // Partial copies are not data anyone can trust: remove them, keep the record to say why.
          await driver.deleteVolume(v);
          await b.save("volume", { ...v, status: "error", intent: null, status_reason: `${v.intent.op} was interrupted` }, v);
          act("volume", v.id, `${from} → error: ${presence} on the backend, removed`);
        }
        return;
      }
      case "deleting": {
        await driver.deleteVolume(v);
        await b.save("volume", { ...v, status: "deleted", intent: null }, v);
        act("volume", v.id, `${from} → deleted`);
        return;
      }
      case "extending": {
        const to = Number(v.intent.args?.to);
        const back = (v.intent.args?.back as "available" | "in-use" | undefined) ?? "available";
        await driver.extendVolume(v, to);
        await b.save("volume", { ...v, size: to, status: back, intent: null }, v);
        act("volume", v.id, `${from} → ${back} at ${to} GiB`);
        return;
      }
      default: {
        await b.save("volume", { ...v, intent: null }, v);
        act("volume", v.id, `${from}: intent cleared`);
      }
    }
  } catch (e) {
    const status = v.status === "deleting" ? "error_deleting" : v.status === "extending" ? "error_extending" : "error";
    await b.save("volume", { ...v, status, intent: null, status_reason: reasonOf(e) }, v);
    act("volume", v.id, `${from} → ${status}: ${reasonOf(e)}`);
  }
}

async function settleSnapshot(b: Backend, stale: SnapshotRecord, act: Act): Promise<void> {
  const { driver, persistence } = b.internals;
  const s = await persistence.get("snapshot", stale.id);
  if (!s || !s.intent) return;
  const vol = await persistence.get("volume", s.volume_id);
  const inventory = supportsInventory(driver) ? driver : undefined;
  const from = `${s.status} (${s.intent.op} interrupted)`;
  try {
    if (s.status === "creating") {
      const presence = inventory && vol ? await inventory.inspectSnapshot(s, vol) : "incomplete";
      if (presence === "present") {
        await b.save("snapshot", { ...s, status: "available", intent: null }, s);
        act("snapshot", s.id, `${from} → available`);
        return;
      }
      if (vol) await driver.deleteSnapshot(s, vol);
      await b.save("snapshot", { ...s, status: "error", intent: null, status_reason: `${s.intent.op} was interrupted` }, s);
      act("snapshot", s.id, `${from} → error, removed from the backend`);
    } else if (s.status === "deleting") {
      if (vol) await driver.deleteSnapshot(s, vol);
      await b.save("snapshot", { ...s, status: "deleted", intent: null }, s);
      act("snapshot", s.id, `${from} → deleted`);
    } else {
      await b.save("snapshot", { ...s, intent: null }, s);
      act("snapshot", s.id, `${from}: intent cleared`);
    }
  } catch (e) {
    const status = s.status === "deleting" ? "error_deleting" : "error";
    await b.save("snapshot", { ...s, status, intent: null, status_reason: reasonOf(e) }, s);
    act("snapshot", s.id, `${from} → ${status}: ${reasonOf(e)}`);
  }
}

async function settleConnection(b: Backend, stale: ConnectionRecord, act: Act): Promise<void> {
  const { driver, persistence, host } = b.internals;
  const c = await persistence.get("connection", stale.id);
  if (!c || !c.intent) return;
  const vol = await persistence.get("volume", c.volume_id);
  const from = `${c.status} (${c.intent.op} interrupted)`;
  // An attach that completed on the host but was not recorded cannot be undone by us: the connector
  // re-checks in detach. Connect/disconnect halves are undone so the volume is free again.
  if (c.attach_info && c.conn_info && c.node_id === host.nodeId && (c.status === "detaching" || c.status === "attaching")) {
    try {
      await host.connectorFor(c.conn_info.driver_volume_type).disconnectVolume(c.conn_info, c.attach_info, { force: true });
    } catch (e) {
      act("connection", c.id, `${from}: detach failed: ${reasonOf(e)}`);
    }
  }
  if (vol) {
    await driver.terminateConnection(vol, c.connector).catch(() => undefined);
    const others = (await persistence.find("connection", { volume_id: vol.id })).filter((x) => x.id !== c.id);
    if (others.length === 0) {
      await driver.removeExport(vol).catch(() => undefined);
      const fresh = await persistence.get("volume", vol.id);
      if (fresh && fresh.status === "in-use" && !fresh.intent) await b.save("volume", { ...fresh, status: "available" }, fresh);
    }
  }
  await persistence.delete("connection", c.id);
  act("connection", c.id, `${from} → removed`);
}
