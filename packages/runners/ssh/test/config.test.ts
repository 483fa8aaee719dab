import { assertPlugin, redact } from "@cinderts/core";
import { describe, expect, it } from "vitest";
import plugin, { SshRunnerConfig } from "../src/index.js";

describe("runner-ssh plugin definition and options", () => {
  it("is a runner plugin core accepts", () => {
    const p = assertPlugin({ default: plugin }, "runner", "@cinderts/runner-ssh");
    expect(p.id).toBe("ssh");
  });

  it("marks password, passphrase and privateKey as secrets: redact() hides them", () => {
    const cfg = SshRunnerConfig.parse({
      host: "storage1",
      username: "cinder",
      password: "pw-Sekr1t",
      privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----",
      passphrase: "pp-Sekr1t",
      hostKeyFingerprint: `SHA256:${"A".repeat(43)}`,
    });
    const dump = JSON.stringify(redact(cfg, SshRunnerConfig));
    expect(dump).not.toContain("pw-Sekr1t");
    expect(dump).not.toContain("pp-Sekr1t");
    expect(dump).not.toContain("OPENSSH PRIVATE KEY");
    expect(dump).toContain("storage1");
  });

  it("is strict and checks combinations", () => {
    const base = { host: "h", username: "u", privateKeyPath: "/k" };
    expect(SshRunnerConfig.safeParse({ ...base, extra: 1 }).success).toBe(false);
    expect(SshRunnerConfig.safeParse({ host: "h", username: "u" }).success).toBe(false); // no credentials
    expect(SshRunnerConfig.safeParse({ ...base, privateKey: "x" }).success).toBe(false);
    expect(SshRunnerConfig.safeParse({ ...base, knownHostsFile: "/kh", hostKeyFingerprint: `SHA256:${"B".repeat(43)}` }).success).toBe(false);
    expect(SshRunnerConfig.safeParse({ ...base, host: "h;rm -rf /" }).success).toBe(false);
    expect(SshRunnerConfig.safeParse({ ...base, username: "$(id)" }).success).toBe(false);
    expect(SshRunnerConfig.parse(base)).toMatchObject({ port: 22, sudo: "off", maxChannels: 8 });
  });
});
