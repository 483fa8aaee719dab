/**
 * The testkit driver contract through core's lifecycle: once on a temporary directory of the host's
 * filesystem with file attaches (the copy path), once on a btrfs filesystem made by the test with loop
 * device attaches (the reflink path; root).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import connectorLocal from "@cinderts/connector-local";
import runnerLocal from "@cinderts/runner-local";
import { driverContract } from "@cinderts/testkit";
import { afterAll, beforeAll, describe } from "vitest";
import driverFile from "../src/index.js";
import { createFs, skipUnlessFs, type FsFixture } from "./fs-fixture.js";

const dir = mkdtempSync(join(tmpdir(), "driver-file-contract-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

driverContract({
  name: "driver-file (temp dir, file attach)",
  driver: driverFile,
  options: { path: join(dir, "volumes") },
  runner: { plugin: runnerLocal },
  connectors: [{ plugin: connectorLocal }],
});

describe.skipIf(skipUnlessFs("btrfs"))("on btrfs", () => {
  // Filled in beforeAll, which runs before the contract's own beforeAll opens the backend.
  const options: Record<string, unknown> = { path: "", reflink: "always" };
  let fx: FsFixture | undefined;
  beforeAll(async () => {
    fx = await createFs("btrfs");
    options.path = join(fx.mountpoint, "volumes");
  });
  afterAll(async () => {
    await fx?.cleanup();
  });
  driverContract({
    name: "driver-file (btrfs reflink, loop attach)",
    driver: driverFile,
    options,
    runner: { plugin: runnerLocal },
    connectors: [{ plugin: connectorLocal, options: { loop: true } }],
  });
});
