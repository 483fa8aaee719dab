import type { z } from "zod";
import { PluginError } from "./errors.js";
import type {
  CommandRunner,
  ConnectorContext,
  DriverContext,
  HostConnector,
  Logger,
  Persistence,
  Target,
  TargetContext,
  VolumeDriver,
} from "./interfaces.js";

/** The plugin API this core speaks. A plugin declares the version it was built for. */
export const PLUGIN_API_VERSION = 1;
/** Oldest plugin API version this core still loads. */
export const MIN_PLUGIN_API_VERSION = 1;

export const PLUGIN_BRAND = Symbol.for("cinderts.plugin");

export type PluginKind = "driver" | "persistence" | "connector" | "runner" | "target";

export interface PluginBase<K extends PluginKind, S extends z.ZodType> {
  readonly [PLUGIN_BRAND]: true;
  readonly kind: K;
  /** Short id, /^[a-z][a-z0-9-]*$/ (e.g. "rbd"). */
  readonly id: string;
  readonly apiVersion: number;
  /** The package's own version (driver_version in stats). */
  readonly version: string;
  readonly description: string;
  /** zod schema of the options; also drives `cinderts driver list` and JSON Schema. */
  readonly configSchema: S;
}

export interface DriverCapabilities {
  clone?: boolean;
  thin?: boolean;
  /** What deleting a snapshot with dependent volumes does. */
  snapshotsWithDependents?: "independent" | "flatten" | "refuse";
  /** Can extend while attached/exported. */
  onlineExtend?: boolean;
  multiattach?: boolean;
  /** driver_volume_type of its connections. */
  protocols?: readonly string[];
}

export interface DriverPlugin<S extends z.ZodType = z.ZodType> extends PluginBase<"driver", S> {
  readonly vendor: string;
  readonly capabilities: DriverCapabilities;
  create(config: z.output<S>, ctx: DriverContext): VolumeDriver;
}

export interface PersistenceContext {
  logger: Logger;
  /** Directory of the manifest, for relative paths. */
  baseDir: string;
}

export interface PersistencePlugin<S extends z.ZodType = z.ZodType> extends PluginBase<"persistence", S> {
  create(config: z.output<S>, ctx: PersistenceContext): Persistence;
}

export interface ConnectorPlugin<S extends z.ZodType = z.ZodType> extends PluginBase<"connector", S> {
  readonly protocols: readonly string[];
  create(config: z.output<S>, ctx: ConnectorContext): HostConnector;
}

export interface RunnerPlugin<S extends z.ZodType = z.ZodType> extends PluginBase<"runner", S> {
  create(config: z.output<S>, ctx: { logger: Logger }): CommandRunner;
}

export interface TargetPlugin<S extends z.ZodType = z.ZodType> extends PluginBase<"target", S> {
  readonly protocol: string;
  create(config: z.output<S>, ctx: TargetContext): Target;
}

export type AnyPlugin = DriverPlugin | PersistencePlugin | ConnectorPlugin | RunnerPlugin | TargetPlugin;
export interface PluginOfKind {
  driver: DriverPlugin;
  persistence: PersistencePlugin;
  connector: ConnectorPlugin;
  runner: RunnerPlugin;
  target: TargetPlugin;
}

type Definition<P> = Omit<P, typeof PLUGIN_BRAND | "kind" | "apiVersion"> & { apiVersion?: number };

const ID = /^[a-z][a-z0-9-]*$/;

function brand<K extends PluginKind, P>(kind: K, def: Definition<P>): P {
  const d = def as unknown as { id: string };
  if (!ID.test(d.id)) throw new PluginError(`plugin id ${JSON.stringify(d.id)} must match ${ID}`);
  return Object.freeze({ apiVersion: PLUGIN_API_VERSION, ...def, kind, [PLUGIN_BRAND]: true }) as P;
}

export const defineDriver = <S extends z.ZodType>(def: Definition<DriverPlugin<S>>): DriverPlugin<S> =>
  brand("driver", def);
export const definePersistence = <S extends z.ZodType>(def: Definition<PersistencePlugin<S>>): PersistencePlugin<S> =>
  brand("persistence", def);
export const defineConnector = <S extends z.ZodType>(def: Definition<ConnectorPlugin<S>>): ConnectorPlugin<S> =>
  brand("connector", def);
export const defineRunner = <S extends z.ZodType>(def: Definition<RunnerPlugin<S>>): RunnerPlugin<S> =>
  brand("runner", def);
export const defineTarget = <S extends z.ZodType>(def: Definition<TargetPlugin<S>>): TargetPlugin<S> =>
  brand("target", def);

/**
 * Checks by shape, never instanceof: a third-party package may bring its own copy of core.
 * Throws a PluginError that says what the module is and what was expected.
 */
export function assertPlugin<K extends PluginKind>(mod: unknown, kind: K, specifier: string): PluginOfKind[K] {
  const candidate = (mod as { default?: unknown } | undefined)?.default ?? mod;
  const p = candidate as Partial<PluginBase<PluginKind, z.ZodType>> & Record<string | symbol, unknown>;
  if (!p || typeof p !== "object" || p[PLUGIN_BRAND] !== true) {
    throw new PluginError(
      `${specifier} is not a cinderts plugin: its default export must be made with define${kind[0]!.toUpperCase()}${kind.slice(1)}() from @cinderts/core`,
      { resource: { kind: "plugin", id: specifier } },
    );
  }
  if (p.kind !== kind) {
    throw new PluginError(`${specifier} is a ${String(p.kind)} plugin, but a ${kind} plugin is expected here`, {
      resource: { kind: "plugin", id: specifier },
    });
  }
  const v = p.apiVersion;
  if (typeof v !== "number" || v < MIN_PLUGIN_API_VERSION || v > PLUGIN_API_VERSION) {
    throw new PluginError(
      `${specifier} needs plugin API version ${String(v)}, but this cinderts supports ${MIN_PLUGIN_API_VERSION}..${PLUGIN_API_VERSION}`,
      { resource: { kind: "plugin", id: specifier } },
    );
  }
  if (typeof (p as { create?: unknown }).create !== "function" || typeof (p.configSchema as { safeParse?: unknown })?.safeParse !== "function") {
    throw new PluginError(`${specifier} lacks create() or a zod configSchema`, { resource: { kind: "plugin", id: specifier } });
  }
  return p as unknown as PluginOfKind[K];
}
