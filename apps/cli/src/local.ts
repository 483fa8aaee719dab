import {
  connectionView,
  isStorageError,
  redact,
  snapshotView,
  volumeView,
  type Backend,
  type BackendStats,
  type Cinderts,
  type ConnectionRecord,
  type OperationOptions,
} from "@cinderts/core";
import type { CommandContext } from "./commands.js";
import { listDrivers } from "./drivers.js";
import { progressBar } from "./progress.js";
import { defaultBackendName, type CreateVolumeArgs, type Service } from "./service.js";

export const connView = (c: ConnectionRecord, secrets: boolean) => connectionView(c, { redact: secrets ? (x) => x : (x) => redact(x) });

function pickBackend(ct: Cinderts, name: string | undefined): Backend {
  return ct.backend(name ?? defaultBackendName([...ct.backends.keys()]));
}

/** Driver setup runs before the first change, so a misconfigured backend fails before a record is written. */
async function ready(ct: Cinderts, b: Backend): Promise<Backend> {
  await ct.ensureSetup(b);
  return b;
}

/**
 * Progress for a copy: a bar on a terminal, nothing otherwise. CINDERTS_TEST_STALL_COPY=1 freezes the process
 * at the first progress report (test hook: lets the crash test SIGKILL a clone reliably mid-copy).
 */
function copyProgress(ctx: CommandContext, label: string): { opts: OperationOptions; finish(): void } {
  const stall = ctx.io.env.CINDERTS_TEST_STALL_COPY === "1";
  const bar = ctx.io.interactive && !ctx.out.flags.json && !ctx.out.flags.quiet ? progressBar(ctx.io.stderr, label, ctx.io.columns) : undefined;
  if (!bar && !stall) return { opts: { signal: ctx.signal }, finish() {} };
  let stalled = false;
  return {
    opts: {
      signal: ctx.signal,
      progress: (done, total) => {
        bar?.update(done, total);
        if (stall && !stalled) {
          stalled = true;
          ctx.io.stderr(`cinderts-test: copy stalled at ${done}/${total}\n`);
          // Block the event loop (and so the copy) until the test kills us.
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
        }
      },
    },
    finish: () => bar?.finish(),
  };
}

/**
 * The library in this process. Listing and showing read only the records (ctx.records(): the persistence
 * plugin alone) — most of a cold start is loading drivers, which a listing does not need.
 */
export class LocalService implements Service {
  readonly mode = "in-process";

  constructor(private readonly ctx: CommandContext) {}

  private open() {
    return this.ctx.open();
  }
  private records() {
    return this.ctx.records();
  }

  async backends() {
    const ct = await this.open();
    return [...ct.backends.values()].map((b) => b.describe());
  }

  async stats(name: string | undefined, opts: { refresh: boolean }) {
    const ct = await this.open();
    if (name !== undefined) return [await ct.backend(name).stats(opts)];
    const all: BackendStats[] = [];
    for (const b of ct.backends.values()) all.push(await b.stats(opts));
    return all;
  }

  async drivers() {
    return listDrivers(await this.ctx.manifest(), this.ctx.cliUrl);
  }

  async createVolume(args: CreateVolumeArgs) {
    const { size, backend: name, ...input } = args;
    const ct = await this.open();
    let backend: Backend;
    let sourceSize: number | undefined;
    if (input.snapshot_id) {
      const snap = await ct.getSnapshot(input.snapshot_id);
      backend = pickBackend(ct, name ?? snap.backend);
      sourceSize = snap.volume_size;
    } else if (input.source_volume_id) {
      const src = await ct.getVolume(input.source_volume_id);
      backend = pickBackend(ct, name ?? src.backend);
      sourceSize = src.size;
    } else {
      backend = pickBackend(ct, name);
    }
    await ready(ct, backend);
    const copying = Boolean(input.snapshot_id || input.source_volume_id);
    const progress = copying ? copyProgress(this.ctx, input.snapshot_id ? "restoring" : "cloning") : undefined;
    try {
      return volumeView(await backend.createVolume({ ...input, size: size ?? sourceSize! }, progress?.opts ?? { signal: this.ctx.signal }));
    } finally {
      progress?.finish();
    }
  }

  async listVolumes(opts: { backend?: string; all: boolean }) {
    const r = await this.records();
    r.checkBackend(opts.backend);
    const all = await r.persistence.find("volume", opts.backend ? { backend: opts.backend } : {});
    return all.filter((v) => opts.all || v.status !== "deleted").map(volumeView);
  }

