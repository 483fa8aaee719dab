#!/usr/bin/env bash
# Stop the tgtd started by start.sh (only that one: identified by its pid file). Idempotent.
# PURGE=1 also removes the state folder (persisted targets and backing files).
set -euo pipefail
STATE="${TGT_STATE_DIR:-/tmp/cinderts-tgt}"
CPORT="${TGT_CONTROL_PORT:-13}"

if [ -f "$STATE/tgtd.pid" ]; then
  pid="$(cat "$STATE/tgtd.pid")"
  if kill -0 "$pid" 2>/dev/null; then
    # Drop live targets first (forced: sessions may be open), then ask tgtd to exit.
    for tid in $(tgtadm -C "$CPORT" --lld iscsi --op show --mode target 2>/dev/null | sed -n 's/^Target \([0-9]*\): .*/\1/p'); do
      tgtadm -C "$CPORT" --lld iscsi --op delete --mode target --tid "$tid" --force >/dev/null 2>&1 || true
    done
    tgtadm -C "$CPORT" --op delete --mode system >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$STATE/tgtd.pid"
  echo "[tgt-testbed] stopped" >&2
fi
if [ "${PURGE:-0}" = 1 ]; then rm -rf "$STATE"; fi
