#!/usr/bin/env node
// Builds build/rbd_native.node against the system's librbd/librados headers (Debian: librbd-dev, librados-dev)
// and Node's own N-API header. Never fails the install: when something is missing it records why in
// build/UNAVAILABLE and @cinderts/driver-rbd falls back to the rbd CLI. `--strict` makes a failure fatal.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const src = join(root, "src", "addon.cc");
const out = join(root, "build", "rbd_native.node");
const marker = join(root, "build", "UNAVAILABLE");
const strict = process.argv.includes("--strict");

function give_up(reason) {
  mkdirSync(dirname(marker), { recursive: true });
  writeFileSync(marker, reason + "\n");
  rmSync(out, { force: true });
  console.error(`@cinderts/driver-rbd-native: not built (${reason}); @cinderts/driver-rbd will use the rbd CLI`);
  process.exit(strict ? 1 : 0);
}

if (existsSync(out) && statSync(out).mtimeMs > statSync(src).mtimeMs && !process.argv.includes("--force")) process.exit(0);
if (process.platform !== "linux") give_up(`platform ${process.platform} is not supported`);

const headerDirs = [
  process.env.npm_config_nodedir && join(process.env.npm_config_nodedir, "include", "node"),
  join(dirname(dirname(process.execPath)), "include", "node"),
  "/usr/include/node",
  "/usr/local/include/node",
].filter(Boolean);
const napi = headerDirs.find((d) => existsSync(join(d, "node_api.h")));
if (!napi) give_up(`node_api.h not found in ${headerDirs.join(", ")}`);
for (const h of ["/usr/include/rbd/librbd.h", "/usr/include/rados/librados.h"]) {
  if (!existsSync(h)) give_up(`${h} missing: apt-get install librbd-dev librados-dev`);
}
const cxx = process.env.CXX || "c++";
mkdirSync(dirname(out), { recursive: true });
try {
  execFileSync(
    cxx,
    ["-O2", "-std=c++17", "-fPIC", "-shared", "-Wall", "-DNODE_GYP_MODULE_NAME=rbd_native", `-I${napi}`, src, "-o", out, "-lrbd", "-lrados"],
    { stdio: ["ignore", "inherit", "inherit"] },
  );
} catch (e) {
  give_up(`${cxx} failed: ${e.message.split("\n")[0]}`);
}
rmSync(marker, { force: true });
console.error(`@cinderts/driver-rbd-native: built ${out}`);
