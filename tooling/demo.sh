#!/usr/bin/env bash
# Installs everything and runs the main job on the embedded default (file backend + SQLite):
# create a volume, write to it through a local attach, snapshot, clone from the snapshot, show the data, clean up.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tooling/ci/setup.sh >&2
exec node apps/cli/dist/cinderts.js demo "$@"
