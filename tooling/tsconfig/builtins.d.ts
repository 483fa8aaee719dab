import type { Plugin } from "esbuild";

/** The replacement for one import clause of a built-in, or undefined to keep the statement as it is. */
export function rewriteClause(clause: string, id: string): string | undefined;
/** Source with its ESM imports of node built-ins turned into process.getBuiltinModule calls, line count kept. */
export function rewriteBuiltinImports(source: string): string;
export const builtinsWithoutFacades: Plugin;
