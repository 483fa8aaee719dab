#!/usr/bin/env bash
# Starts a throwaway OpenSSH server on 127.0.0.1 for the ssh runner's tests. Idempotent.
#
# All state lives in SSHD_STATE_DIR (default /tmp/cinderts-sshd): sshd_config, host key, client keys,
# authorized_keys, known_hosts (plain and hashed), pid file, log and the env file. Listens on
# 127.0.0.1:${SSHD_PORT:-22022} only.
#
# Client keys (all authorized for root and for the password test user):
#   client_ed25519      OpenSSH-format ed25519, no passphrase
#   client_rsa          RSA 3072 in PEM (BEGIN RSA PRIVATE KEY), no passphrase
#   client_ed25519_enc  OpenSSH-format ed25519 protected by the passphrase in client_passphrase
# Password auth is enabled only for a dedicated user, cinderts-sshtest (created here if absent, removed by
# stop.sh when this script created it; root's password is never touched). SSHD_NO_PASSWORD_USER=1 skips it.
#
# After start: `. $SSHD_STATE_DIR/env` exports SSHD_HOST SSHD_PORT SSHD_USER SSHD_KEY SSHD_KEY_RSA
# SSHD_KEY_ENCRYPTED SSHD_KEY_PASSPHRASE_FILE SSHD_KNOWN_HOSTS SSHD_KNOWN_HOSTS_HASHED SSHD_HOST_PUBKEY
# SSHD_HOST_FINGERPRINT SSHD_PID_FILE SSHD_STATE_DIR [SSHD_PASSWORD_USER SSHD_PASSWORD_FILE].
set -euo pipefail

D="${SSHD_STATE_DIR:-/tmp/cinderts-sshd}"
PORT="${SSHD_PORT:-22022}"
PW_USER=cinderts-sshtest

log() { printf '[sshd-testbed] %s\n' "$*" >&2; }
die() { printf '[sshd-testbed] ERROR: %s\n' "$*" >&2; exit 1; }

if [[ ! -x /usr/sbin/sshd ]] || ! command -v ssh-keygen >/dev/null; then
  log "installing openssh-server"
  apt=(apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends openssh-server openssh-client)
  DEBIAN_FRONTEND=noninteractive "${apt[@]}" >&2 \
    || { apt-get -o DPkg::Lock::Timeout=600 update -q >&2 && DEBIAN_FRONTEND=noninteractive "${apt[@]}" >&2; }
fi

mkdir -p "$D"
# sshd reads authorized_keys as the logging-in user, so the folder must be traversable; private keys,
# the passphrase and the password are 600 each.
chmod 755 "$D"
cd "$D"

# Ours only when the pid file names a live sshd running with this folder's config.
ours_running() {
  local pid
  [[ -f "$D/sshd.pid" ]] || return 1
  pid="$(cat "$D/sshd.pid")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "-f $D/sshd_config"
}

listening() { [[ "$(ss -Htln "src 127.0.0.1:$PORT" 2>/dev/null | wc -l)" -gt 0 ]]; }

key() { [[ -f "$1" ]] || ssh-keygen -q "${@:2}" -f "$1"; }
key host_ed25519 -t ed25519 -N '' -C cinderts-sshd-host
key client_ed25519 -t ed25519 -N '' -C cinderts-sshd-client
key client_rsa -t rsa -b 3072 -m PEM -N '' -C cinderts-sshd-client-rsa
if [[ ! -f client_ed25519_enc ]]; then
  # A random passphrase per state folder; tests read it from the file.
  head -c 18 /dev/urandom | base64 | tr -d '/+=' > client_passphrase
  chmod 600 client_passphrase
  ssh-keygen -q -t ed25519 -N "$(cat client_passphrase)" -C cinderts-sshd-client-enc -f client_ed25519_enc
fi
cat client_ed25519.pub client_rsa.pub client_ed25519_enc.pub > authorized_keys
chmod 644 authorized_keys

