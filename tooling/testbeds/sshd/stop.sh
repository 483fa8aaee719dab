#!/usr/bin/env bash
# Stops the sshd started by start.sh (only that one: the pid must run with this folder's config) and
# removes the password test user if start.sh created it. Idempotent. SSHD_PURGE=1 also deletes the
# state folder (keys included). Sessions already open keep their own child processes until they close;
# those children are ended too, since they would otherwise outlive the testbed.
set -euo pipefail

D="${SSHD_STATE_DIR:-/tmp/cinderts-sshd}"
PW_USER=cinderts-sshtest

log() { printf '[sshd-testbed] %s\n' "$*" >&2; }

if [[ -f "$D/sshd.pid" ]]; then
  pid="$(cat "$D/sshd.pid")"
  if [[ "$pid" =~ ^[0-9]+$ ]] && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "-f $D/sshd_config"; then
    # Per-connection children are forked by the listener: end those first, by parent pid.
    children="$(pgrep -P "$pid" || true)"
    kill -TERM "$pid" 2>/dev/null || true
    for c in $children; do kill -TERM "$c" 2>/dev/null || true; done
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    log "stopped (pid $pid)"
  else
    log "pid file does not name our sshd; nothing stopped"
  fi
  rm -f "$D/sshd.pid"
else
  log "not running"
fi
rm -f "$D/env"

if [[ -f "$D/.created-user" ]]; then
  userdel "$PW_USER" 2>/dev/null || true
  rm -f "$D/.created-user" "$D/password"
  rm -rf "$D/home"
fi

if [[ "${SSHD_PURGE:-0}" == 1 ]]; then
  rm -rf "$D"
fi
