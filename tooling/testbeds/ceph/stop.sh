#!/usr/bin/env bash
# Stop the cluster started by start.sh: signals only the pids in its own pid files (osd, then mgr, then mon).
#   stop.sh [--purge]    --purge also deletes the state folder ($CINDERTS_CEPH_DIR, default /tmp/cinderts-ceph)
set -euo pipefail
D="${CINDERTS_CEPH_DIR:-/tmp/cinderts-ceph}"
PURGE=0
for a in "$@"; do
  case "$a" in
    --purge) PURGE=1 ;;
    *) echo "usage: $0 [--purge]" >&2; exit 2 ;;
  esac
done
log() { printf '[ceph-testbed] %s\n' "$*" >&2; }

# Only a pid whose command line names our own conf is ours; a stale pid file may point at a recycled pid.
ours() {
  local pid="$1"
  [[ -r "/proc/$pid/cmdline" ]] && tr '\0' '\n' < "/proc/$pid/cmdline" | grep -qxF "$D/ceph.conf"
}

stop_one() {
  local name="$1" pf="$D/run/$1.pid" pid i
  [[ -s "$pf" ]] || return 0
  pid=$(cat "$pf")
  if [[ "$pid" =~ ^[0-9]+$ ]] && ours "$pid"; then
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 300; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then log "$name did not exit in 30 s, sending KILL"; kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$pf"
}

if [[ -d "$D" ]]; then
  stop_one osd.0
  stop_one mgr.x
  stop_one mon.a
fi
if ((PURGE)); then
  [[ "$D" == /tmp/* || -f "$D/.bootstrapped" ]] || { log "refusing to purge $D (not under /tmp and not a testbed folder)"; exit 1; }
  log "purging $D"
  rm -rf "$D"
fi
