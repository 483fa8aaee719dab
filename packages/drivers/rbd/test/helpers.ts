import {
  CommandError,
  createJsonLogger,
  InProcessLockManager,
  type CommandRunner,
  type DriverContext,
  type RunResult,
} from "@cinderts/core";

type Reply = { stdout?: string; exitCode?: number; stderr?: string } | ((argv: readonly string[]) => RunResult);

/** Records every argv and answers from a script: first matching [prefix-test, reply]; unmatched → exit 0, "". */
export class RecordingRunner implements CommandRunner {
  readonly name = "local";
  readonly calls: string[][] = [];
  constructor(private readonly script: [(argv: readonly string[]) => boolean, Reply][] = []) {}
  async run(argv: readonly string[]): Promise<RunResult> {
    this.calls.push([...argv]);
    const hit = this.script.find(([m]) => m(argv));
    if (!hit) return { stdout: "", stderr: "", exitCode: 0 };
    const r = hit[1];
    if (typeof r === "function") return r(argv);
    if (r.exitCode && r.exitCode !== 0) throw new CommandError([...argv], r.exitCode, r.stderr ?? "");
    return { stdout: r.stdout ?? "", stderr: r.stderr ?? "", exitCode: 0 };
  }
}

/** argv contains these words in this order (after the common ceph args). */
export const has =
  (...words: string[]) =>
  (argv: readonly string[]): boolean => {
    let i = 0;
    for (const a of argv) if (a === words[i]) i++;
    return i === words.length;
  };

export function driverContext(runner: CommandRunner, backendName = "ceph"): DriverContext {
  const store = new Map<string, unknown>();
  return {
    logger: createJsonLogger({ level: "error" }),
    runner,
    locks: new InProcessLockManager(),
    stateDir: "/tmp",
    backendName,
    kv: {
      get: async (k) => store.get(k),
      set: async (k, v) => void store.set(k, v),
      delete: async (k) => void store.delete(k),
      list: async (p = "") => [...store.keys()].filter((k) => k.startsWith(p)),
    },
    nodeId: "test-node",
    baseDir: "/tmp",
  };
}
