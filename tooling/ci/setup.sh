#!/usr/bin/env bash
# Installs what a fresh machine of this kind lacks to build cinderts: pnpm (pinned) and the workspace's
# dependencies (better-sqlite3 compiles from source here: ~60 s). Testbeds install their own Debian packages.
set -euo pipefail
cd "$(dirname "$0")/../.."

PNPM_VERSION=10.20.0
if ! command -v pnpm >/dev/null || [ "$(pnpm --version)" != "$PNPM_VERSION" ]; then
  npm install -g "pnpm@$PNPM_VERSION" >/dev/null
fi
# Build tools for native addons (better-sqlite3); present on this machine kind, installed if not.
if ! command -v g++ >/dev/null || ! command -v make >/dev/null; then
  apt-get update -qq && apt-get install -y -qq build-essential python3 >/dev/null
fi
# librbd/librados headers let @cinderts/driver-rbd-native build its in-process transport at install
# (without them the RBD driver falls back to the rbd CLI).
if [ ! -e /usr/include/rbd/librbd.h ] || [ ! -e /usr/include/rados/librados.h ]; then
  (apt-get install -y -qq librbd-dev librados-dev >/dev/null 2>&1 ||
    (apt-get update -qq && apt-get install -y -qq librbd-dev librados-dev >/dev/null)) || echo "setup: librbd-dev unavailable; RBD uses the CLI" >&2
fi
pnpm install --frozen-lockfile
pnpm turbo run build --output-logs=errors-only
