import { describe, expect, it } from "vitest";
import { commandWords, parseCommandArgs, sizeArg } from "../src/args.js";
import { defaultDataDir, embeddedManifest } from "../src/manifest.js";
import { oneLine, safeText, table, toJson } from "../src/output.js";
import { progressBar, renderBar } from "../src/progress.js";

describe("argument parsing", () => {
  it("finds the command words around global flags", () => {
    expect(commandWords(["--manifest", "m.yaml", "--json", "volume", "list", "--backend", "x"], 2)).toEqual({
      words: ["volume", "list"],
      rest: ["--manifest", "m.yaml", "--json", "--backend", "x"],
    });
    expect(commandWords(["reconcile", "--json"], 1)).toEqual({ words: ["reconcile"], rest: ["--json"] });
    // A command flag's value is not a command word.
    expect(commandWords(["reconcile", "--backend", "default"], 2)).toEqual({ words: ["reconcile"], rest: ["--backend", "default"] });
    // --server and --token take a value wherever they stand: a URL or a token is never a command word.
    expect(commandWords(["--server", "http://127.0.0.1:8776", "--token", "t", "volume", "show", "id"], 2)).toEqual({
      words: ["volume", "show"],
      rest: ["--server", "http://127.0.0.1:8776", "--token", "t", "id"],
    });
    expect(commandWords(["--server=http://h:1", "backend", "list"], 2).words).toEqual(["backend", "list"]);
  });

  it("takes a negative number as the value of a string option", () => {
    const { values } = parseCommandArgs(["--size", "-1"], { size: { type: "string" } });
    expect(values.size).toBe("-1");
    expect(sizeArg(values)).toBe(-1);
  });

  it("passes fractional sizes on for core to refuse, and refuses text itself", () => {
    expect(sizeArg({ size: "1.5" })).toBe(1.5);
    expect(() => sizeArg({ size: "ten" })).toThrow(/--size: must be a whole number of GiB, not "ten"/);
    expect(() => sizeArg({ size: "" })).toThrow(/whole number/);
  });

  it("turns unknown options into one-line INVALID_ARGUMENT errors", () => {
    try {
      parseCommandArgs(["--nope"], {});
      expect.unreachable();
    } catch (e) {
      expect((e as { code: string }).code).toBe("INVALID_ARGUMENT");
      expect((e as Error).message).toBe("Unknown option '--nope'");
    }
  });
});

describe("embedded default manifest", () => {
  it("lives under $XDG_DATA_HOME/cinderts, else ~/.local/share/cinderts; a relative XDG_DATA_HOME is ignored", () => {
    expect(defaultDataDir({ XDG_DATA_HOME: "/x/data", HOME: "/home/u" })).toBe("/x/data/cinderts");
    expect(defaultDataDir({ HOME: "/home/u" })).toBe("/home/u/.local/share/cinderts");
    expect(defaultDataDir({ XDG_DATA_HOME: "rel", HOME: "/home/u" })).toBe("/home/u/.local/share/cinderts");
  });

  it("is a file backend named default with SQLite beside it, resolved from the data dir", () => {
    const m = embeddedManifest("/d/cinderts");
    expect(m.baseDir).toBe("/d/cinderts");
    expect(m.file).toBeUndefined();
    expect(m.manifest.persistence).toEqual({ plugin: "@cinderts/persistence-sqlite", options: { path: "/d/cinderts/cinderts.db" } });
    expect(m.manifest.backends).toEqual([{ name: "default", driver: "@cinderts/driver-file", options: { path: "/d/cinderts/volumes" } }]);
    expect(m.manifest.state_dir).toBe("/d/cinderts/state");
  });
});

