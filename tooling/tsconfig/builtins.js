// esbuild plugin: our own modules reach node's built-ins through process.getBuiltinModule instead of `import`.
//
// Why: an ESM `import { readFile } from "node:fs"` makes node build a synthetic module facade for `fs` — it
// enumerates every export, and for `fs` that evaluates the lazy `promises` and stream getters. For the modules a
// CLI run touches this costs ~6 ms of each cold start (measured: bench/cli/README.md). getBuiltinModule (Node
// 20.16+, below our engines floor) returns the same object that require() does, with no facade.
//
// Only the build output changes: sources keep ordinary imports, so the type checker and vitest see plain code.
// Line count is kept so that source maps still point at the right line.
import { readFile } from "node:fs/promises";
import { builtinModules } from "node:module";

const BUILTINS = new Set(builtinModules);
const isBuiltin = (id) => BUILTINS.has(id.startsWith("node:") ? id.slice(5) : id);

// `import <clause> from "<id>";` at the start of a line; the clause may span lines (`import {\n a,\n b\n}`).
const IMPORT = /^import\s+(?!type\s)([^;"']*?)\s+from\s+["']([^"']+)["'];?/gm;

/** `{ a, b as c, type T }` → `{ a, b: c }`, or undefined when every specifier is a type (the import is then dropped). */
function destructure(braces) {
  const names = braces
    .slice(1, -1)
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s && !s.startsWith("type "))
    .map((s) => s.replace(/\s+as\s+/, ": "));
  return names.length ? `{ ${names.join(", ")} }` : undefined;
}

/** The replacement for one import clause ("" when it names only types), or undefined to keep the statement. */
export function rewriteClause(clause, id) {
  const call = `process.getBuiltinModule(${JSON.stringify(id)})`;
  const ns = /^\*\s+as\s+([\w$]+)$/.exec(clause);
  if (ns) return `const ${ns[1]} = ${call};`;
  const m = /^([\w$]+)?\s*,?\s*(\{[^}]*\})?$/.exec(clause);
  if (!m || (!m[1] && !m[2])) return undefined;
  const parts = [];
  if (m[1]) parts.push(`const ${m[1]} = ${call};`);
  const d = m[2] && destructure(m[2]);
  if (d) parts.push(`const ${d} = ${call};`);
  return parts.join(" ");
}

export function rewriteBuiltinImports(source) {
  return source.replace(IMPORT, (statement, clause, id) => {
    if (!isBuiltin(id)) return statement;
    const replacement = rewriteClause(clause.trim(), id);
    if (replacement === undefined) return statement;
    const lost = (statement.match(/\n/g) ?? []).length;
    return replacement + "\n".repeat(lost);
  });
}

export const builtinsWithoutFacades = {
  name: "cinderts-builtins-without-facades",
  setup(build) {
    build.onLoad({ filter: /\.[cm]?ts$/ }, async (args) => {
      if (args.path.includes("/node_modules/")) return undefined;
      const source = await readFile(args.path, "utf8");
      return { contents: rewriteBuiltinImports(source), loader: "ts" };
    });
  },
};
