import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { checkKnownHosts, fingerprintOf, hostsFieldMatches, knownKeyTypes, parseKnownHosts } from "../src/known-hosts.js";

// Real keys and real hashed entries from ssh-keygen, so the format is OpenSSH's, not our idea of it.
const dir = mkdtempSync(join(tmpdir(), "cinderts-kh-"));
function newKey(name: string, type = "ed25519"): { line: string; blob: Buffer } {
  execFileSync("ssh-keygen", ["-q", "-t", type, "-N", "", "-f", join(dir, name)]);
  const pub = readFileSync(join(dir, `${name}.pub`), "utf8").trim().split(/\s+/);
  return { line: `${pub[0]} ${pub[1]}`, blob: Buffer.from(pub[1]!, "base64") };
}
const a = newKey("a");
const b = newKey("b");
const r = newKey("r", "rsa");

describe("known_hosts matching", () => {
  it("uses the [host]:port form for non-22 ports and the bare name for 22", () => {
    expect(hostsFieldMatches("[127.0.0.1]:22022", "127.0.0.1", 22022)).toBe(true);
    expect(hostsFieldMatches("127.0.0.1", "127.0.0.1", 22022)).toBe(false);
    expect(hostsFieldMatches("127.0.0.1", "127.0.0.1", 22)).toBe(true);
    expect(hostsFieldMatches("[127.0.0.1]:22022", "127.0.0.1", 22)).toBe(false);
  });

  it("supports lists, wildcards and negation", () => {
    expect(hostsFieldMatches("foo,*.example.org", "db1.example.org", 22)).toBe(true);
    expect(hostsFieldMatches("*.example.org,!db1.example.org", "db1.example.org", 22)).toBe(false);
    expect(hostsFieldMatches("db?.example.org", "db12.example.org", 22)).toBe(false);
  });

  it("matches entries hashed by ssh-keygen -H and only for the right name", () => {
    const f = join(dir, "kh");
    writeFileSync(f, `[127.0.0.1]:22022 ${a.line}\nstorage1 ${r.line}\n`);
    execFileSync("ssh-keygen", ["-q", "-H", "-f", f], { stdio: "ignore" });
    const text = readFileSync(f, "utf8");
    expect(text).not.toContain("127.0.0.1");
    const entries = parseKnownHosts(text);
    expect(checkKnownHosts(entries, "127.0.0.1", 22022, a.blob)).toEqual({ ok: true });
    expect(checkKnownHosts(entries, "127.0.0.1", 22, a.blob).ok).toBe(false);
    expect(checkKnownHosts(entries, "storage1", 22, r.blob)).toEqual({ ok: true });
    expect(knownKeyTypes(entries, "storage1", 22)).toEqual(["ssh-rsa"]);
  });

  it("classifies unknown, changed and revoked keys", () => {
    const entries = parseKnownHosts(`# comment\n[h]:2222 ${a.line} c\n@revoked * ${b.line}\n`);
    expect(checkKnownHosts(entries, "h", 2222, a.blob)).toEqual({ ok: true });
    expect(checkKnownHosts(entries, "other", 2222, a.blob)).toMatchObject({ ok: false, reason: "unknown" });
    expect(checkKnownHosts(entries, "h", 2222, b.blob)).toMatchObject({ ok: false, reason: "revoked" });
    const entries2 = parseKnownHosts(`[h]:2222 ${a.line}\n`);
    const c = newKey("c");
    expect(checkKnownHosts(entries2, "h", 2222, c.blob)).toMatchObject({ ok: false, reason: "changed", knownTypes: ["ssh-ed25519"] });
    // A key of a type the file does not list for the host is unknown, not "changed".
    expect(checkKnownHosts(entries2, "h", 2222, r.blob)).toMatchObject({ ok: false, reason: "unknown" });
  });

  it("computes fingerprints exactly like ssh-keygen -l -E sha256", () => {
    const fp = execFileSync("ssh-keygen", ["-l", "-E", "sha256", "-f", join(dir, "a.pub")]).toString().split(/\s+/)[1];
    expect(fingerprintOf(a.blob)).toBe(fp);
  });
});
