import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { InProcessLockManager, MemoryPersistence } from "@cinderts/core";
import { describe, expect, it } from "vitest";
import { lockManagerContract, persistenceContract } from "../src/index.js";

// The reference implementations in core keep the contract…
persistenceContract(() => new MemoryPersistence(), { name: "core MemoryPersistence" });
lockManagerContract(() => new InProcessLockManager(), { name: "core InProcessLockManager" });

// …and the contract can fail: run it on stores that each break one promise and check which tests fail.
describe("persistenceContract catches broken stores", () => {
  it("fails exactly the tests each broken store deserves", { timeout: 180_000 }, async () => {
    const pkgDir = join(dirname(fileURLToPath(import.meta.url)), "..");
    const out = mkdtempSync(join(tmpdir(), "cinderts-testkit-"));
    const report = join(out, "report.json");
    try {
      const vitest = join(pkgDir, "node_modules", ".bin", "vitest");
      await promisify(execFile)(vitest, ["run", "--config", "test/fixtures/vitest.broken.config.mjs", "--reporter=json", `--outputFile=${report}`], {
        cwd: pkgDir,
        env: { ...process.env, CI: "" },
      }).catch((e: { code?: number }) => {
        if (e.code !== 1) throw e; // 1 = some tests failed, which is the point
      });
      const json = JSON.parse(readFileSync(report, "utf8")) as {
        testResults: { assertionResults: { ancestorTitles: string[]; title: string; status: string }[] }[];
      };
      const failed = new Map<string, string[]>();
      for (const a of json.testResults.flatMap((t) => t.assertionResults)) {
        if (a.status !== "failed") continue;
        const suite = a.ancestorTitles[0]!.replace(/^(persistence|lock manager) contract: /, "");
        failed.set(suite, [...(failed.get(suite) ?? []), a.title].sort());
      }
      const of = (suite: string) => failed.get(suite) ?? [];

      const conflictTests = ["volume", "snapshot", "connection"].flatMap((k) => [
        `${k}: expectVersion 0 on an existing record is a CONFLICT and changes nothing`,
        `${k}: a stale expectVersion is a CONFLICT and changes nothing`,
        `${k}: expectVersion on a missing record is a CONFLICT and creates nothing`,
      ]);
      expect(of("no-version-check")).toEqual(
        [...conflictTests, "8 parallel read-modify-write loops with retry on CONFLICT lose no update", "parallel puts with expectVersion 0 on one new id: exactly one wins"].sort(),
      );
      expect(of("like-keys")).toEqual(["listKeys treats wildcard characters in the prefix literally"]);
      expect(of("unsorted")).toEqual(["without a filter returns every record of the kind, ordered by created_at"]);
      expect(of("shallow")).toEqual(expect.arrayContaining(["volume: put then get round-trips every field exactly"]));
      expect(of("declares-locks-it-lacks")).toContain("exposes a LockManager as `locks`");
      expect(of("declares-locks-it-lacks locks")).toHaveLength(6);
      expect(of("no-exclusion")).toEqual(
        [
          "mutual exclusion: 8 parallel holders of one key never overlap",
          "a held key times out with LockTimeoutError (LOCK_TIMEOUT), and the holder keeps it",
          "release lets the next waiter in",
          "release is idempotent and a second release does not free the next holder's lock",
        ].sort(),
      );
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
