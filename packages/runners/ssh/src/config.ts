import { secret } from "@cinderts/core";
import { z } from "@cinderts/core";

const hostname = z
  .string()
  .regex(
    /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|[0-9A-Fa-f:.]+)$/,
    "must be a host name, an IPv4 or an IPv6 address",
  );

/** Options of the ssh runner (manifest `runner.options`). */
export const SshRunnerConfig = z
  .object({
    host: hostname.describe("SSH server (host name or IP address)"),
    port: z.number().int().min(1).max(65535).default(22).describe("SSH port"),
    username: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/, "must be a POSIX user name")
      .describe("login user"),
    password: secret().optional(),
    privateKey: secret().optional(),
    privateKeyPath: z.string().min(1).optional().describe("path of the private key file (OpenSSH or PEM format)"),
    passphrase: secret().optional(),
    knownHostsFile: z
      .string()
      .min(1)
      .optional()
      .describe("OpenSSH known_hosts file (plain and hashed entries); default ~/.ssh/known_hosts unless hostKeyFingerprint is set"),
    hostKeyFingerprint: z
      .string()
      .regex(/^SHA256:[A-Za-z0-9+/]{43}$/, "must be an OpenSSH SHA256 fingerprint (ssh-keygen -l -E sha256)")
      .optional()
      .describe("pinned host key fingerprint, instead of a known_hosts file"),
    sudo: z
      .enum(["off", "root", "always"])
      .default("off")
      .describe("prefix `sudo -n --`: for commands that ask for root (root), for every command (always), or never (off)"),
    maxChannels: z
      .number()
      .int()
      .min(1)
      .max(64)
      .default(8)
      .describe("concurrent commands on the connection; more wait in a queue (keep below sshd MaxSessions, default 10)"),
    connectTimeoutMs: z.number().int().positive().default(20_000).describe("SSH handshake timeout"),
    keepaliveIntervalMs: z.number().int().min(0).default(10_000).describe("SSH keepalive interval (0: off)"),
    keepaliveCountMax: z.number().int().min(1).default(3).describe("unanswered keepalives before the connection counts as lost"),
    timeoutMs: z.number().int().positive().optional().describe("default per-command timeout"),
    killGraceMs: z.number().int().min(100).default(2_000).describe("time between SIGTERM and SIGKILL when a command is ended"),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.privateKey !== undefined && c.privateKeyPath !== undefined) {
      ctx.addIssue({ code: "custom", path: ["privateKeyPath"], message: "give privateKey or privateKeyPath, not both" });
    }
    if (c.password === undefined && c.privateKey === undefined && c.privateKeyPath === undefined) {
      ctx.addIssue({ code: "custom", path: ["password"], message: "one of password, privateKey or privateKeyPath is required" });
    }
    if (c.passphrase !== undefined && c.privateKey === undefined && c.privateKeyPath === undefined) {
      ctx.addIssue({ code: "custom", path: ["passphrase"], message: "a passphrase needs privateKey or privateKeyPath" });
    }
    if (c.knownHostsFile !== undefined && c.hostKeyFingerprint !== undefined) {
      ctx.addIssue({ code: "custom", path: ["hostKeyFingerprint"], message: "give knownHostsFile or hostKeyFingerprint, not both" });
    }
  });

export type SshRunnerOptions = z.input<typeof SshRunnerConfig>;
export type SshRunnerSettings = z.output<typeof SshRunnerConfig>;
