import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { remoteArgv, remoteCommandLine, shQuote } from "../src/quote.js";
import { NASTY } from "./fixtures.js";


describe("shQuote", () => {
  it("passes every argument verbatim through a real POSIX sh", () => {
    // The same parsing the remote login shell does: sh -c '<line>'.
    const line = ["printf", "%s\\0", ...NASTY].map(shQuote).join(" ");
    const out = execFileSync("/bin/sh", ["-c", line]).toString("utf8");
    expect(out.split("\0").slice(0, -1)).toEqual(NASTY);
  });

  it("refuses NUL, which no shell can carry", () => {
    expect(() => shQuote("a\0b")).toThrow(/NUL/);
  });

  it("quotes each argument separately, never a joined string", () => {
    expect(shQuote("a b")).toBe("'a b'");
    expect(shQuote("it's")).toBe(`'it'\\''s'`);
  });
});

describe("remoteArgv / remoteCommandLine", () => {
  it("adds sudo, env and timeout prefixes in that order", () => {
    expect(remoteArgv(["lvs"], { sudo: true, env: { LC_ALL: "C" }, timeoutMs: 1500, killAfterMs: 2000 })).toEqual([
      "sudo",
      "-n",
      "--",
      "env",
      "LC_ALL=C",
      "timeout",
      "-k",
      "2.000",
      "1.500",
      "lvs",
    ]);
  });

  it("rejects environment names that are not identifiers", () => {
    expect(() => remoteArgv(["true"], { env: { "A;B": "x" } })).toThrow(/not valid/);
  });

  it("runs in cwd and reports its pid first on stderr", () => {
    const line = remoteCommandLine(["pwd"], { cwd: "/tmp/it's here" });
    expect(line).toContain(`cd '/tmp/it'\\''s here' && exec 'pwd'`);
    const r = execFileSync("/bin/sh", ["-c", remoteCommandLine(["sh", "-c", "echo $$"])], { stdio: ["ignore", "pipe", "pipe"] });
    // exec keeps the pid: the reported pid is the command's own.
    expect(r.toString().trim()).toMatch(/^\d+$/);
  });
});
