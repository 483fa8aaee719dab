import { randomUUID } from "node:crypto";
import { parseConfig, type SnapshotRecord, type VolumeRecord } from "@cinderts/core";
import { testbedEnv } from "@cinderts/testkit";
import { RbdConfig, RbdDriver, makeRbdClient, type RbdConfigInput } from "../src/index.js";
import { createLocalRunner } from "@cinderts/runner-local";
import { driverContext } from "./helpers.js";

/** The Ceph testbed (tooling/testbeds/ceph/start.sh): undefined locally when it is not running, an error in CI. */
export const ceph = testbedEnv("ceph", ["CEPH_CONF", "CINDERTS_RBD_POOL", "CINDERTS_CEPH_KEYRING"]);

export const GiB = 1024 ** 3;

/**
 * Transports to test: CINDERTS_RBD_TRANSPORTS (e.g. "cli,native"), else cli plus native when the addon is built.
 * In CI native is always included, so an addon that failed to build fails the run instead of vanishing.
 */
export async function transportsUnderTest(): Promise<("cli" | "native")[]> {
  const env = process.env.CINDERTS_RBD_TRANSPORTS;
  if (env) return env.split(",").map((t) => t.trim()) as ("cli" | "native")[];
  if (process.env.CI) return ["cli", "native"];
  try {
    const m = (await import("@cinderts/driver-rbd-native")) as { nativeUnavailableReason(): string | undefined };
    return m.nativeUnavailableReason() ? ["cli"] : ["cli", "native"];
  } catch {
    return ["cli"];
  }
}

export function newDriver(opts: Partial<RbdConfigInput> = {}) {
  const runner = createLocalRunner();
  const cfg = parseConfig(RbdConfig, { pool: ceph!.CINDERTS_RBD_POOL, conf: ceph!.CEPH_CONF, user: "admin", ...opts }, { what: "rbd options" });
  const driver = new RbdDriver(cfg, driverContext(runner), makeRbdClient);
  return { driver, runner };
}

/** Run the bare rbd CLI against the testbed (for checks done behind the driver's back). */
export async function rbd(...args: string[]): Promise<string> {
  const r = await createLocalRunner().run(["rbd", "--conf", ceph!.CEPH_CONF, ...args]);
  return r.stdout;
}

export async function rbdJson<T>(...args: string[]): Promise<T> {
  return JSON.parse(await rbd(...args, "--format", "json")) as T;
}

export async function imageExists(image: string): Promise<boolean> {
  const names = await rbdJson<string[]>("ls", "--pool", ceph!.CINDERTS_RBD_POOL);
  return names.includes(image);
}

const now = () => new Date().toISOString();

export function volumeRecord(size = 1, extra: Partial<VolumeRecord> = {}): VolumeRecord {
  return {
    id: randomUUID(),
    version: 1,
    backend: "ceph",
    name: null,
    created_at: now(),
    updated_at: now(),
    metadata: {},
    intent: null,
    status_reason: null,
    provider_location: null,
    provider_id: null,
    provider_auth: null,
    provider_geometry: null,
    size,
    status: "creating",
    source_volume_id: null,
    snapshot_id: null,
    ...extra,
  };
}

export function snapshotRecord(volume: VolumeRecord): SnapshotRecord {
  return {
    id: randomUUID(),
    version: 1,
    backend: "ceph",
    name: null,
    created_at: now(),
    updated_at: now(),
    metadata: {},
    intent: null,
    status_reason: null,
    provider_location: null,
    provider_id: null,
    provider_auth: null,
    provider_geometry: null,
    volume_id: volume.id,
    volume_size: volume.size,
    status: "creating",
  };
}
