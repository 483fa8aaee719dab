#!/usr/bin/env bash
# Stop the PostgreSQL that start.sh started (only that one: the cluster in $PG_STATE_DIR/data). Idempotent.
# PURGE=1 also removes the state folder.
set -euo pipefail
STATE="${PG_STATE_DIR:-/tmp/cinderts-pg}"
PGBIN="${PGBIN:-/usr/lib/postgresql/15/bin}"

if [ -f "$STATE/data/postmaster.pid" ] && kill -0 "$(head -1 "$STATE/data/postmaster.pid")" 2>/dev/null; then
  su postgres -s /bin/sh -c "$PGBIN/pg_ctl -D '$STATE/data' -m fast -w -t 30 stop" >/dev/null
  echo "[pg-testbed] stopped" >&2
fi
if [ "${PURGE:-0}" = 1 ]; then rm -rf "$STATE"; fi
