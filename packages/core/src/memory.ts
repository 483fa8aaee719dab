import { ConflictError } from "./errors.js";
import type { Persistence, PutOptions, RecordFilter } from "./interfaces.js";
import type { RecordKind, RecordOf } from "./records.js";

/** Does a record match a filter? Shared by every persistence that filters in memory. */
export function matchesFilter(rec: Record<string, unknown>, f: RecordFilter = {}): boolean {
  if (f.backend !== undefined && rec.backend !== f.backend) return false;
  if (f.volume_id !== undefined && rec.volume_id !== f.volume_id) return false;
  if (f.name !== undefined && rec.name !== f.name) return false;
  if (f.node_id !== undefined && rec.node_id !== f.node_id) return false;
  if (f.ids !== undefined && !f.ids.includes(rec.id as string)) return false;
  if (f.status !== undefined) {
    const list = typeof f.status === "string" ? [f.status] : f.status;
    if (!list.includes(rec.status as string)) return false;
  }
  return true;
}

/** Checks PutOptions.expectVersion against the stored version (0 = absent) and returns the next version. */
export function nextVersion(kind: string, id: string, stored: number | undefined, opts: PutOptions = {}): number {
  const current = stored ?? 0;
  if (opts.expectVersion !== undefined && opts.expectVersion !== current) {
    throw new ConflictError(
      current === 0
        ? `${kind} ${id} does not exist (expected version ${opts.expectVersion})`
        : `${kind} ${id} changed concurrently (version ${current}, expected ${opts.expectVersion})`,
      { resource: { kind: kind as "volume", id } },
    );
  }
  return current + 1;
}

/**
 * In-memory persistence: for tests and for embedding where state lives elsewhere. Records are deep-copied
 * on the way in and out so callers can never mutate stored state by accident.
 */
export class MemoryPersistence implements Persistence {
  private readonly tables: { [K in RecordKind]: Map<string, RecordOf[K]> } = {
    volume: new Map(),
    snapshot: new Map(),
    connection: new Map(),
  };
  private readonly kv = new Map<string, string>();

  async init(): Promise<void> {}
  async close(): Promise<void> {}

  async get<K extends RecordKind>(kind: K, id: string): Promise<RecordOf[K] | undefined> {
    const r = this.tables[kind].get(id);
    return r ? structuredClone(r) : undefined;
  }

  async find<K extends RecordKind>(kind: K, filter?: RecordFilter): Promise<RecordOf[K][]> {
    return [...this.tables[kind].values()]
      .filter((r) => matchesFilter(r as unknown as Record<string, unknown>, filter))
      .sort((a, b) => (a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : a.id < b.id ? -1 : 1))
      .map((r) => structuredClone(r));
  }

  async put<K extends RecordKind>(kind: K, record: RecordOf[K], opts?: PutOptions): Promise<RecordOf[K]> {
    const table = this.tables[kind] as Map<string, RecordOf[K]>;
    const version = nextVersion(kind, record.id, table.get(record.id)?.version, opts);
    const stored = structuredClone({ ...record, version });
    table.set(record.id, stored);
    return structuredClone(stored);
  }

  async delete(kind: RecordKind, id: string): Promise<void> {
    this.tables[kind].delete(id);
  }

  async getKey(key: string): Promise<unknown> {
    const v = this.kv.get(key);
    return v === undefined ? undefined : JSON.parse(v);
  }
  async setKey(key: string, value: unknown): Promise<void> {
    this.kv.set(key, JSON.stringify(value));
  }
  async deleteKey(key: string): Promise<void> {
    this.kv.delete(key);
  }
  async listKeys(prefix = ""): Promise<string[]> {
    return [...this.kv.keys()].filter((k) => k.startsWith(prefix)).sort();
  }
}
