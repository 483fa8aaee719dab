import { readFileSync } from "node:fs";

/**
 * The configfs script (src/lio-configfs.sh, shipped in the package). Kept as a real shell file so it can be
 * linted and read as a whole; it is passed verbatim as `sh -c` text, values only as positional arguments.
 */
export const LIO_SCRIPT = readFileSync(new URL("../src/lio-configfs.sh", import.meta.url), "utf8");

export type LioOp = "export" | "allow" | "deny" | "remove" | "show" | "save";

export function lioArgv(root: string, saveFile: string | null, op: LioOp, args: readonly string[]): string[] {
  return ["sh", "-c", LIO_SCRIPT, "lio", root, saveFile ?? "", op, ...args];
}
