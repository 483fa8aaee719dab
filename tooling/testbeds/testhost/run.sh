#!/usr/bin/env bash
# Runs one command in the booted test host, as root, with each argument passed through verbatim:
#   run.sh pvcreate /dev/vdb
#   run.sh sh -c 'echo "$1" > /tmp/x' _ 'any text'
# ssh hands the remote side a single string that the login shell parses again, so every argument is
# single-quoted here (a ' inside becomes '\''). stdin is forwarded; the exit code is the command's.
# Set TESTHOST_USER=cinder to log in as the unprivileged sudo user instead of root.
set -euo pipefail
RUN="${TESTHOST_RUN_DIR:-/tmp/cinderts-testhost}"
[[ -f "$RUN/ssh_config" && -f "$RUN/env" ]] || { echo "test host not started (no $RUN/env)" >&2; exit 2; }
(($#)) || { echo "usage: $0 ARGV..." >&2; exit 2; }
q=""
for a in "$@"; do
  q+=" '${a//\'/\'\\\'\'}'"
done
exec ssh -F "$RUN/ssh_config" ${TESTHOST_USER:+-l "$TESTHOST_USER"} testhost "${q# }"
