import { AuthError, type ErrorDetails } from "@cinderts/core";

/**
 * The server's host key is not the trusted one: unknown (no entry), changed (an entry of the same type
 * with another key) or revoked. Never accepted silently; fix known_hosts or the pinned fingerprint.
 */
export class HostKeyError extends AuthError {
  constructor(
    readonly reason: "unknown" | "changed" | "revoked",
    readonly host: string,
    readonly port: number,
    readonly fingerprint: string,
    readonly source: string,
    details: ErrorDetails = {},
  ) {
    const what =
      reason === "unknown"
        ? `is not known (${source} has no entry for it)`
        : reason === "changed"
          ? `does not match the trusted key in ${source} — it changed, or this is not the expected host`
          : `is marked @revoked in ${source}`;
    super(`SSH host key ${fingerprint} of ${host}:${port} ${what}`, "UNAUTHENTICATED", {
      ...details,
      data: { ...details.data, reason, host, port, fingerprint, source },
    });
  }
}

/** The server refused our credentials, or the private key could not be read/decrypted. */
export class SshAuthError extends AuthError {
  constructor(message: string, details: ErrorDetails = {}) {
    super(message, "UNAUTHENTICATED", details);
  }
}
