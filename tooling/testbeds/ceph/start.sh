#!/usr/bin/env bash
# Start (or reuse) a single-node Ceph cluster on 127.0.0.1 for the cinderts RBD tests.
#
# Recipe: /work/shared/testbeds/ceph.md (Debian 12, Ceph 16.2 Pacific): one mon, one mgr, one bluestore OSD
# on a sparse file, pool `volumes` (size 1). All state lives in $CINDERTS_CEPH_DIR (default /tmp/cinderts-ceph).
#
#   start.sh            bootstrap on first run, restart the daemons on existing state, or reuse a running cluster;
#                       prints `export ...` lines and writes them to $CINDERTS_CEPH_DIR/env
#   eval "$(tooling/testbeds/ceph/start.sh)"   # typical use
#
# Environment (all optional):
#   CINDERTS_CEPH_DIR            state folder (default /tmp/cinderts-ceph)
#   CINDERTS_CEPH_MON_PORT       monitor msgr2 port (default 3300); msgr1 port is CINDERTS_CEPH_MON_PORT_V1 (6789)
#   CINDERTS_CEPH_PORT_MIN/MAX   port range for osd/mgr (default 6800-7300)
#   CINDERTS_CEPH_POOL           pool to create (default volumes)
#   CINDERTS_CEPH_PAXOS_PROPOSE_INTERVAL  mon paxos_propose_interval (default 0.05, Ceph's default is 1.0).
#       Snapshot create/remove allocates a snap id through an OSDMap change and the monitor batches map updates
#       every paxos_propose_interval, so with the default each snap op costs ~1 s of waiting that has nothing to
#       do with the client. Tests and bench/rbd want to see client cost, so it is lowered here; set it to 1.0
#       to reproduce stock monitor behaviour.
#   CINDERTS_CEPH_TIMEOUT        seconds to wait for HEALTH_OK (default 120)
#
# Exported for the tests: CEPH_CONF (client.admin conf; names the keyring), CINDERTS_CEPH_DIR,
# CINDERTS_RBD_POOL, CINDERTS_CEPH_KEYRING.
#
# Output on stdout is only `export` lines; progress goes to stderr.
set -euo pipefail

D="${CINDERTS_CEPH_DIR:-/tmp/cinderts-ceph}"
MON_PORT="${CINDERTS_CEPH_MON_PORT:-3300}"
MON_PORT_V1="${CINDERTS_CEPH_MON_PORT_V1:-6789}"
PORT_MIN="${CINDERTS_CEPH_PORT_MIN:-6800}"
PORT_MAX="${CINDERTS_CEPH_PORT_MAX:-7300}"
POOL="${CINDERTS_CEPH_POOL:-volumes}"
PAXOS="${CINDERTS_CEPH_PAXOS_PROPOSE_INTERVAL:-0.05}"
TIMEOUT="${CINDERTS_CEPH_TIMEOUT:-120}"
C="$D/ceph.conf"
T0=$(date +%s.%N)

log() { printf '[ceph-testbed] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
elapsed() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }

