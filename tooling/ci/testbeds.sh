#!/usr/bin/env bash
# start | stop every testbed the test suite needs, and print the env file to source.
# Each testbed installs its own Debian packages when missing and keeps its state in one folder under /tmp.
set -euo pipefail
cd "$(dirname "$0")/../.."
ENV_FILE=${CINDERTS_TESTBED_ENV:-/tmp/cinderts-testbeds.env}
TESTBEDS=${CINDERTS_TESTBEDS:-"postgres sshd tgt ceph testhost"}

# Each start script writes its env file (KEY=VALUE or export lines) into its state folder.
env_file_of() {
  case "$1" in
    ceph) echo "${CINDERTS_CEPH_DIR:-/tmp/cinderts-ceph}/env" ;;
    postgres) echo "${PG_STATE_DIR:-/tmp/cinderts-pg}/env" ;;
    sshd) echo "${SSHD_STATE_DIR:-/tmp/cinderts-sshd}/env" ;;
    tgt) echo "${TGT_STATE_DIR:-/tmp/cinderts-tgt}/env" ;;
    testhost) echo "${TESTHOST_RUN_DIR:-/tmp/cinderts-testhost}/env" ;;
  esac
}

start_one() {
  case "$1" in
    testhost) tooling/testbeds/testhost/boot.sh start >&2 ;;
    *) tooling/testbeds/$1/start.sh >&2 ;;
  esac
  cat "$(env_file_of "$1")"
}

case "${1:-start}" in
  start)
    : >"$ENV_FILE"
    for t in $TESTBEDS; do
      started=$(date +%s)
      echo "testbed $t: starting" >&2
      start_one "$t" >>"$ENV_FILE"
      echo "testbed $t: up in $(( $(date +%s) - started )) s" >&2
    done
    echo "$ENV_FILE"
    ;;
  stop)
    for t in $TESTBEDS; do
      case "$t" in
        testhost) tooling/testbeds/testhost/boot.sh stop >&2 || true ;;
        *) tooling/testbeds/$t/stop.sh >&2 || true ;;
      esac
    done
    ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
