import { readFileSync } from "node:fs";
import { testbedEnv } from "@cinderts/testkit";
import { afterAll, describe, expect, it } from "vitest";
import { SshRunner, SshRunnerConfig, fingerprintOf, type SshRunnerOptions } from "../src/index.js";

// Booted by tooling/testbeds/testhost/boot.sh start; `. /tmp/cinderts-testhost/env` exports these.
const env = testbedEnv("testhost", [
  "TESTHOST_SSH_HOST",
  "TESTHOST_SSH_PORT",
  "TESTHOST_SSH_USER",
  "TESTHOST_SSH_KEY",
  "TESTHOST_SSH_KNOWN_HOSTS",
  "TESTHOST_SSH_HOST_PUBKEY",
  "TESTHOST_SUDO_USER",
  "TESTHOST_INITIATOR_IQN",
]);

// The guest runs under TCG: on a busy 2-core machine a single command can take seconds.
describe.skipIf(!env)("runner-ssh against the QEMU Linux test host", { timeout: 180_000 }, () => {
  const e = env!;
  const runners: SshRunner[] = [];
  const make = (over: Partial<SshRunnerOptions> = {}) => {
    const r = new SshRunner(
      SshRunnerConfig.parse({
        host: e.TESTHOST_SSH_HOST,
        port: Number(e.TESTHOST_SSH_PORT),
        username: e.TESTHOST_SSH_USER,
        privateKeyPath: e.TESTHOST_SSH_KEY,
        knownHostsFile: e.TESTHOST_SSH_KNOWN_HOSTS,
        timeoutMs: 120_000,
        connectTimeoutMs: 120_000,
        ...over,
      }),
    );
    runners.push(r);
    return r;
  };
  afterAll(async () => {
    await Promise.all(runners.map((r) => r.close()));
  });

  it("runs uname -r and lvs --version in the guest", async () => {
    const r = make();
    const uname = await r.run(["uname", "-r"]);
    expect(uname.stdout.trim()).toMatch(/^\d+\.\d+\.\d+-\d+-amd64$/);
    // The guest is not this machine: its kernel is Debian's.
    expect(uname.stdout.trim()).not.toBe((await import("node:os")).release());
    const lvs = await r.run(["lvs", "--version"]);
    expect(lvs.stdout).toMatch(/LVM version:\s+2\.\d+\.\d+/);
  });

  it("has the per-boot identity from the seed disk (host key pinned by fingerprint, initiator name)", async () => {
    const blob = Buffer.from(readFileSync(e.TESTHOST_SSH_HOST_PUBKEY, "utf8").trim().split(/\s+/)[1]!, "base64");
    const r = make({ knownHostsFile: undefined, hostKeyFingerprint: fingerprintOf(blob) });
    const iqn = await r.run(["cat", "/etc/iscsi/initiatorname.iscsi"]);
    expect(iqn.stdout).toContain(`InitiatorName=${e.TESTHOST_INITIATOR_IQN}`);
  });

  it("runs root commands through sudo -n -- as the unprivileged user", async () => {
    const r = make({ username: e.TESTHOST_SUDO_USER, sudo: "root" });
    expect((await r.run(["id", "-u"])).stdout.trim()).not.toBe("0");
    expect((await r.run(["id", "-u"], { root: true })).stdout).toBe("0\n");
    const vgs = await r.run(["vgs", "--reportformat", "json"], { root: true });
    expect(JSON.parse(vgs.stdout)).toHaveProperty("report");
  });

  it("argv arrives verbatim in the guest too", async () => {
    const r = make();
    const args = ["a b", "it's", "$(reboot)", "x;y", "l1\nl2", ""];
    const res = await r.run(["printf", "%s\\0", ...args]);
    expect(res.stdout.split("\0").slice(0, -1)).toEqual(args);
  });
});