describe("output", () => {
  it("escapes control characters so that printed text cannot drive the terminal", () => {
    expect(safeText("a\u001b[2Jb\u0007")).toBe("a\\u001b[2Jb\\u0007");
    expect(oneLine("first\n  second\r\nthird")).toBe("first | second | third");
    expect(toJson({ n: "x\u009by" }, false)).toBe('{"n":"x\\u009by"}');
    expect(JSON.parse(toJson({ n: "x\u009by" }))).toEqual({ n: "x\u009by" });
  });

  it("aligns tables and shows null as -", () => {
    expect(table([{ id: "a", name: null }, { id: "bbb", name: "n" }], [["id", "ID"], ["name", "NAME"]])).toBe(
      "ID   NAME\na    -\nbbb  n\n",
    );
  });
});

describe("progress bar", () => {
  it("renders percent, bytes and rate", () => {
    const line = renderBar("cloning", 512 * 1024 ** 2, 1024 ** 3, 80, 1000);
    expect(line).toMatch(/^cloning \[#+-+\]  50% 512\.0 MiB\/1\.0 GiB 512\.0 MiB\/s$/);
    expect(line.length).toBeLessThanOrEqual(80);
  });

  it("redraws at most every 100 ms but always draws the end, then ends the line", () => {
    const out: string[] = [];
    let t = 0;
    const bar = progressBar((s) => out.push(s), "copy", 60, () => t);
    bar.update(1, 100);
    t = 50;
    bar.update(2, 100); // throttled
    t = 150;
    bar.update(50, 100);
    bar.update(100, 100); // the end is always drawn
    bar.finish();
    expect(out.filter((s) => s.startsWith("\r"))).toHaveLength(4);
    expect(out.at(-1)).toBe("\n");
    expect(out.at(-2)).toContain("100%");
  });

  it("prints nothing when no progress came", () => {
    const out: string[] = [];
    progressBar((s) => out.push(s), "copy", 60).finish();
    expect(out).toEqual([]);
  });
});

describe("server errors back as core errors (--server)", () => {
  it("turns a problem body into the core class with the same JSON as the error in-process", async () => {
    const { ApiError } = await import("@cinderts/server/client");
    const { toCoreError } = await import("../src/remote.js");
    const { NotFoundError, HasDependentsError, InvalidArgumentError, StorageError } = await import("@cinderts/core");

    const local = new NotFoundError("volume", "v1");
    const api = new ApiError(404, "NOT_FOUND", local.message, { code: "NOT_FOUND", detail: local.message, resource: { kind: "volume", id: "v1" }, instance: "req-1" });
    const back = toCoreError(api) as InstanceType<typeof NotFoundError>;
    expect(back).toBeInstanceOf(NotFoundError);
    expect(back.name).toBe("NotFoundError");
    expect(back.toJSON()).toEqual(local.toJSON());
    expect(back.cause).toBe(api);

    const deps = [{ kind: "snapshot" as const, id: "s1" }];
    const has = toCoreError(
      new ApiError(409, "HAS_DEPENDENTS", "volume v1 has snapshots", { code: "HAS_DEPENDENTS", detail: "volume v1 has snapshots", data: { dependents: deps } }),
    ) as InstanceType<typeof HasDependentsError>;
    expect(has).toBeInstanceOf(HasDependentsError);
    expect(has.dependents).toEqual(deps);
    expect(has.toJSON()).toEqual(new HasDependentsError("volume v1 has snapshots", deps).toJSON());

    const bad = toCoreError(
      new ApiError(400, "INVALID_ARGUMENT", "size: too small", { code: "INVALID_ARGUMENT", detail: "size: too small", issues: [{ path: "body.size", message: "too small" }] }),
    ) as InstanceType<typeof InvalidArgumentError>;
    expect(bad).toBeInstanceOf(InvalidArgumentError);
    expect(bad.issues).toEqual([{ path: "body.size", message: "too small" }]);

    // Not an API answer (a network failure, a local error): passed on as it is.
    const net = new StorageError("BACKEND_ERROR", "cinderts server http://127.0.0.1:1: connect ECONNREFUSED");
    expect(toCoreError(net)).toBe(net);
  });
});
