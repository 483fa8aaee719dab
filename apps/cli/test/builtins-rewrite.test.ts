import { describe, expect, it } from "vitest";
import { rewriteBuiltinImports } from "../../../tooling/tsconfig/builtins.js";

// The build step behind every package's dist (tooling/tsconfig/builtins.js): what it rewrites and what it leaves.
describe("built-in imports rewritten for the build", () => {
  it("turns named, aliased, default and namespace imports of built-ins into getBuiltinModule calls", () => {
    const src = [
      'import { readFile, writeFile as put } from "node:fs/promises";',
      'import path from "node:path";',
      'import * as os from "os";',
      "const x = 1;",
    ].join("\n");
    expect(rewriteBuiltinImports(src)).toBe(
      [
        'const { readFile, writeFile: put } = process.getBuiltinModule("node:fs/promises");',
        'const path = process.getBuiltinModule("node:path");',
        'const os = process.getBuiltinModule("os");',
        "const x = 1;",
      ].join("\n"),
    );
  });

  it("keeps the line count of a multi-line import and drops type-only specifiers", () => {
    const src = 'import {\n  spawn,\n  type ChildProcess,\n} from "node:child_process";\nspawn("true");';
    const out = rewriteBuiltinImports(src);
    expect(out.split("\n")).toHaveLength(src.split("\n").length);
    expect(out).toContain('const { spawn } = process.getBuiltinModule("node:child_process");');
    expect(out.endsWith('spawn("true");')).toBe(true);
  });

  it("leaves type imports, packages and relative modules alone", () => {
    const src = ['import type { Stats } from "node:fs";', 'import { z } from "@cinderts/core";', 'import { main } from "./main.js";'].join("\n");
    expect(rewriteBuiltinImports(src)).toBe(src);
  });

  it("drops an import of a built-in that names only types (it would otherwise stay as a bare import)", () => {
    expect(rewriteBuiltinImports('import { type Dirent } from "node:fs";\nlet d: Dirent;')).toBe("\nlet d: Dirent;");
  });
});
