import { mkdirSync } from "node:fs";
import { hostname, networkInterfaces, platform, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Backend, reasonOf, type HostSide } from "./backend.js";
import { ConfigError, InvalidArgumentError, NotFoundError, PluginError, UnsupportedError, isStorageError } from "./errors.js";
import type {
  CommandRunner,
  HostConnector,
  KeyValueStore,
  LockManager,
  Logger,
  Persistence,
  Target,
} from "./interfaces.js";
import { InProcessLockManager } from "./locks.js";
import { createJsonLogger } from "./logger.js";
import { importPlugin, specName, type LoadedManifest, type PluginSpec } from "./manifest.js";
import type { ConnectorPlugin, DriverPlugin, PersistencePlugin } from "./plugin.js";
import type { ConnectionRecord, ConnectorProps, SnapshotRecord, VolumeRecord } from "./records.js";
import { reconcile, type ReconcileOptions, type ReconcileReport } from "./reconcile.js";
import { dumpState, loadState, type LoadOptions, type StateDump } from "./serialization.js";
import { parseConfig } from "./validation.js";

/** Standard connector packages tried when the manifest names none; missing ones are skipped. */
export const DEFAULT_CONNECTORS = ["@cinderts/connector-local", "@cinderts/connector-rbd", "@cinderts/connector-iscsi"];
export const DEFAULT_RUNNER = "@cinderts/runner-local";

export interface OpenOptions {
  logger?: Logger;
  /** Where apps resolve plugins from besides the manifest directory (their own import.meta.url). */
  resolveFrom?: readonly string[];
  /** Skip driver.setup() (listing, dumps) — setup runs on first use instead. */
  lazySetup?: boolean;
}

function scopedKv(p: Persistence, prefix: string): KeyValueStore {
  return {
    get: (k) => p.getKey(prefix + k),
    set: (k, v) => p.setKey(prefix + k, v),
    delete: (k) => p.deleteKey(prefix + k),
    list: async (pre = "") => (await p.listKeys(prefix + pre)).map((k) => k.slice(prefix.length)),
  };
}

function primaryIp(): string | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  }
  return "127.0.0.1";
}

/**
 * The library's entry point: the persistence, the backends and this host's connectors named in a manifest,
 * composed in one process (cinderlib's `setup()` + `Backend()`).
 */
export class Cinderts implements HostSide {
  readonly backends = new Map<string, Backend>();
  readonly connectors: { specifier: string; plugin: ConnectorPlugin; connector: HostConnector }[] = [];
  readonly nodeId: string;
  private readonly runners: CommandRunner[] = [];
  private readonly targets: Target[] = [];

  private constructor(
    readonly persistence: Persistence,
    readonly persistencePlugin: PersistencePlugin,
    readonly locks: LockManager,
    readonly logger: Logger,
    readonly loaded: LoadedManifest,
  ) {
    this.nodeId = loaded.manifest.node_id ?? hostname();
  }

