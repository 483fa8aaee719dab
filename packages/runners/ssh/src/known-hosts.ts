import { createHash, createHmac, timingSafeEqual } from "node:crypto";

/** One usable line of an OpenSSH known_hosts file. */
export interface KnownHostEntry {
  marker?: "@revoked" | "@cert-authority";
  hosts: string;
  keyType: string;
  key: Buffer;
  line: number;
}

export function parseKnownHosts(text: string): KnownHostEntry[] {
  const out: KnownHostEntry[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith("#")) return;
    const f = line.split(/\s+/);
    let marker: KnownHostEntry["marker"];
    if (f[0] === "@revoked" || f[0] === "@cert-authority") marker = f.shift() as KnownHostEntry["marker"];
    const [hosts, keyType, b64] = f;
    if (!hosts || !keyType || !b64 || !/^[A-Za-z0-9+/]+={0,3}$/.test(b64)) return;
    out.push({ ...(marker ? { marker } : {}), hosts, keyType, key: Buffer.from(b64, "base64"), line: i + 1 });
  });
  return out;
}

/** How OpenSSH names a host in known_hosts: bare for port 22, "[host]:port" otherwise. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function globToRegExp(pattern: string): RegExp {
  const body = pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${body}$`, "i");
}

function hashedMatch(entry: string, name: string): boolean {
  // |1|base64(salt)|base64(HMAC-SHA1(salt, name))
  const [, kind, salt, hash] = entry.split("|");
  if (kind !== "1" || !salt || !hash) return false;
  const want = Buffer.from(hash, "base64");
  const got = createHmac("sha1", Buffer.from(salt, "base64")).update(name).digest();
  return want.length === got.length && timingSafeEqual(want, got);
}

/** The host field of a line matches: any positive pattern and no negated one (OpenSSH semantics). */
export function hostsFieldMatches(field: string, host: string, port: number): boolean {
  const name = knownHostsName(host, port);
  if (field.startsWith("|")) return hashedMatch(field, name);
  let positive = false;
  for (const p of field.split(",")) {
    if (p.startsWith("!")) {
      if (globToRegExp(p.slice(1)).test(name)) return false;
    } else if (globToRegExp(p).test(name)) positive = true;
  }
  return positive;
}

/** The key algorithm name at the start of an SSH public key blob. */
export function keyTypeOfBlob(blob: Buffer): string {
  if (blob.length < 4) return "";
  const n = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + n).toString("latin1");
}

/** OpenSSH's "SHA256:…" fingerprint of a public key blob (base64 without padding). */
export function fingerprintOf(blob: Buffer): string {
  return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

export type HostKeyVerdict =
  | { ok: true }
  | { ok: false; reason: "unknown" | "changed" | "revoked"; knownTypes: string[] };

/** Decides like OpenSSH with StrictHostKeyChecking=yes: revoked > match > changed > unknown. */
export function checkKnownHosts(entries: readonly KnownHostEntry[], host: string, port: number, blob: Buffer): HostKeyVerdict {
  const type = keyTypeOfBlob(blob);
  if (entries.some((e) => e.marker === "@revoked" && e.key.equals(blob))) return { ok: false, reason: "revoked", knownTypes: [] };
  const mine = entries.filter((e) => !e.marker && hostsFieldMatches(e.hosts, host, port));
  if (mine.some((e) => e.key.equals(blob))) return { ok: true };
  const knownTypes = [...new Set(mine.map((e) => e.keyType))];
  // A known key of another algorithm is not proof of a change: the server may just have offered a different type.
  return { ok: false, reason: knownTypes.includes(type) ? "changed" : "unknown", knownTypes };
}

/** Key types known for this host, so the client asks the server for exactly those (as OpenSSH does). */
export function knownKeyTypes(entries: readonly KnownHostEntry[], host: string, port: number): string[] {
  return [...new Set(entries.filter((e) => !e.marker && hostsFieldMatches(e.hosts, host, port)).map((e) => e.keyType))];
}
