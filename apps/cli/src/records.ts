import {
  ConfigError,
  NotFoundError,
  importPlugin,
  parseConfig,
  type LoadedManifest,
  type Logger,
  type Persistence,
  type RecordKind,
  type RecordOf,
} from "@cinderts/core";

/**
 * Read-only access to the records, for list and show: only the persistence plugin is loaded. Opening the
 * whole library would also import every driver, connector and command runner of the manifest, which is
 * most of a cold start and none of what a listing needs.
 */
export class Records {
  private constructor(
    readonly persistence: Persistence,
    private readonly loaded: LoadedManifest,
  ) {}

  static async open(loaded: LoadedManifest, opts: { cliUrl: string; logger: Logger }): Promise<Records> {
    const { manifest, file, baseDir } = loaded;
    const where = (f: string) => (file ? `${file}: ${f}` : f);
    const plugin = await importPlugin(manifest.persistence.plugin, "persistence", { baseDir, fromUrls: [opts.cliUrl], where: where("persistence.plugin") });
    const config = parseConfig(plugin.configSchema, manifest.persistence.options, {
      file,
      path: "persistence.options",
      what: `options for ${typeof manifest.persistence.plugin === "string" ? manifest.persistence.plugin : "the persistence plugin"}`,
    });
    const persistence = plugin.create(config, { logger: opts.logger, baseDir });
    await persistence.init();
    return new Records(persistence, loaded);
  }

  private hasBackend(name: string): boolean {
    return this.loaded.manifest.backends.some((b) => b.name === name);
  }

  /** As Cinderts.backend(name) would: an unknown backend is NOT_FOUND. */
  checkBackend(name: string | undefined): void {
    if (name !== undefined && !this.hasBackend(name)) {
      throw new NotFoundError("backend", name, { data: { known: this.loaded.manifest.backends.map((b) => b.name) } });
    }
  }

  /** As Cinderts.getVolume/getSnapshot/getConnection: NOT_FOUND, or a record of a backend this manifest lacks. */
  async get<K extends RecordKind>(kind: K, id: string): Promise<RecordOf[K]> {
    const rec = await this.persistence.get(kind, id);
    if (!rec) throw new NotFoundError(kind, id);
    if (!this.hasBackend(rec.backend)) {
      throw new ConfigError(`${kind} ${id} belongs to backend ${rec.backend}, which this manifest does not configure`);
    }
    return rec;
  }

  async close(): Promise<void> {
    await this.persistence.close();
  }
}
