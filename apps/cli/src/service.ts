import {
  InvalidArgumentError,
  type BackendStats,
  type ConnectionView,
  type ConnectorProps,
  type ReconcileReport,
  type SnapshotView,
  type VolumeView,
} from "@cinderts/core";
import type { Parsed } from "./args.js";
import type { DriverInfo } from "./drivers.js";

/**
 * What the commands ask of cinderts, whoever answers: the library in this process (local.ts) or a cinderts
 * server (remote.ts, with --server). Commands parse and validate their input, call one of these, and print the
 * result, so that both modes print the same thing and fail with the same codes.
 */
export interface Service {
  readonly mode: "in-process" | "server";
  backends(): Promise<BackendDescription[]>;
  /** One backend's stats, or every backend's when name is undefined. */
  stats(name: string | undefined, opts: { refresh: boolean }): Promise<BackendStats[]>;
  drivers(): Promise<DriverInfo[]>;

  createVolume(input: CreateVolumeArgs): Promise<VolumeView>;
  listVolumes(opts: { backend?: string; all: boolean }): Promise<VolumeView[]>;
  getVolume(id: string): Promise<VolumeView>;
  extendVolume(id: string, size: number): Promise<VolumeView>;
  /** Deletes (again: succeeds) and returns the volume as it is afterwards. */
  deleteVolume(id: string, opts: { force: boolean }): Promise<VolumeView>;
  /** Attach on THIS host: export for this host's connector properties, then run this host's connector. */
  attachVolume(id: string): Promise<ConnectionView>;
  /** Undo attachVolume on THIS host (detach, then disconnect); returns the volume afterwards. */
  detachVolume(id: string, opts: { force: boolean }): Promise<VolumeView>;
  connect(id: string, connector: unknown, opts: { secrets: boolean }): Promise<ConnectionView>;

  createSnapshot(input: { volume_id: string; name?: string; metadata?: Record<string, string> }): Promise<SnapshotView>;
  listSnapshots(opts: { volume_id?: string; all: boolean }): Promise<SnapshotView[]>;
  getSnapshot(id: string): Promise<SnapshotView>;
  deleteSnapshot(id: string): Promise<SnapshotView>;

  listConnections(opts: { volume_id?: string; secrets: boolean }): Promise<ConnectionView[]>;
  getConnection(id: string, opts: { secrets: boolean }): Promise<ConnectionView>;
  /** false when there was no such connection (already disconnected). */
  disconnect(id: string, opts: { force: boolean }): Promise<boolean>;

  /** THIS host's connector properties: always computed here, also in server mode. */
  connectorProperties(): Promise<ConnectorProps>;
  validateConnector(backend: string | undefined, connector: unknown): Promise<{ valid: true; backend: string; connector: unknown }>;

  dump(opts: { backend?: string; includeSecrets: boolean }): Promise<unknown>;
  load(dump: unknown, opts: { check: boolean }): Promise<LoadSummary>;
  reconcile(opts: { backend?: string; deleteOrphans: boolean; staleAfterMs?: number }): Promise<ReconcileReport>;
}

export interface BackendDescription {
  name: string;
  [key: string]: unknown;
}

export interface CreateVolumeArgs {
  size: number | undefined;
  backend?: string;
  name?: string;
  snapshot_id?: string;
  source_volume_id?: string;
  metadata?: Record<string, string>;
}

export interface LoadSummary {
  volumes: number;
  snapshots: number;
  connections: number;
  written: { volumes: number; snapshots: number; connections: number };
}

/**
 * The backend a new object goes to when none is named: the only one, or the one called "default".
 * Several backends and no choice is a question for the user, not a guess. Same rule in both modes.
 */
export function defaultBackendName(names: readonly string[]): string {
  if (names.length === 1) return names[0]!;
  if (names.includes("default")) return "default";
  throw new InvalidArgumentError(`this manifest has several backends (${names.join(", ")}): choose one with --backend`, {
    issues: [{ path: "backend", message: "required when the manifest has several backends" }],
  });
}

export interface ServerTarget {
  url: string;
  token: string;
}

/**
 * --server URL (else $CINDERTS_SERVER) and the token (--token, else $CINDERTS_TOKEN). undefined: run in-process.
 * Checked before any request, so a bad URL or a missing token is bad input (exit 2), not a network error.
 */
export function serverTarget(values: Parsed["values"], env: NodeJS.ProcessEnv): ServerTarget | undefined {
  const flag = typeof values.server === "string" ? values.server : undefined;
  const url = flag ?? (env.CINDERTS_SERVER || undefined);
  if (url === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InvalidArgumentError(`--server ${JSON.stringify(url)}: not a URL (e.g. http://127.0.0.1:8776)`, { issues: [{ path: "server", message: "must be an http(s) URL" }] });
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new InvalidArgumentError(`--server ${JSON.stringify(url)}: must be an http:// or https:// URL`, { issues: [{ path: "server", message: "must be an http(s) URL" }] });
  }
  const token = (typeof values.token === "string" ? values.token : undefined) ?? (env.CINDERTS_TOKEN || undefined);
  if (!token) {
    throw new InvalidArgumentError("no token: set CINDERTS_TOKEN (or give --token, which other users can see in ps)", {
      issues: [{ path: "CINDERTS_TOKEN", message: "required with --server" }],
    });
  }
  return { url, token };
}