  static async open(loaded: LoadedManifest, opts: OpenOptions = {}): Promise<Cinderts> {
    const { manifest, baseDir, file } = loaded;
    const logger = opts.logger ?? createJsonLogger({ level: manifest.logging?.level ?? "warn" });
    const from = { baseDir, fromUrls: opts.resolveFrom ?? [] };
    const where = (field: string) => (file ? `${file}: ${field}` : field);

    const pPlugin = await importPlugin(manifest.persistence.plugin, "persistence", { ...from, where: where("persistence.plugin") });
    const pConfig = parseConfig(pPlugin.configSchema, manifest.persistence.options, {
      file,
      path: "persistence.options",
      what: `options for ${specName(manifest.persistence.plugin)}`,
    });
    const persistence = pPlugin.create(pConfig, { logger: logger.child({ plugin: pPlugin.id }), baseDir });
    await persistence.init();
    const locks = persistence.locks ?? new InProcessLockManager();
    const ct = new Cinderts(persistence, pPlugin, locks, logger, loaded);
    try {
      // In-memory manifests (tests, embedding) have no directory of their own to put state in.
      const stateRoot = resolve(baseDir, manifest.state_dir ?? (file ? ".cinderts-state" : join(tmpdir(), "cinderts-state")));
      const connectorSpecs = manifest.connectors ?? DEFAULT_CONNECTORS.map((plugin) => ({ plugin, options: {} }));
      let hostRunner: CommandRunner | undefined;
      for (const [i, spec] of connectorSpecs.entries()) {
        let plugin: ConnectorPlugin;
        try {
          plugin = await importPlugin(spec.plugin, "connector", { ...from, where: where(`connectors[${i}].plugin`) });
        } catch (e) {
          // Defaults are best effort: users install only the connectors they need.
          if (!manifest.connectors && isStorageError(e) && /not installed/.test(e.message)) continue;
          throw e;
        }
        const config = parseConfig(plugin.configSchema, spec.options, { file, path: `connectors[${i}].options`, what: `options for ${specName(spec.plugin)}` });
        hostRunner ??= await ct.makeRunner(manifest.runner, from, where);
        const runner = hostRunner;
        const stateDir = join(stateRoot, "connectors", plugin.id);
        mkdirSync(stateDir, { recursive: true });
        const connector = plugin.create(config, {
          logger: logger.child({ connector: plugin.id }),
          runner,
          locks,
          stateDir,
          kv: scopedKv(persistence, `connector:${plugin.id}:`),
          nodeId: ct.nodeId,
          baseDir,
        });
        ct.connectors.push({ specifier: specName(spec.plugin), plugin, connector });
      }

      for (const [i, entry] of manifest.backends.entries()) {
        const dPlugin: DriverPlugin = await importPlugin(entry.driver, "driver", { ...from, where: where(`backends[${i}].driver`) });
        const config = parseConfig(dPlugin.configSchema, entry.options, {
          file,
          path: `backends[${i}].options`,
          what: `options for ${specName(entry.driver)}`,
        });
        const runner = await ct.makeRunner(entry.runner, from, where, `backends[${i}].runner`);
        const stateDir = join(stateRoot, "backends", entry.name);
        mkdirSync(stateDir, { recursive: true });
        const blog = logger.child({ backend: entry.name, driver: dPlugin.id });
        const kv = scopedKv(persistence, `backend:${entry.name}:`);
        let target: Target | undefined;
        if (entry.target) {
          const tPlugin = await importPlugin(entry.target.plugin, "target", { ...from, where: where(`backends[${i}].target.plugin`) });
          const tConfig = parseConfig(tPlugin.configSchema, entry.target.options, {
            file,
            path: `backends[${i}].target.options`,
            what: `options for ${specName(entry.target.plugin)}`,
          });
          target = tPlugin.create(tConfig, {
            logger: blog.child({ target: tPlugin.id }),
            runner,
            locks,
            stateDir,
            kv,
            backendName: entry.name,
            nodeId: ct.nodeId,
            baseDir,
          });
          ct.targets.push(target);
        }
        const driver = dPlugin.create(config, {
          logger: blog,
          runner,
          locks,
          stateDir,
          kv,
          backendName: entry.name,
          target,
          nodeId: ct.nodeId,
          baseDir,
        });
        const backend: Backend = new Backend({
          name: entry.name,
          plugin: dPlugin,
          options: config,
          specifier: specName(entry.driver),
          driver,
          persistence,
          locks,
          logger,
          host: ct,
          ensureReady: (): Promise<void> => ct.ensureSetup(backend),
        });
        ct.backends.set(entry.name, backend);
      }
      if (!opts.lazySetup) await ct.setup();
      return ct;
    } catch (e) {
      await ct.close().catch(() => undefined);
      throw e;
    }
  }

  private async makeRunner(
    spec: { plugin: PluginSpec; options: Record<string, unknown> } | undefined,
    from: { baseDir: string; fromUrls: readonly string[] },
    where: (f: string) => string,
    field = "runner",
  ): Promise<CommandRunner> {
    const specifier = spec?.plugin ?? DEFAULT_RUNNER;
    const plugin = await importPlugin(specifier, "runner", { ...from, where: where(`${field}.plugin`) });
    const config = parseConfig(plugin.configSchema, spec?.options ?? {}, {
      file: this.loaded.file,
      path: `${field}.options`,
      what: `options for ${specName(specifier)}`,
    });
    const runner = plugin.create(config, { logger: this.logger.child({ runner: plugin.id }) });
    this.runners.push(runner);
    return runner;
  }

  private setupDone = new Map<string, Promise<void>>();

  /** driver.setup() for every backend (config and reachability checks; drivers set up their target). */
  async setup(): Promise<void> {
    for (const b of this.backends.values()) await this.ensureSetup(b);
  }

  async ensureSetup(b: Backend): Promise<void> {
    let p = this.setupDone.get(b.name);
    if (!p) {
      p = b.driver.setup();
      this.setupDone.set(b.name, p);
      p.catch(() => this.setupDone.delete(b.name));
    }
    await p;
  }

  backend(name: string): Backend {
    const b = this.backends.get(name);
    if (!b) {
      throw new NotFoundError("backend", name, {
        data: { known: [...this.backends.keys()] },
      });
    }
    return b;
  }

