import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CindertsClient } from "../src/client.js";
import { ADMIN_TOKEN, dropSchema, manifest, pgEnv, scratchSchema, startInProcess, tempDir, type Running } from "./harness.js";

describe.skipIf(!pgEnv)("TLS", () => {
  const schema = scratchSchema("tls");
  const dir = tempDir("tls");
  let srv: Running;
  beforeAll(async () => {
    // A self-signed certificate for 127.0.0.1, made for this test only.
    execFileSync("openssl", [
      "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
      "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"),
    ], { stdio: "ignore" });
    srv = await startInProcess(
      await manifest({ schema, volumesDir: join(dir, "volumes"), stateDir: join(dir, "state"), server: { tls: { cert: join(dir, "cert.pem"), key: join(dir, "key.pem") } } }),
    );
  });
  afterAll(async () => {
    await srv?.close();
    if (pgEnv) await dropSchema(schema);
  });

  it("serves https; a client trusting the certificate works, one that does not is refused", async () => {
    expect(srv.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const ok = new CindertsClient({ url: srv.url, token: ADMIN_TOKEN, ca: readFileSync(join(dir, "cert.pem")) });
    const v = await ok.createVolume({ size: 1 });
    expect((await ok.getVolume(v.id)).status).toBe("available");
    const untrusted = new CindertsClient({ url: srv.url, token: ADMIN_TOKEN, retries: 0 });
    await expect(untrusted.listVolumes()).rejects.toThrow(/self-signed|certificate/);
  });
});
