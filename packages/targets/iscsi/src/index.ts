/**
 * Generic iSCSI target logic shared by the LIO and tgt helpers — what Cinder keeps in
 * `cinder/volume/targets/iscsi.py`: target names, CHAP credentials, provider_location/provider_auth
 * and the connection info handed to host connectors.
 */
import { randomInt } from "node:crypto";
import { isIP } from "node:net";
import { z } from "@cinderts/core";
import {
  BackendError,
  ConfigError,
  InvalidArgumentError,
  type ConnectionInfo,
  type ConnectorProps,
  type VolumeRecord,
} from "@cinderts/core";

// ───────────────────────────── names ─────────────────────────────

/** RFC 3720 iqn. names as LIO and tgt accept them (lower case; we never need the eui./naa. forms). */
export const IQN = /^iqn\.\d{4}-\d{2}\.[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(?::[a-z0-9.:_-]*)?$/;
/** Initiator names come from other hosts: accept iqn., eui. and naa. forms, nothing that could act as an option or path. */
const INITIATOR = /^(?:iqn\.\d{4}-\d{2}\.[A-Za-z0-9.-]+(?::[A-Za-z0-9.:_-]+)?|eui\.[0-9A-Fa-f]{16}|naa\.[0-9A-Fa-f]{16,32})$/;

export const iqnPrefixSchema = z
  .string()
  .regex(/^iqn\.\d{4}-\d{2}\.[a-z0-9.-]+:(?:[a-z0-9.:_-]*)$/, "must look like iqn.YYYY-MM.reverse.domain: (lower case, ends after the ':' or a sub-name)")
  .describe("IQN prefix; the target IQN is prefix + volume name (volume-<id>)");

export function isIqn(name: string): boolean {
  return IQN.test(name) && name.length <= 223;
}

export function isInitiatorName(name: string): boolean {
  return INITIATOR.test(name) && name.length <= 223;
}

/** Cinder's volume name template (`volume-%s`), used for LV names, target IQNs and tgt file names. */
export function volumeName(volume: Pick<VolumeRecord, "id">): string {
  const id = volume.id.toLowerCase();
  if (!/^[a-z0-9][a-z0-9._-]{0,127}$/.test(id)) {
    throw new InvalidArgumentError(`volume id ${JSON.stringify(volume.id)} cannot be used in a target name`, {
      resource: { kind: "volume", id: volume.id },
    });
  }
  return `volume-${id}`;
}

export function targetIqn(prefix: string, volume: Pick<VolumeRecord, "id">): string {
  const iqn = prefix + volumeName(volume);
  if (!isIqn(iqn)) throw new InvalidArgumentError(`${iqn} is not a valid iSCSI name`);
  return iqn;
}

// ───────────────────────────── portals ─────────────────────────────

export interface Portal {
  ip: string;
  port: number;
}

/** "ip:port" with IPv6 in brackets, as Cinder and os-brick write portals. */
export function formatPortal(p: Portal): string {
  return isIP(p.ip) === 6 ? `[${p.ip}]:${p.port}` : `${p.ip}:${p.port}`;
}

export function parsePortal(s: string): Portal {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([0-9.]+)):(\d{1,5})$/.exec(s.trim());
  const ip = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (!m || !ip || !isIP(ip) || port < 1 || port > 65535) throw new InvalidArgumentError(`bad iSCSI portal ${JSON.stringify(s)}`);
  return { ip, port };
}

const ipSchema = z.string().refine((s) => isIP(s) !== 0, "must be an IPv4 or IPv6 address");

/** Options every iSCSI target helper takes (Cinder's target_* options). */
export const IscsiTargetOptions = {
  targetIp: ipSchema.describe("Portal address advertised to initiators (Cinder target_ip_address)"),
  targetPort: z.number().int().min(1).max(65535).default(3260).describe("Portal TCP port (Cinder target_port)"),
  secondaryIps: z.array(ipSchema).default([]).describe("Extra portal addresses for multipath (Cinder target_secondary_ip_addresses)"),
  secondaryPortals: z
    .array(z.string().refine((s) => tryParsePortal(s) !== undefined, "must be ip:port (IPv6 in brackets)"))
    .default([])
    .describe("Extra portals as ip:port, each with its own port (e.g. a second port on the same address); advertised after secondaryIps"),
  iqnPrefix: iqnPrefixSchema.default("iqn.2010-10.org.openstack:"),
  chap: z.boolean().default(true).describe("Require one-way CHAP with per-volume generated credentials"),
  root: z.boolean().default(true).describe("Run target commands through the runner's root helper"),
};

function tryParsePortal(s: string): Portal | undefined {
  try {
    return parsePortal(s);
  } catch {
    return undefined;
  }
}

/**
 * Every portal the target advertises, in order: targetIp:targetPort, each secondary address on targetPort, then
 * secondaryPortals. A portal named twice is a configuration mistake (an initiator would log in twice to one path).
 */