  async getVolume(id: string) {
    return volumeView(await (await this.records()).get("volume", id));
  }

  async extendVolume(id: string, size: number) {
    const ct = await this.open();
    const b = await ready(ct, await ct.backendForVolume(id));
    return volumeView(await b.extendVolume({ id, size }));
  }

  async deleteVolume(id: string, opts: { force: boolean }) {
    const ct = await this.open();
    const b = await ct.backendForVolume(id);
    if ((await b.getVolume(id)).status !== "deleted") await ready(ct, b);
    await b.deleteVolume({ id, force: opts.force });
    return volumeView(await b.getVolume(id));
  }

  async attachVolume(id: string) {
    const ct = await this.open();
    const b = await ready(ct, await ct.backendForVolume(id));
    return connView(await b.attach(id, { signal: this.ctx.signal }), false);
  }

  async detachVolume(id: string, opts: { force: boolean }) {
    const ct = await this.open();
    const b = await ready(ct, await ct.backendForVolume(id));
    await b.detachVolume(id, opts);
    return volumeView(await b.getVolume(id));
  }

  async connect(id: string, connector: unknown, opts: { secrets: boolean }) {
    const ct = await this.open();
    const b = await ready(ct, await ct.backendForVolume(id));
    return connView(await b.connect({ volume_id: id, connector: connector as never }), opts.secrets);
  }

  async createSnapshot(input: { volume_id: string; name?: string; metadata?: Record<string, string> }) {
    const ct = await this.open();
    const b = await ready(ct, await ct.backendForVolume(input.volume_id));
    return snapshotView(await b.createSnapshot(input));
  }

  async listSnapshots(opts: { volume_id?: string; all: boolean }) {
    const r = await this.records();
    const all = await r.persistence.find("snapshot", opts.volume_id ? { volume_id: opts.volume_id } : {});
    return all.filter((s) => opts.all || s.status !== "deleted").map(snapshotView);
  }

  async getSnapshot(id: string) {
    return snapshotView(await (await this.records()).get("snapshot", id));
  }

  async deleteSnapshot(id: string) {
    const ct = await this.open();
    const b = await ct.backendForSnapshot(id);
    if ((await b.getSnapshot(id)).status !== "deleted") await ready(ct, b);
    await b.deleteSnapshot(id);
    return snapshotView(await b.getSnapshot(id));
  }

  async listConnections(opts: { volume_id?: string; secrets: boolean }) {
    const r = await this.records();
    return (await r.persistence.find("connection", opts.volume_id ? { volume_id: opts.volume_id } : {})).map((c) => connView(c, opts.secrets));
  }

  async getConnection(id: string, opts: { secrets: boolean }) {
    return connView(await (await this.records()).get("connection", id), opts.secrets);
  }

  async disconnect(id: string, opts: { force: boolean }) {
    const ct = await this.open();
    let b: Backend | undefined;
    try {
      b = await ct.backendForConnection(id);
    } catch (e) {
      // Connection records go away on disconnect: a missing one is already disconnected.
      if (!(isStorageError(e) && e.code === "NOT_FOUND")) throw e;
    }
    if (b) await (await ready(ct, b)).disconnect(id, opts);
    return b !== undefined;
  }

  async connectorProperties() {
    return (await this.open()).connectorProperties();
  }

  async validateConnector(backend: string | undefined, connector: unknown) {
    const ct = await this.open();
    const b = pickBackend(ct, backend);
    const props = await b.validateConnector(connector);
    return { valid: true as const, backend: b.name, connector: redact(props) };
  }

  async dump(opts: { backend?: string; includeSecrets: boolean }) {
    return (await this.open()).dump(opts);
  }

  async load(json: unknown, opts: { check: boolean }) {
    const { dump, written } = await (await this.open()).load(json, { persist: !opts.check });
    return { volumes: dump.volumes.length, snapshots: dump.snapshots.length, connections: dump.connections.length, written };
  }

  async reconcile(opts: { backend?: string; deleteOrphans: boolean; staleAfterMs?: number }) {
    const ct = await this.open();
    // Reconcile talks to drivers directly: set them up first.
    for (const b of opts.backend ? [ct.backend(opts.backend)] : ct.backends.values()) await ct.ensureSetup(b);
    return ct.reconcile(opts);
  }
}