# known_hosts in both forms ssh2 users meet: plain "[host]:port" and hashed "|1|salt|hash".
printf '[127.0.0.1]:%s %s\n' "$PORT" "$(cut -d' ' -f1,2 host_ed25519.pub)" > known_hosts
cp known_hosts known_hosts_hashed
ssh-keygen -q -H -f known_hosts_hashed >/dev/null 2>&1
rm -f known_hosts_hashed.old
FPR="$(ssh-keygen -l -E sha256 -f host_ed25519.pub | awk '{print $2}')"

pw_lines=""
if [[ "${SSHD_NO_PASSWORD_USER:-0}" != 1 ]]; then
  MARK="cinderts sshd testbed"
  if ! id "$PW_USER" >/dev/null 2>&1; then
    useradd --comment "$MARK" --home-dir "$D/home" --create-home --shell /bin/sh "$PW_USER"
    touch "$D/.created-user"
  elif [[ "$(getent passwd "$PW_USER" | cut -d: -f5)" == "$MARK" ]]; then
    # Left by an earlier run that was killed before stop.sh (the comment says it is ours): adopt it.
    mkdir -p "$D/home" && usermod --home "$D/home" "$PW_USER"
    touch "$D/.created-user"
  fi
  if [[ -f "$D/.created-user" ]]; then
    if [[ ! -f password ]]; then
      head -c 18 /dev/urandom | base64 | tr -d '/+=' > password
      chmod 600 password
    fi
    # chpasswd reads "user:password" from stdin, so the password never appears on a command line.
    printf '%s:%s\n' "$PW_USER" "$(cat password)" | chpasswd
    pw_lines="export SSHD_PASSWORD_USER=$PW_USER
export SSHD_PASSWORD_FILE=$D/password"
  else
    log "user $PW_USER exists but was not created by this script; password auth tests get no user"
  fi
fi

cat > sshd_config <<EOF
Port $PORT
ListenAddress 127.0.0.1
HostKey $D/host_ed25519
PidFile $D/sshd.pid
AuthorizedKeysFile $D/authorized_keys
# authorized_keys lives under /tmp (world-writable), which StrictModes would reject.
StrictModes no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
# Runner tests open many channels on one connection.
MaxSessions 64
MaxStartups 64:30:128
Subsystem sftp /usr/lib/openssh/sftp-server
LogLevel VERBOSE
Match User $PW_USER
  PasswordAuthentication yes
EOF

mkdir -p /run/sshd && chmod 755 /run/sshd   # privilege-separation directory sshd insists on
/usr/sbin/sshd -t -f "$D/sshd_config" || die "sshd config check failed"

if ours_running; then
  # Config may have changed (e.g. the password user); SIGHUP makes sshd re-exec with it, keeping its pid.
  pid="$(cat "$D/sshd.pid")"
  kill -HUP "$pid"
  for _ in $(seq 1 50); do [[ -f "$D/sshd.pid" ]] && listening && break; sleep 0.1; done
  listening || die "sshd did not come back after reload (log: $D/sshd.log)"
  log "already running (pid $pid), configuration reloaded"
else
  listening && die "127.0.0.1:$PORT is in use by something this script did not start; set SSHD_PORT"
  /usr/sbin/sshd -f "$D/sshd_config" -E "$D/sshd.log"
  for _ in $(seq 1 50); do listening && break; sleep 0.1; done
  listening || die "sshd did not listen on 127.0.0.1:$PORT (log: $D/sshd.log)"
  log "started on 127.0.0.1:$PORT (pid $(cat "$D/sshd.pid"))"
fi

cat > env <<EOF
export SSHD_STATE_DIR=$D
export SSHD_HOST=127.0.0.1
export SSHD_PORT=$PORT
export SSHD_USER=root
export SSHD_KEY=$D/client_ed25519
export SSHD_KEY_RSA=$D/client_rsa
export SSHD_KEY_ENCRYPTED=$D/client_ed25519_enc
export SSHD_KEY_PASSPHRASE_FILE=$D/client_passphrase
export SSHD_KNOWN_HOSTS=$D/known_hosts
export SSHD_KNOWN_HOSTS_HASHED=$D/known_hosts_hashed
export SSHD_HOST_PUBKEY=$D/host_ed25519.pub
export SSHD_HOST_FINGERPRINT=$FPR
export SSHD_PID_FILE=$D/sshd.pid
${pw_lines}
EOF
echo "$D/env"
