#!/usr/bin/env node
// Ops/s of a trivial command (`true`) through @cinderts/runner-ssh over its one reused connection, beside
// the OpenSSH client started once per command (what a naive "ssh host cmd" runner pays) and a fresh ssh2
// connection per command. Prints figures; asserts nothing about speed.
//
//   pnpm --filter @cinderts/runner-ssh build
//   . /tmp/cinderts-sshd/env && node bench/ssh/ssh-bench.mjs [N] [--root]
//   . /tmp/cinderts-testhost/env && node bench/ssh/ssh-bench.mjs --testhost [N]
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { SshRunner, SshRunnerConfig } from "../../packages/runners/ssh/dist/index.js";

const run = promisify(execFile);
const args = process.argv.slice(2);
const testhost = args.includes("--testhost");
const N = Number(args.find((a) => /^\d+$/.test(a)) ?? (testhost ? 20 : 200));
const P = testhost ? "TESTHOST_SSH_" : "SSHD_";
const need = ["HOST", "PORT", "USER", "KEY", "KNOWN_HOSTS"].map((k) => P + k);
const missing = need.filter((k) => !process.env[k]);
if (missing.length) {
  console.error(`missing ${missing.join(", ")}: start the ${testhost ? "testhost" : "sshd"} testbed and source its env file`);
  process.exit(2);
}
const e = (k) => process.env[P + k];
// On the sshd testbed, log in as its dedicated user (login shell /bin/sh, same authorized keys) when it
// exists: root's ~/.bashrc on this machine runs `pyenv init`, which sshd's bash sources for every command
// (~0.4 s) and would swamp what is measured here. `--root` measures as root anyway.
const user = !testhost && !args.includes("--root") && process.env.SSHD_PASSWORD_USER ? process.env.SSHD_PASSWORD_USER : e("USER");
const options = {
  host: e("HOST"),
  port: Number(e("PORT")),
  username: user,
  privateKeyPath: e("KEY"),
  knownHostsFile: e("KNOWN_HOSTS"),
};

function stats(ms) {
  const s = [...ms].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { p50: q(0.5), p95: q(0.95) };
}

async function measure(label, n, once, concurrency = 1) {
  const lat = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        next++;
        const t = performance.now();
        await once();
        lat.push(performance.now() - t);
      }
    }),
  );
  const total = performance.now() - t0;
  const { p50, p95 } = stats(lat);
  const row = { label, n, opsPerSec: (n / total) * 1000, p50, p95 };
  console.log(
    `${label.padEnd(46)} ${String(n).padStart(5)}  ${row.opsPerSec.toFixed(1).padStart(8)} ops/s  p50 ${p50.toFixed(1).padStart(7)} ms  p95 ${p95.toFixed(1).padStart(7)} ms`,
  );
  return row;
}

console.log(`target ${options.username}@${options.host}:${options.port}${testhost ? " (QEMU test host, TCG)" : " (sshd testbed)"}; command: true`);
const runner = new SshRunner(SshRunnerConfig.parse({ ...options, maxChannels: 8 }));
await runner.run(["true"]); // connect outside the measurement
const reused = await measure("runner-ssh, reused connection, sequential", N, () => runner.run(["true"]));
const par = await measure("runner-ssh, reused connection, 8 in parallel", N, () => runner.run(["true"]), 8);
await runner.close();
const fresh = await measure("ssh2, new connection per command", Math.max(5, Math.floor(N / 10)), async () => {
  const r = new SshRunner(SshRunnerConfig.parse(options));
  await r.run(["true"]);
  await r.close();
});
const sshArgs = [
  "-i", options.privateKeyPath, "-p", String(options.port), "-o", `UserKnownHostsFile=${options.knownHostsFile}`,
  "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", `${options.username}@${options.host}`, "true",
];
const perCmd = await measure("OpenSSH `ssh` process per command", Math.max(5, Math.floor(N / 10)), () => run("ssh", sshArgs));
console.log(
  `speed-up of the reused connection over ssh per command: ${(reused.opsPerSec / perCmd.opsPerSec).toFixed(1)}x sequential, ${(par.opsPerSec / perCmd.opsPerSec).toFixed(1)}x with 8 channels; over a new ssh2 connection: ${(reused.opsPerSec / fresh.opsPerSec).toFixed(1)}x`,
);
