import { existsSync } from "node:fs";
import { CLI } from "./helpers.js";

/** The scenarios drive the built CLI; a missing build is a setup error, not a reason to skip. */
export default function setup(): void {
  if (!existsSync(CLI)) {
    throw new Error(`${CLI} is missing: build the CLI first (pnpm --filter cinderts... build, or pnpm turbo run build)`);
  }
}
