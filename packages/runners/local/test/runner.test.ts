import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assertPlugin, isStorageError, type CommandError, type StorageError } from "@cinderts/core";
import { afterAll, describe, expect, it } from "vitest";
import plugin, { createLocalRunner, KILL_GRACE_MS, LocalRunner, RunnerLocalOptions, STDERR_TAIL_CHARS } from "../src/index.js";

const node = process.execPath;
const dir = mkdtempSync(join(tmpdir(), "runner-local-test-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function failure(p: Promise<unknown>): Promise<StorageError> {
  try {
    await p;
  } catch (e) {
    if (isStorageError(e)) return e;
    throw e;
  }
  throw new Error("expected the command to fail");
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("runner-local", () => {
  const runner = createLocalRunner();

  it("passes hostile arguments verbatim, without a shell", async () => {
    const marker = join(dir, "pwned");
    const hostile = [
      `$(touch ${marker})`,
      `\`touch ${marker}\``,
      `; touch ${marker}`,
      `| touch ${marker}`,
      "a b  c",
      "'single' \"double\"",
      "*",
      "~",
      "$HOME",
      "line1\nline2",
      "-n",
      "--",
      "ü €",
    ];
    const { stdout, exitCode } = await runner.run(["printf", "[%s]\\n", ...hostile]);
    expect(exitCode).toBe(0);
    expect(stdout).toBe(hostile.map((h) => `[${h}]\n`).join(""));
    expect(existsSync(marker)).toBe(false);
  });

  it("fails with CommandError carrying the exit code and the stderr tail", async () => {
    const err = (await failure(
      runner.run([node, "-e", "process.stderr.write('first line\\nthe real reason\\n'); process.exit(3)"]),
    )) as CommandError;
    expect(err.code).toBe("COMMAND_FAILED");
    expect(err.exitCode).toBe(3);
    expect(err.stderrTail).toContain("the real reason");
    expect(err.message).toContain("exited with 3");
    expect(err.message).toContain("the real reason");
  });

  it("keeps only the tail of a long stderr", async () => {
    const err = (await failure(
      runner.run([node, "-e", "process.stderr.write('x'.repeat(100000) + 'END'); process.exit(1)"]),
    )) as CommandError;
    expect(err.stderrTail.length).toBe(STDERR_TAIL_CHARS);
    expect(err.stderrTail.endsWith("END")).toBe(true);
  });

  it("accepts exit codes listed in okExitCodes", async () => {
    const r = await runner.run([node, "-e", "process.exit(2)"], { okExitCodes: [0, 2] });
    expect(r.exitCode).toBe(2);
    const err = (await failure(runner.run([node, "-e", "process.exit(2)"], { okExitCodes: [0, 1] }))) as CommandError;
    expect(err.exitCode).toBe(2);
  });

  it("reports a missing program as exit 127, like a shell", async () => {
    const err = (await failure(runner.run(["cinderts-no-such-program-xyz", "arg"]))) as CommandError;
    expect(err.code).toBe("COMMAND_FAILED");
    expect(err.exitCode).toBe(127);
    expect(err.message).toContain("command not found");
  });

  it("refuses argv that is empty or carries NUL bytes before running anything", async () => {
    expect((await failure(runner.run([]))).code).toBe("INVALID_ARGUMENT");
    expect((await failure(runner.run(["printf", "a\0b"]))).code).toBe("INVALID_ARGUMENT");
  });

  it("writes stdin and returns binary stdout untouched", async () => {
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const r = await runner.run(["cat"], { input: all, binary: true });
    expect(r.stdoutBuffer).toBeInstanceOf(Buffer);
    expect(r.stdoutBuffer!.equals(all)).toBe(true);
    const t = await runner.run(["cat"], { input: "text on stdin\n" });
    expect(t.stdout).toBe("text on stdin\n");
  });

  it("gives the command no stdin when there is no input (it cannot hang on a prompt)", async () => {
    const r = await runner.run(["cat"], { timeoutMs: 5000 });
    expect(r.stdout).toBe("");
  });

  it("adds env to the inherited environment and runs in cwd", async () => {
    const r = await runner.run([node, "-e", "console.log(process.env.CINDERTS_T + ' ' + process.cwd() + ' ' + (process.env.PATH ? 'path' : 'nopath'))"], {
      env: { CINDERTS_T: "value with spaces" },
      cwd: dir,
    });
    expect(r.stdout.trim()).toBe(`value with spaces ${dir} path`);
  });

  it("times out with TimeoutError and kills the whole process group", async () => {
    const pidFile = join(dir, "grandchild.pid");
    // The child starts a grandchild that ignores SIGTERM; both must be gone after the timeout.
    const script = `
      const { spawn } = require("node:child_process");
      const g = spawn(process.execPath, ["-e", "process.on('SIGTERM', () => {}); setInterval(() => {}, 1000)"], { stdio: "inherit" });
      require("node:fs").writeFileSync(${JSON.stringify(pidFile)}, String(g.pid));
      setInterval(() => {}, 1000);`;
    const err = await failure(runner.run([node, "-e", script], { timeoutMs: 1500 }));
    expect(err.code).toBe("TIMEOUT");
    expect(err.message).toContain("timed out after 1500 ms");
    const grandchild = Number(readFileSync(pidFile, "utf8"));
    expect(grandchild).toBeGreaterThan(0);
    // SIGKILL follows SIGTERM after the grace period.
    await new Promise((r) => setTimeout(r, KILL_GRACE_MS + 500));
    expect(alive(grandchild)).toBe(false);
  });

  it("kills running commands when this process is interrupted (Ctrl-C), although they run detached", async () => {
    const script = join(import.meta.dirname, "fixtures", "interrupted.mjs");
    if (!existsSync(join(import.meta.dirname, "..", "dist", "index.js"))) {
      throw new Error("this test runs the built runner: pnpm --filter @cinderts/runner-local build");
    }
    const pidFile = join(dir, "interrupted.pid");
    const cli = spawn(node, [script, pidFile], { stdio: "ignore" });
    const exited = new Promise<NodeJS.Signals | null>((r) => cli.on("exit", (_code, signal) => r(signal)));
    for (let i = 0; i < 100 && !existsSync(pidFile); i++) await new Promise((r) => setTimeout(r, 100));
    const pid = Number(readFileSync(pidFile, "utf8"));
    expect(alive(pid)).toBe(true);
    cli.kill("SIGINT");
    // The process still dies of the signal (the hook re-raises it) ...
    expect(await exited).toBe("SIGINT");
    // ... and its command went with it.
    for (let i = 0; i < 50 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
    expect(alive(pid)).toBe(false);
  });

  it("uses defaultTimeoutMs when the call gives none", async () => {
    const short = createLocalRunner({ defaultTimeoutMs: 300 });
    expect((await failure(short.run(["sleep", "30"]))).code).toBe("TIMEOUT");
  });

  it("stops on an abort signal", async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error("user cancelled")), 200);
    const err = (await failure(runner.run(["sleep", "30"], { signal: ac.signal }))) as CommandError;
    expect(err.code).toBe("COMMAND_FAILED");
    expect(err.details.data?.aborted).toBe(true);
  });

  it("masks secrets in the error message, argv, stderr and JSON", async () => {
    const secret = "chap-S3cr3t-value";
    const err = (await failure(
      runner.run([node, "-e", "process.stderr.write('login failed with ' + process.argv[1]); process.exit(24)", secret], {
        secrets: [secret],
      }),
    )) as CommandError;
    expect(err.exitCode).toBe(24);
    expect(err.argv).toContain("***");
    const everything = [err.message, err.stderrTail, JSON.stringify(err.toJSON()), JSON.stringify(err.argv), String(err.stack)].join("\n");
    expect(everything).not.toContain(secret);
    expect(everything).toContain("login failed with ***");
  });

  it("masks secrets in timeouts too", async () => {
    const secret = "hunter2-password";
    const err = await failure(runner.run([node, "-e", "setInterval(() => {}, 1000)", secret], { timeoutMs: 300, secrets: [secret] }));
    expect(err.code).toBe("TIMEOUT");
    expect(JSON.stringify(err.toJSON()) + err.message).not.toContain(secret);
  });

  it("runs root commands without a prefix when already root, through rootHelper otherwise", async () => {
    const asRoot = createLocalRunner({ rootHelper: ["env", "VIA_HELPER=yes"] }, { isRoot: true });
    expect(asRoot.commandLine(["id", "-u"], true)).toEqual(["id", "-u"]);
    const r1 = await asRoot.run(["printenv", "VIA_HELPER"], { root: true, okExitCodes: [0, 1] });
    expect(r1.stdout).toBe("");

    // `env VAR=…` stands in for sudo: a real program that changes how the command runs, visibly.
    const notRoot = createLocalRunner({ rootHelper: ["env", "VIA_HELPER=yes"] }, { isRoot: false });
    expect(notRoot.commandLine(["id", "-u"], true)).toEqual(["env", "VIA_HELPER=yes", "id", "-u"]);
    const r2 = await notRoot.run(["printenv", "VIA_HELPER"], { root: true });
    expect(r2.stdout).toBe("yes\n");
    const r3 = await notRoot.run(["printenv", "VIA_HELPER"], { okExitCodes: [0, 1] });
    expect(r3.stdout).toBe("");
  });

  it("refuses a root command when not root and no rootHelper is configured", async () => {
    const r = createLocalRunner({}, { isRoot: false });
    const err = await failure(r.run(["losetup", "-a"], { root: true }));
    expect(err.code).toBe("FORBIDDEN");
    expect(err.message).toContain("rootHelper");
  });

  it("spawns long-lived helpers with pipes and kills them", async () => {
    const p = runner.spawn(["cat"]);
    const chunks: Buffer[] = [];
    p.stdout.on("data", (c: Buffer) => chunks.push(c));
    p.stdin.write("ping\n");
    await new Promise((r) => setTimeout(r, 300));
    expect(Buffer.concat(chunks).toString()).toBe("ping\n");
    p.kill();
    const exit = await p.exited;
    expect(exit.signal).toBe("SIGTERM");
  });

  it("spawn reports the exit code, a missing program, and survives writes to a command that already exited", async () => {
    const done = runner.spawn(["sh", "-c", "exit 3"]);
    expect(await done.exited).toEqual({ exitCode: 3, signal: null });
    const missing = runner.spawn(["cinderts-no-such-program"]);
    expect(await missing.exited).toEqual({ exitCode: null, signal: null });
    const gone = runner.spawn(["true"]);
    await gone.exited;
    gone.stdin.write(Buffer.alloc(1 << 20)); // EPIPE: must not become an uncaught exception
    await new Promise((r) => setTimeout(r, 100));
    expect((await gone.exited).exitCode).toBe(0);
  });

  it("runs commands in the C locale also when spawning", async () => {
    const p = runner.spawn(["sh", "-c", "echo $LC_ALL"]);
    const chunks: Buffer[] = [];
    p.stdout.on("data", (c: Buffer) => chunks.push(c));
    await p.exited;
    expect(Buffer.concat(chunks).toString()).toBe("C\n");
  });

  it("is a runner plugin with a strict options schema", () => {
    const p = assertPlugin({ default: plugin }, "runner", "@cinderts/runner-local");
    expect(p.id).toBe("local");
    expect(RunnerLocalOptions.safeParse({ bogus: 1 }).success).toBe(false);
    expect(RunnerLocalOptions.safeParse({ rootHelper: [] }).success).toBe(false);
    const r = p.create(RunnerLocalOptions.parse({ rootHelper: ["sudo", "-n", "--"] }), {
      logger: { debug() {}, info() {}, warn() {}, error() {}, child() { return this; } },
    });
    expect(r).toBeInstanceOf(LocalRunner);
    expect(r.name).toBe("local");
    expect(() => createLocalRunner({ defaultTimeoutMs: -1 })).toThrow(/defaultTimeoutMs/);
  });
});