[[ "$POOL" =~ ^[A-Za-z0-9_.-]+$ ]] || die "invalid pool name: $POOL"
for p in "$MON_PORT" "$MON_PORT_V1" "$PORT_MIN" "$PORT_MAX"; do [[ "$p" =~ ^[0-9]+$ ]] || die "invalid port: $p"; done
[[ "$PAXOS" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "invalid paxos interval: $PAXOS"

# ---------------------------------------------------------------- packages
ensure_packages() {
  # cluster daemons + CLI; qemu-storage-daemon (qemu-system-common) with its rbd driver (qemu-block-extra) and
  # fuse3 for @cinderts/connector-rbd's user-space attach; librbd-dev/librados-dev/g++ to build
  # @cinderts/driver-rbd-native (build it after this script has run).
  local want=(ceph-mon ceph-osd ceph-mgr ceph-common uuid-runtime qemu-utils qemu-block-extra qemu-system-common fuse3
    librbd-dev librados-dev g++)
  local missing=() p
  for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  [[ $(id -u) == 0 ]] || die "missing packages (${missing[*]}) and not root"
  log "installing ${missing[*]}"
  local apt=(apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}")
  if ! DEBIAN_FRONTEND=noninteractive "${apt[@]}" >&2; then
    log "install failed; running apt-get update once and retrying"
    apt-get -o DPkg::Lock::Timeout=600 update >&2
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" >&2
  fi
}

# ---------------------------------------------------------------- helpers
pid_alive() { [[ -s "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }
cephc() { timeout 30 ceph -c "$C" --connect-timeout 10 "$@"; }

print_env() {
  local envf="$D/env"
  {
    printf 'export CEPH_CONF=%q\n' "$C"
    printf 'export CINDERTS_CEPH_DIR=%q\n' "$D"
    printf 'export CINDERTS_RBD_POOL=%q\n' "$POOL"
    printf 'export CINDERTS_CEPH_KEYRING=%q\n' "$D/keyring"
  } > "$envf.tmp"
  mv "$envf.tmp" "$envf"
  cat "$envf"
}

wait_healthy() {
  local deadline=$(( $(date +%s) + TIMEOUT )) st
  while :; do
    if st=$(cephc status -f json 2>/dev/null) && /usr/bin/python3 - "$st" <<'PY'
import json, sys
s = json.loads(sys.argv[1])
pgs = s.get("pgmap", {}).get("pgs_by_state", [])
total = s.get("pgmap", {}).get("num_pgs", 0)
clean = sum(p["count"] for p in pgs if p["state_name"] == "active+clean")
ok = (s["osdmap"].get("num_up_osds", 0) >= 1 and s["mgrmap"].get("available")
      and total > 0 and clean == total and s["health"]["status"] == "HEALTH_OK")
sys.exit(0 if ok else 1)
PY
    then return 0; fi
    (( $(date +%s) < deadline )) || { log "cluster not healthy after ${TIMEOUT}s; last status:"; cephc status >&2 || true; die "timeout (logs in $D/log)"; }
    sleep 0.5
  done
}

write_conf() {
  local fsid="$1"
  cat > "$C" <<CONF
# cinderts RBD testbed (tooling/testbeds/ceph/start.sh). Loopback only.
[global]
fsid = $fsid
mon_initial_members = a
mon_host = [v2:127.0.0.1:$MON_PORT,v1:127.0.0.1:$MON_PORT_V1]
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
public_network = 127.0.0.0/8
ms_bind_ipv6 = false
ms_bind_port_min = $PORT_MIN
ms_bind_port_max = $PORT_MAX
auth_cluster_required = cephx
auth_service_required = cephx
auth_client_required = cephx
auth_allow_insecure_global_id_reclaim = false
keyring = $D/keyring
run_dir = $D/run
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
mon_allow_pool_size_one = true
mon_allow_pool_delete = true
mon_warn_on_pool_no_redundancy = false
mon_data_avail_warn = 2
mon_data_avail_crit = 1

[client]
# without these every rbd/ceph CLI process would create its own admin socket and log file
admin_socket =
log_file =

[mon]
mon_data = $D/mon/\$cluster-\$id
keyring = $D/mon/\$cluster-\$id/keyring
admin_socket = $D/run/\$name.asok
pid_file = $D/run/\$name.pid
log_file = $D/log/\$name.log
# see the header of start.sh: lowers the snapshot create/remove latency from ~1 s to ~0.1 s
paxos_propose_interval = $PAXOS

[mgr]
mgr_data = $D/mgr/\$cluster-\$id
keyring = $D/mgr/\$cluster-\$id/keyring
admin_socket = $D/run/\$name.asok
pid_file = $D/run/\$name.pid
log_file = $D/log/\$name.log

[osd]
osd_data = $D/osd/\$cluster-\$id
keyring = $D/osd/\$cluster-\$id/keyring
admin_socket = $D/run/\$name.asok
pid_file = $D/run/\$name.pid
log_file = $D/log/\$name.log
osd_objectstore = bluestore
bluestore_block_create = true
bluestore_block_size = 21474836480
osd_memory_target = 1073741824
CONF
}

start_daemons() {
  # order matters: the mgr and osd find the cluster through the mon
  pid_alive "$D/run/mon.a.pid" || { log "starting mon.a"; ceph-mon -c "$C" -i a; }
  pid_alive "$D/run/mgr.x.pid" || { log "starting mgr.x"; ceph-mgr -c "$C" -i x; }
  pid_alive "$D/run/osd.0.pid" || { log "starting osd.0"; ceph-osd -c "$C" -i 0 2>>"$D/log/osd.0.stderr"; }
}

bootstrap() {
  log "bootstrapping a new cluster in $D"
  rm -rf "$D"
  mkdir -p "$D"/{mon/ceph-a,mgr/ceph-x,osd/ceph-0,run,log}
  chmod 700 "$D"
  local fsid; fsid=$(uuidgen)
  write_conf "$fsid"
  ceph-authtool --create-keyring "$D/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool --create-keyring "$D/keyring" --gen-key -n client.admin \
    --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' --cap mds 'allow *' >/dev/null
  ceph-authtool "$D/mon.keyring" --import-keyring "$D/keyring" >/dev/null
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$MON_PORT,v1:127.0.0.1:$MON_PORT_V1]" "$D/monmap" >/dev/null
  ceph-mon -c "$C" -i a --mkfs --monmap "$D/monmap" --keyring "$D/mon.keyring"
  log "starting mon.a"; ceph-mon -c "$C" -i a
  cephc auth get-or-create mgr.x mon 'allow profile mgr' osd 'allow *' mds 'allow *' -o "$D/mgr/ceph-x/keyring"
  log "starting mgr.x"; ceph-mgr -c "$C" -i x
  local key ouuid id
  key=$(ceph-authtool --gen-print-key); ouuid=$(uuidgen)
  ( umask 077; printf '{"cephx_secret": "%s"}' "$key" > "$D/osd-secret.json" )
  id=$(cephc osd new "$ouuid" -i "$D/osd-secret.json")
  rm -f "$D/osd-secret.json"
  [[ "$id" == 0 ]] || die "expected osd id 0, got '$id'"
  ( umask 077; printf '[osd.0]\n\tkey = %s\n' "$key" > "$D/osd/ceph-0/keyring" )
  ceph-osd -c "$C" -i 0 --mkfs --osd-uuid "$ouuid" >>"$D/log/osd.0.mkfs.log" 2>&1 || { tail -20 "$D/log/osd.0.mkfs.log" >&2; die "osd mkfs failed"; }
  log "starting osd.0"; ceph-osd -c "$C" -i 0 2>>"$D/log/osd.0.stderr"
  cephc osd pool create "$POOL" 32 32 replicated >&2
  timeout 60 rbd -c "$C" pool init "$POOL"
  touch "$D/.bootstrapped"
}

# ---------------------------------------------------------------- main
ensure_packages

if [[ -f "$D/.bootstrapped" && -f "$C" ]]; then
  if pid_alive "$D/run/mon.a.pid" && pid_alive "$D/run/mgr.x.pid" && pid_alive "$D/run/osd.0.pid"; then
    log "reusing running cluster in $D"
  else
    log "restarting cluster on existing state in $D"
    start_daemons
  fi
else
  bootstrap
fi
wait_healthy
# Idempotent, and applied to reused clusters too so a changed CINDERTS_CEPH_PAXOS_PROPOSE_INTERVAL takes effect
# without a restart (the conf value only applies at mon start).
cephc config set mon paxos_propose_interval "$PAXOS" >&2
cephc osd pool ls | grep -qx "$POOL" || { cephc osd pool create "$POOL" 32 32 replicated >&2; timeout 60 rbd -c "$C" pool init "$POOL"; wait_healthy; }
log "ready in $(elapsed)s (HEALTH_OK, pool $POOL)"
print_env
