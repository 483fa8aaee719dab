import { z } from "@cinderts/core";

/** A configured bearer token: only its hash is stored, never the token itself. */
export const TokenEntrySchema = z
  .object({
    name: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$/, "must be 1-64 of A-Z a-z 0-9 _ . @ - (shown in logs)")
      .describe("who holds the token: shown in logs and metrics, never the token"),
    role: z.enum(["reader", "admin"]).describe("reader: GET only, no secrets; admin: everything"),
    hash: z
      .string()
      .regex(
        /^(sha256:[0-9a-f]{64}|scrypt:\d+:\d+:\d+:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+)$/,
        "must be sha256:<64 hex> or scrypt:N:r:p:<salt b64>:<hash b64> (make one with `cinderts-server hash-token`)",
      )
      .describe("hash of the token"),
  })
  .strict();
export type TokenEntry = z.infer<typeof TokenEntrySchema>;

/** The manifest's `server:` section. */
export const ServerConfigSchema = z
  .object({
    host: z.string().min(1).default("127.0.0.1").describe("address to listen on"),
    port: z.number().int().min(0).max(65535).default(8776).describe("TCP port (0 = any free port)"),
    tls: z
      .object({
        cert: z.string().min(1).describe("PEM certificate chain file"),
        key: z.string().min(1).describe("PEM private key file"),
      })
      .strict()
      .optional()
      .describe("serve HTTPS"),
    tokens: z
      .array(TokenEntrySchema)
      .min(1, "at least one token is needed: the API requires authentication")
      .superRefine((list, ctx) => {
        const seen = new Set<string>();
        list.forEach((t, i) => {
          if (seen.has(t.name)) ctx.addIssue({ code: "custom", message: `duplicate token name ${t.name}`, path: [i, "name"] });
          seen.add(t.name);
        });
      }),
    body_limit_bytes: z
      .number()
      .int()
      .min(1024)
      .default(4 * 1024 * 1024)
      .describe("larger request bodies get 413"),
    shutdown_timeout_ms: z
      .number()
      .int()
      .min(0)
      .default(30_000)
      .describe("on SIGTERM, wait this long for in-flight operations"),
    idempotency_ttl_s: z
      .number()
      .int()
      .positive()
      .default(24 * 3600)
      .describe("how long an Idempotency-Key is remembered"),
    metrics_public: z.boolean().default(false).describe("serve /metrics without a token"),
    wait_for_record_ms: z
      .number()
      .int()
      .positive()
      .default(30_000)
      .describe("long operations: how long to wait for the record before answering 202"),
  })
  .strict();
export type ServerConfig = z.output<typeof ServerConfigSchema>;
