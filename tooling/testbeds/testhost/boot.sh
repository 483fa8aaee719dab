#!/usr/bin/env bash
# Boots the Linux storage test host (built by build.sh) under QEMU and manages it.
#
#   boot.sh start    build the image if needed, boot a clean guest, wait for SSH, write the env file
#   boot.sh stop     power the guest off (SIGTERM/SIGKILL to our own QEMU pid if it does not go)
#   boot.sh status   exit 0 when running and reachable over SSH, 3 when not running
#   boot.sh ssh ...  open ssh to the guest (arguments go to ssh as usual, e.g. a remote command string)
#   run.sh ARGV...   (separate helper) run one argv in the guest, every argument quoted
#
# Runtime state lives in $TESTHOST_RUN_DIR (default /tmp/cinderts-testhost): qcow2 overlay on the cached
# base image (recreated at every start, so each boot is clean), a 20 GiB data disk (/dev/vdb in the
# guest, also /dev/disk/by-id/virtio-testdata1, also recreated), a seed disk carrying this boot's SSH host
# key, authorized key and iSCSI initiator name, known_hosts pinning that host key, console.log and the
# env file:
#   TESTHOST_SSH_HOST TESTHOST_SSH_PORT TESTHOST_SSH_USER TESTHOST_SSH_KEY TESTHOST_SSH_KNOWN_HOSTS
#   TESTHOST_SSH_HOST_PUBKEY TESTHOST_SUDO_USER TESTHOST_ISCSI_PORTAL TESTHOST_INITIATOR_IQN
#   TESTHOST_DATA_DISK TESTHOST_SSH_CONFIG TESTHOST_QMP_SOCKET
# Use it with: . /tmp/cinderts-testhost/env   (export lines)
#
# Tunables: TESTHOST_SSH_PORT (10022), TESTHOST_ISCSI_PORT (13261), TESTHOST_MEM_MB (2048),
# TESTHOST_CPUS (2), TESTHOST_DATA_SIZE (20G), TESTHOST_BOOT_TIMEOUT (600 s: 25-40 s is typical, but TCG on a
# busy 2-core machine has taken over 4 minutes),
# ACCEL (tcg; "kvm" to try KVM — it does not work on the PVM machines this project runs on).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RUN="${TESTHOST_RUN_DIR:-/tmp/cinderts-testhost}"
SSH_PORT="${TESTHOST_SSH_PORT:-10022}"
ISCSI_PORT="${TESTHOST_ISCSI_PORT:-13261}"
MEM="${TESTHOST_MEM_MB:-2048}"
CPUS="${TESTHOST_CPUS:-2}"
DATA_SIZE="${TESTHOST_DATA_SIZE:-20G}"
BOOT_TIMEOUT="${TESTHOST_BOOT_TIMEOUT:-600}"
ACCEL="${ACCEL:-tcg}"
NAME=cinderts-testhost

log() { printf '[testhost] %s\n' "$*" >&2; }
die() { printf '[testhost] ERROR: %s\n' "$*" >&2; exit 1; }

# Our QEMU pid, only if the pid file names a live QEMU started with our -name (never a stranger).
qemu_pid() {
  local pid
  [[ -f "$RUN/qemu.pid" ]] || return 1
  pid="$(cat "$RUN/qemu.pid" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "-name $NAME" || return 1
  echo "$pid"
}

ssh_guest() {
  ssh -F "$RUN/ssh_config" testhost "$@"
}

port_busy() {
  # ss prints a header line; anything more means something listens there already.
  [[ "$(ss -Htln "sport = :$1" 2>/dev/null | wc -l)" -gt 0 ]]
}

