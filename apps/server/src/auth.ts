import { createHash, randomBytes, scrypt as scryptCb, timingSafeEqual } from "node:crypto";
import { promisify } from "node:util";
import { AuthError } from "@cinderts/core";
import type { TokenEntry } from "./config.js";

const scrypt = promisify(scryptCb) as (pw: string, salt: Buffer, keylen: number, opts: { N: number; r: number; p: number; maxmem: number }) => Promise<Buffer>;

export type Role = "reader" | "admin";
export interface Principal {
  name: string;
  role: Role;
}

const sha256 = (s: string) => createHash("sha256").update(s).digest();

/** A new random token (shown once) — 32 bytes, base64url. */
export function generateToken(): string {
  return `ct_${randomBytes(32).toString("base64url")}`;
}

/** The hash to put in the manifest. sha256 suits random tokens; scrypt also resists guessing of weak ones. */
export async function hashToken(token: string, kind: "sha256" | "scrypt" = "sha256"): Promise<string> {
  if (kind === "sha256") return `sha256:${sha256(token).toString("hex")}`;
  const salt = randomBytes(16);
  const N = 16384, r = 8, p = 1;
  const key = await scrypt(token, salt, 32, { N, r, p, maxmem: 64 * 1024 * 1024 });
  return `scrypt:${N}:${r}:${p}:${salt.toString("base64")}:${key.toString("base64")}`;
}

async function matches(token: string, hash: string): Promise<boolean> {
  if (hash.startsWith("sha256:")) {
    return timingSafeEqual(sha256(token), Buffer.from(hash.slice(7), "hex"));
  }
  const [, n, r, p, salt, expected] = hash.split(":");
  const want = Buffer.from(expected!, "base64");
  const got = await scrypt(token, Buffer.from(salt!, "base64"), want.length, {
    N: Number(n),
    r: Number(r),
    p: Number(p),
    maxmem: 256 * 1024 * 1024,
  });
  return got.length === want.length && timingSafeEqual(got, want);
}

/**
 * Checks bearer tokens against the configured hashes. scrypt is slow by design, so a verified token is
 * remembered by its sha256 (in memory only) to keep per-request cost flat.
 */
export class TokenVerifier {
  private readonly verified = new Map<string, Principal>();

  constructor(private readonly tokens: readonly TokenEntry[]) {}

  async verify(authorization: string | undefined): Promise<Principal> {
    if (!authorization) throw new AuthError("authentication required: send Authorization: Bearer <token>");
    const m = /^Bearer ([\x21-\x7e]{1,512})$/.exec(authorization);
    if (!m) throw new AuthError("malformed Authorization header: expected Bearer <token>");
    const token = m[1]!;
    const cacheKey = sha256(token).toString("hex");
    const hit = this.verified.get(cacheKey);
    if (hit) return hit;
    for (const t of this.tokens) {
      if (await matches(token, t.hash)) {
        const p = { name: t.name, role: t.role };
        if (this.verified.size > 1000) this.verified.clear();
        this.verified.set(cacheKey, p);
        return p;
      }
    }
    throw new AuthError("invalid token");
  }
}

export function requireRole(p: Principal, role: Role, what: string): void {
  if (role === "admin" && p.role !== "admin") {
    throw new AuthError(`${what} needs the admin role; token ${p.name} has ${p.role}`, "FORBIDDEN");
  }
}
