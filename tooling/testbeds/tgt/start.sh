#!/usr/bin/env bash
# Start a user-space iSCSI target (tgtd) on 127.0.0.1 for cinderts tests. Idempotent.
#
# State (pid file, targets.conf, per-volume conf fragments, backing files, env file) lives in one folder:
#   TGT_STATE_DIR (default /tmp/cinderts-tgt). Portal 127.0.0.1:${TGT_PORT:-13260}, control port ${TGT_CONTROL_PORT:-13}.
# After start: `source $TGT_STATE_DIR/env` exports TGT_CONTROL_PORT, TGT_PORTAL, TGT_CONF_DIR, TGT_CONF, TGT_STATE_DIR.
#
# Persistence: targets written as fragments into $TGT_CONF_DIR (included by $TGT_CONF) are restored on every
# start with `tgt-admin -e`, the same way the distribution's tgt service restores /etc/tgt/targets.conf.
set -euo pipefail

STATE="${TGT_STATE_DIR:-/tmp/cinderts-tgt}"
CPORT="${TGT_CONTROL_PORT:-13}"
PORT="${TGT_PORT:-13260}"
PORTAL="127.0.0.1:${PORT}"

log() { printf '[tgt-testbed] %s\n' "$*" >&2; }

ensure_packages() {
  # qemu-storage-daemon (user-space attach through a FUSE export) ships in qemu-system-common on Debian 12;
  # fusermount3 (fuse3) unmounts the export.
  local missing=()
  command -v tgtd >/dev/null || missing+=(tgt)
  command -v iscsi-inq >/dev/null || missing+=(libiscsi-bin)
  command -v qemu-img >/dev/null || missing+=(qemu-utils)
  [ -e /usr/lib/x86_64-linux-gnu/qemu/block-iscsi.so ] || missing+=(qemu-block-extra)
  command -v qemu-storage-daemon >/dev/null || missing+=(qemu-system-common)
  command -v fusermount3 >/dev/null || missing+=(fuse3)
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  local apt=(apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends)
  if ! DEBIAN_FRONTEND=noninteractive "${apt[@]}" "${missing[@]}"; then
    apt-get -o DPkg::Lock::Timeout=600 update -q
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" "${missing[@]}"
  fi
}

running() {
  [ -f "$STATE/tgtd.pid" ] && kill -0 "$(cat "$STATE/tgtd.pid")" 2>/dev/null
}

ensure_packages
mkdir -p "$STATE/conf.d" "$STATE/luns" /var/run/tgtd
chmod 700 "$STATE/conf.d"
[ -f "$STATE/targets.conf" ] || printf 'default-driver iscsi\ninclude %s/conf.d/*.conf\n' "$STATE" >"$STATE/targets.conf"

if running; then
  log "tgtd already running (pid $(cat "$STATE/tgtd.pid"))"
else
  if [ -S "/var/run/tgtd/socket.$CPORT" ] && tgtadm -C "$CPORT" --op show --mode system >/dev/null 2>&1; then
    echo "control port $CPORT is served by a tgtd this script did not start; set TGT_CONTROL_PORT" >&2
    exit 1
  fi
  rm -f "$STATE/tgtd.pid"
  # tgtd daemonizes itself; --iscsi portal=... keeps it off 0.0.0.0.
  tgtd -C "$CPORT" --pid-file "$STATE/tgtd.pid" --iscsi "portal=$PORTAL"
  for _ in $(seq 1 100); do
    tgtadm -C "$CPORT" --op show --mode system >/dev/null 2>&1 && break
    sleep 0.1
  done
  tgtadm -C "$CPORT" --op show --mode system >/dev/null
  # Restore persisted targets (no-op when conf.d is empty).
  if ls "$STATE"/conf.d/*.conf >/dev/null 2>&1; then
    tgt-admin -C "$CPORT" -c "$STATE/targets.conf" -e
  fi
  log "tgtd started on $PORTAL (control port $CPORT, pid $(cat "$STATE/tgtd.pid"))"
fi

cat >"$STATE/env" <<ENV
export TGT_STATE_DIR=$STATE
export TGT_CONTROL_PORT=$CPORT
export TGT_PORTAL=$PORTAL
export TGT_CONF_DIR=$STATE/conf.d
export TGT_CONF=$STATE/targets.conf
export TGT_LUN_DIR=$STATE/luns
ENV
cat "$STATE/env"