ensure_host_packages() {
  local need=()
  command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
  command -v qemu-img >/dev/null || need+=(qemu-utils)
  command -v ssh >/dev/null || need+=(openssh-client)
  command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
  if ((${#need[@]})); then
    log "installing host packages: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends "${need[@]}" >&2 \
      || { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends "${need[@]}" >&2; }
  fi
}

write_seed() {
  # Fresh identity for this boot: host key (pinned in known_hosts below) and initiator name.
  local seed="$RUN/seed"
  rm -rf "$seed" "$RUN/seed.raw"
  mkdir -p "$seed/ssh"
  ssh-keygen -q -t ed25519 -N '' -C "testhost-host-$(date +%s)" -f "$seed/ssh/ssh_host_ed25519_key"
  cp "$RUN/id_ed25519.pub" "$seed/authorized_keys"
  local iqn
  iqn="iqn.2004-10.com.cinderts:testhost-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
  echo "$iqn" > "$seed/initiatorname"
  echo "$iqn" > "$RUN/initiatorname"
  cp "$seed/ssh/ssh_host_ed25519_key.pub" "$RUN/guest_host_ed25519.pub"
  truncate -s 8M "$RUN/seed.raw"
  mkfs.ext4 -q -F -L cinderts-seed -E root_owner=0:0 -d "$seed" "$RUN/seed.raw"
  # The private host key only needs to live on the seed disk.
  rm -rf "$seed"
  printf '[127.0.0.1]:%s %s\n' "$SSH_PORT" "$(cut -d' ' -f1,2 "$RUN/guest_host_ed25519.pub")" > "$RUN/known_hosts"
}

write_ssh_config() {
  cat > "$RUN/ssh_config" <<EOF
Host testhost
  HostName 127.0.0.1
  Port $SSH_PORT
  User root
  IdentityFile $RUN/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $RUN/known_hosts
  StrictHostKeyChecking yes
  BatchMode yes
  ConnectTimeout 10
  LogLevel ERROR
EOF
}

write_env() {
  cat > "$RUN/env.tmp" <<EOF
export TESTHOST_SSH_HOST=127.0.0.1
export TESTHOST_SSH_PORT=$SSH_PORT
export TESTHOST_SSH_USER=root
export TESTHOST_SSH_KEY=$RUN/id_ed25519
export TESTHOST_SSH_KNOWN_HOSTS=$RUN/known_hosts
export TESTHOST_SSH_HOST_PUBKEY=$RUN/guest_host_ed25519.pub
export TESTHOST_SSH_CONFIG=$RUN/ssh_config
export TESTHOST_SUDO_USER=cinder
export TESTHOST_ISCSI_PORTAL=127.0.0.1:$ISCSI_PORT
export TESTHOST_INITIATOR_IQN=$(cat "$RUN/initiatorname")
export TESTHOST_DATA_DISK=/dev/vdb
export TESTHOST_QMP_SOCKET=$RUN/qmp.sock
export TESTHOST_RUN_DIR=$RUN
EOF
  mv "$RUN/env.tmp" "$RUN/env"
}

cmd_start() {
  if pid="$(qemu_pid)"; then
    if ssh_guest true 2>/dev/null; then
      log "already running (pid $pid); env: $RUN/env"
      write_env
      return 0
    fi
    die "QEMU (pid $pid) runs but SSH does not answer; run '$0 stop' first"
  fi
  ensure_host_packages
  local img
  img="$("$HERE/build.sh")" || die "build failed"
  [[ -f "$img/.complete" ]] || die "no complete image at $img"

  for p in "$SSH_PORT" "$ISCSI_PORT"; do
    port_busy "$p" && die "127.0.0.1:$p is already in use (another test host or service?)"
  done

  mkdir -p "$RUN"
  rm -f "$RUN/env" "$RUN/console.log" "$RUN/qmp.sock" "$RUN/monitor.sock" "$RUN/qemu.pid"
  [[ -f "$RUN/id_ed25519" ]] || ssh-keygen -q -t ed25519 -N '' -C cinderts-testhost-client -f "$RUN/id_ed25519"
  write_seed
  write_ssh_config

  # Clean slate every boot: the overlay takes all root fs writes, the data disk holds the test VG.
  rm -f "$RUN/overlay.qcow2" "$RUN/data.qcow2"
  qemu-img create -q -f qcow2 -F raw -b "$img/base.raw" "$RUN/overlay.qcow2"
  qemu-img create -q -f qcow2 "$RUN/data.qcow2" "$DATA_SIZE"
  echo "$img" > "$RUN/image"

  local accel_args=(-machine q35,accel=tcg -cpu max)
  [[ "$ACCEL" == kvm ]] && accel_args=(-machine q35,accel=kvm -enable-kvm -cpu host,-arch-capabilities)

  local t0
  t0=$(date +%s.%N)
  qemu-system-x86_64 -name "$NAME" "${accel_args[@]}" -smp "$CPUS" -m "$MEM" \
    -kernel "$img/vmlinuz" -initrd "$img/initrd.img" \
    -append "root=/dev/vda rw console=ttyS0 net.ifnames=0" \
    -drive "file=$RUN/overlay.qcow2,if=none,id=root,format=qcow2,cache=unsafe,discard=unmap" \
    -device virtio-blk-pci,drive=root,serial=testroot \
    -drive "file=$RUN/data.qcow2,if=none,id=data1,format=qcow2,cache=unsafe,discard=unmap" \
    -device virtio-blk-pci,drive=data1,serial=testdata1 \
    -drive "file=$RUN/seed.raw,if=none,id=seed,format=raw,readonly=on" \
    -device virtio-blk-pci,drive=seed,serial=cinderts-seed \
    -netdev "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:$SSH_PORT-:22,hostfwd=tcp:127.0.0.1:$ISCSI_PORT-:3260" \
    -device virtio-net-pci,netdev=n0 -device virtio-rng-pci \
    -device virtio-scsi-pci,id=scsi0 \
    -device pcie-root-port,id=hp1,chassis=11 -device pcie-root-port,id=hp2,chassis=12 \
    -device pcie-root-port,id=hp3,chassis=13 -device pcie-root-port,id=hp4,chassis=14 \
    -display none -serial "file:$RUN/console.log" \
    -qmp "unix:$RUN/qmp.sock,server=on,wait=off" -monitor "unix:$RUN/monitor.sock,server=on,wait=off" \
    -pidfile "$RUN/qemu.pid" -daemonize \
    || die "qemu-system-x86_64 failed to start"

  log "booting (accel $ACCEL, pid $(cat "$RUN/qemu.pid")), waiting up to ${BOOT_TIMEOUT}s for SSH on 127.0.0.1:$SSH_PORT"
  local deadline=$(( $(date +%s) + BOOT_TIMEOUT ))
  until ssh_guest true 2>/dev/null; do
    if ! qemu_pid >/dev/null; then
      tail -n 40 "$RUN/console.log" >&2 || true
      die "QEMU exited during boot (console: $RUN/console.log)"
    fi
    if grep -q -E 'Kernel panic|end Kernel panic|emergency mode' "$RUN/console.log" 2>/dev/null; then
      tail -n 40 "$RUN/console.log" >&2 || true
      cmd_stop || true
      die "guest failed to boot (console: $RUN/console.log)"
    fi
    if (( $(date +%s) >= deadline )); then
      tail -n 40 "$RUN/console.log" >&2 || true
      cmd_stop || true
      die "no SSH after ${BOOT_TIMEOUT}s (console: $RUN/console.log)"
    fi
    sleep 1
  done
  local secs
  secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
  echo "$secs" > "$RUN/boot-seconds"
  # The seed must have taken: the guest reports exactly the initiator name we generated.
  local guest_iqn
  guest_iqn="$(ssh_guest cat /etc/iscsi/initiatorname.iscsi | sed -n 's/^InitiatorName=//p')"
  [[ "$guest_iqn" == "$(cat "$RUN/initiatorname")" ]] \
    || die "guest initiator name '$guest_iqn' is not the seeded one"
  write_env
  log "up in ${secs}s; env file: $RUN/env"
}

cmd_stop() {
  local pid
  if ! pid="$(qemu_pid)"; then
    log "not running"
    rm -f "$RUN/env"
    return 0
  fi
  ssh_guest -o ConnectTimeout=5 systemctl poweroff >/dev/null 2>&1 || true
  for _ in $(seq 1 30); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "guest did not power off; SIGTERM to QEMU pid $pid"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  fi
  # The disks are recreated at every start; do not leave gigabytes of dirty qcow2 behind.
  rm -f "$RUN/env" "$RUN/qemu.pid" "$RUN/overlay.qcow2" "$RUN/data.qcow2" "$RUN/seed.raw"
  log "stopped"
}

cmd_status() {
  local pid
  if ! pid="$(qemu_pid)"; then
    echo "not running"
    return 3
  fi
  if ssh_guest true 2>/dev/null; then
    echo "running (pid $pid), ssh 127.0.0.1:$SSH_PORT, iscsi 127.0.0.1:$ISCSI_PORT, env $RUN/env"
    return 0
  fi
  echo "QEMU running (pid $pid) but SSH not answering"
  return 1
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  ssh) shift; [[ -f "$RUN/ssh_config" ]] || die "not started"; exec ssh -F "$RUN/ssh_config" testhost "$@" ;;
  *) echo "usage: $0 start|stop|status|ssh [ssh args...]" >&2; exit 2 ;;
esac