export function portalsOf(o: { targetIp: string; targetPort: number; secondaryIps: readonly string[]; secondaryPortals?: readonly string[] }): Portal[] {
  const portals = [
    ...[o.targetIp, ...o.secondaryIps].map((ip) => ({ ip, port: o.targetPort })),
    ...(o.secondaryPortals ?? []).map(parsePortal),
  ];
  const seen = new Set<string>();
  for (const p of portals) {
    const key = formatPortal(p).toLowerCase();
    if (seen.has(key)) throw new ConfigError(`iSCSI portal ${formatPortal(p)} is configured twice (targetIp/secondaryIps/secondaryPortals)`);
    seen.add(key);
  }
  return portals;
}

// ───────────────────────────── CHAP ─────────────────────────────

export interface ChapCredentials {
  user: string;
  password: string;
}

// Cinder's alphabet: no 0/O/1/l/I, so credentials survive being read aloud or retyped.
const CHAP_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

function randomString(length: number): string {
  let s = "";
  for (let i = 0; i < length; i++) s += CHAP_ALPHABET[randomInt(CHAP_ALPHABET.length)];
  return s;
}

/** 20-character user, 16-character secret (Cinder's lengths; RFC 3720 wants at least 12 bytes of secret for tgt/LIO). */
export function generateChap(): ChapCredentials {
  return { user: randomString(20), password: randomString(16) };
}

export function formatProviderAuth(c: ChapCredentials): string {
  return `CHAP ${c.user} ${c.password}`;
}

/** "CHAP user secret" → credentials; anything else (null, other methods) → undefined. */
export function parseProviderAuth(auth: string | null | undefined): ChapCredentials | undefined {
  if (!auth) return undefined;
  const [method, user, password, ...rest] = auth.trim().split(/\s+/);
  if (method !== "CHAP" || !user || !password || rest.length) return undefined;
  if (!/^[A-Za-z0-9._:-]{1,255}$/.test(user) || !/^[\x21-\x7e]{1,255}$/.test(password)) {
    throw new BackendError("stored provider_auth holds unusable CHAP credentials");
  }
  return { user, password };
}

// ───────────────────────────── provider_location ─────────────────────────────

export interface ProviderLocation {
  portals: Portal[];
  /** tgt: numeric tid; LIO: the IQN itself (Cinder's formats). */
  tid: string;
  iqn: string;
  lun: number;
}

/** `"<ip1>:<port>[;<ip2>:<port>...],<tid> <iqn> <lun>"` */
export function formatProviderLocation(l: ProviderLocation): string {
  return `${l.portals.map(formatPortal).join(";")},${l.tid} ${l.iqn} ${l.lun}`;
}

export function parseProviderLocation(s: string): ProviderLocation {
  const m = /^([^,\s]+),(\S+) (\S+) (\d+)$/.exec(s.trim());
  if (!m) throw new BackendError(`provider_location ${JSON.stringify(s)} is not an iSCSI location`);
  return { portals: m[1]!.split(";").map(parsePortal), tid: m[2]!, iqn: m[3]!, lun: Number(m[4]) };
}

// ───────────────────────────── connector / connection info ─────────────────────────────

/** iSCSI needs the initiator IQN: ACLs and sessions are keyed on it. */
export function requireInitiator(connector: ConnectorProps): string {
  const initiator = connector.initiator;
  if (!initiator) {
    throw new InvalidArgumentError("connector has no initiator IQN (property 'initiator'), which iSCSI needs", {
      issues: [{ path: "initiator", message: "required for iSCSI" }],
    });
  }
  if (!isInitiatorName(initiator)) {
    throw new InvalidArgumentError(`connector initiator ${JSON.stringify(initiator)} is not an iSCSI name`, {
      issues: [{ path: "initiator", message: "must be an iqn./eui./naa. name" }],
    });
  }
  return initiator;
}

export interface ConnectionInfoInput {
  protocol?: string;
  iqn: string;
  portals: Portal[];
  lun: number;
  volumeId: string;
  auth?: ChapCredentials;
  multipath?: boolean;
  encrypted?: boolean;
}

/** Cinder's initialize_connection result, plus cinderlib's access_mode. */
export function buildConnectionInfo(i: ConnectionInfoInput): ConnectionInfo {
  const first = i.portals[0];
  if (!first) throw new BackendError("target has no portal");
  const data: Record<string, unknown> = {
    target_discovered: false,
    target_portal: formatPortal(first),
    target_iqn: i.iqn,
    target_lun: i.lun,
    volume_id: i.volumeId,
    encrypted: i.encrypted ?? false,
    access_mode: "rw",
  };
  if (i.portals.length > 1 || i.multipath) {
    data.target_portals = i.portals.map(formatPortal);
    data.target_iqns = i.portals.map(() => i.iqn);
    data.target_luns = i.portals.map(() => i.lun);
  }
  if (i.auth) {
    data.auth_method = "CHAP";
    data.auth_username = i.auth.user;
    data.auth_password = i.auth.password;
  }
  return { driver_volume_type: i.protocol ?? "iscsi", data };
}

/** The secrets a command line of this export may carry, for RunOptions.secrets. */
export function secretsOf(auth: ChapCredentials | undefined): string[] {
  return auth ? [auth.password] : [];
}