  /** The backend a record belongs to; a record of a backend not in this manifest is a clear error. */
  private backendOf(rec: { backend: string; id: string }, kind: "volume" | "snapshot" | "connection"): Backend {
    const b = this.backends.get(rec.backend);
    if (!b) throw new ConfigError(`${kind} ${rec.id} belongs to backend ${rec.backend}, which this manifest does not configure`);
    return b;
  }

  async backendForVolume(id: string): Promise<Backend> {
    const rec = await this.persistence.get("volume", id);
    if (!rec) throw new NotFoundError("volume", id);
    return this.backendOf(rec, "volume");
  }
  async backendForSnapshot(id: string): Promise<Backend> {
    const rec = await this.persistence.get("snapshot", id);
    if (!rec) throw new NotFoundError("snapshot", id);
    return this.backendOf(rec, "snapshot");
  }
  async backendForConnection(id: string): Promise<Backend> {
    const rec = await this.persistence.get("connection", id);
    if (!rec) throw new NotFoundError("connection", id);
    return this.backendOf(rec, "connection");
  }

  async getVolume(id: string): Promise<VolumeRecord> {
    return (await this.backendForVolume(id)).getVolume(id);
  }
  async getSnapshot(id: string): Promise<SnapshotRecord> {
    return (await this.backendForSnapshot(id)).getSnapshot(id);
  }
  async getConnection(id: string): Promise<ConnectionRecord> {
    return (await this.backendForConnection(id)).getConnection(id);
  }

  async listVolumes(opts: { backend?: string; includeDeleted?: boolean } = {}): Promise<VolumeRecord[]> {
    if (opts.backend) return this.backend(opts.backend).listVolumes(opts);
    const all = await this.persistence.find("volume");
    return opts.includeDeleted ? all : all.filter((v) => v.status !== "deleted");
  }
  async listSnapshots(opts: { volume_id?: string; includeDeleted?: boolean } = {}): Promise<SnapshotRecord[]> {
    const all = await this.persistence.find("snapshot", opts.volume_id ? { volume_id: opts.volume_id } : {});
    return opts.includeDeleted ? all : all.filter((s) => s.status !== "deleted");
  }
  async listConnections(opts: { volume_id?: string } = {}): Promise<ConnectionRecord[]> {
    return this.persistence.find("connection", opts.volume_id ? { volume_id: opts.volume_id } : {});
  }

  // ───────────── host side ─────────────

  connectorFor(protocol: string): HostConnector {
    const c = this.connectors.find((x) => x.plugin.protocols.includes(protocol));
    if (!c) {
      throw new UnsupportedError(
        `no host connector for ${protocol} connections is installed; add one (e.g. @cinderts/connector-${protocol}) to the manifest's connectors`,
      );
    }
    return c.connector;
  }

  /** This host's connector properties (os-brick get_connector_properties), merged from every connector. */
  async connectorProperties(opts: { multipath?: boolean } = {}): Promise<ConnectorProps> {
    let props: ConnectorProps = {
      host: this.nodeId,
      ip: primaryIp(),
      platform: process.arch === "x64" ? "x86_64" : process.arch,
      os_type: platform() === "linux" ? "linux2" : platform(),
      multipath: opts.multipath ?? false,
      do_local_attach: false,
    };
    for (const c of this.connectors) props = { ...props, ...(await c.connector.getConnectorProperties()) };
    return props;
  }

  // ───────────── state ─────────────

  async dump(opts: { backend?: string; includeSecrets?: boolean } = {}): Promise<StateDump> {
    if (opts.backend) this.backend(opts.backend);
    return dumpState(this, opts);
  }

  /** Load a dump; writes to persistence only when opts.persist is set (otherwise it just parses and checks). */
  async load(dump: unknown, opts: LoadOptions = {}) {
    return loadState(this, dump, opts);
  }

  async reconcile(opts: ReconcileOptions = {}): Promise<ReconcileReport> {
    return reconcile(this, opts);
  }

  async close(): Promise<void> {
    const errors: unknown[] = [];
    for (const b of this.backends.values()) await b.close().catch((e) => errors.push(e));
    for (const t of this.targets) await t.close?.().catch((e: unknown) => errors.push(e));
    for (const c of this.connectors) await c.connector.close?.().catch((e: unknown) => errors.push(e));
    for (const r of this.runners) await r.close?.().catch((e: unknown) => errors.push(e));
    await this.locks.close?.().catch((e: unknown) => errors.push(e));
    await this.persistence.close().catch((e) => errors.push(e));
    if (errors.length) this.logger.warn("errors while closing", { errors: errors.map(reasonOf) });
  }
}

export { InvalidArgumentError, PluginError };
