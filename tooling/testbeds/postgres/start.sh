#!/usr/bin/env bash
# Start a throwaway PostgreSQL 15 on 127.0.0.1 for cinderts tests. Idempotent.
#
# All state (data dir, log, socket, password file, env file) lives in one folder: PG_STATE_DIR
# (default /tmp/cinderts-pg). Listens on 127.0.0.1:${PG_PORT:-15432} only; the Unix socket stays in the state
# folder so it never clashes with a system cluster. fsync/synchronous_commit/full_page_writes are off: this
# cluster is for tests and benchmarks, its data is disposable.
# After start: `source $PG_STATE_DIR/env` exports CINDERTS_PG_URL (role cinderts, database cinderts) and
# CINDERTS_PG_ADMIN_URL (superuser, for tests that create scratch databases).
set -euo pipefail

STATE="${PG_STATE_DIR:-/tmp/cinderts-pg}"
PORT="${PG_PORT:-15432}"
PGBIN="${PGBIN:-/usr/lib/postgresql/15/bin}"
ADMIN_PW="${PG_ADMIN_PASSWORD:-cinderts-admin-pw}"
APP_PW="${PG_APP_PASSWORD:-cinderts-pw}"

log() { printf '[pg-testbed] %s\n' "$*" >&2; }

ensure_packages() {
  [ -x "$PGBIN/initdb" ] && command -v psql >/dev/null && return 0
  log "installing postgresql-15"
  local apt=(apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends)
  if ! DEBIAN_FRONTEND=noninteractive "${apt[@]}" postgresql-15 postgresql-client-15; then
    apt-get -o DPkg::Lock::Timeout=600 update -q
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" postgresql-15 postgresql-client-15
  fi
}

# The Debian package creates the postgres user; a bare machine with only the binaries may lack it.
ensure_user() {
  id postgres >/dev/null 2>&1 || useradd --system --home-dir "$STATE" --shell /usr/sbin/nologin postgres
}

as_pg() { su postgres -s /bin/sh -c "$1"; }

ready() { "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" 2>/dev/null; }

ours_running() {
  [ -f "$STATE/data/postmaster.pid" ] && kill -0 "$(head -1 "$STATE/data/postmaster.pid")" 2>/dev/null
}

ensure_packages
ensure_user
mkdir -p "$STATE"
chown postgres:postgres "$STATE"
chmod 700 "$STATE"

if [ ! -f "$STATE/data/PG_VERSION" ]; then
  printf '%s' "$ADMIN_PW" >"$STATE/pwfile"
  chown postgres "$STATE/pwfile" && chmod 600 "$STATE/pwfile"
  as_pg "$PGBIN/initdb -N -D '$STATE/data' -U postgres -E UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 --pwfile='$STATE/pwfile'" >"$STATE/initdb.log" 2>&1 \
    || { cat "$STATE/initdb.log" >&2; exit 1; }
  rm -f "$STATE/pwfile"
  log "initialised $STATE/data"
fi

if ours_running && ready; then
  log "already running (pid $(head -1 "$STATE/data/postmaster.pid"))"
else
  if ready; then
    echo "127.0.0.1:$PORT is served by a PostgreSQL this script did not start; set PG_PORT" >&2
    exit 1
  fi
  as_pg "$PGBIN/pg_ctl -D '$STATE/data' -l '$STATE/postgres.log' -w -t 60 -o \"-c listen_addresses=127.0.0.1 -p $PORT -c unix_socket_directories=$STATE -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300\" start" >/dev/null
  log "started on 127.0.0.1:$PORT (pid $(head -1 "$STATE/data/postmaster.pid"))"
fi

# Application role and database (idempotent). Over the socket in $STATE with trust auth: no password on argv.
psql_admin() { as_pg "psql -X -q -v ON_ERROR_STOP=1 -h '$STATE' -p $PORT -U postgres -d postgres $*"; }
if [ "$(psql_admin "-Atc \"select 1 from pg_roles where rolname='cinderts'\"")" != 1 ]; then
  psql_admin "-c \"create role cinderts login createdb password '$APP_PW'\""
fi
if [ "$(psql_admin "-Atc \"select 1 from pg_database where datname='cinderts'\"")" != 1 ]; then
  psql_admin "-c \"create database cinderts owner cinderts\""
fi

cat >"$STATE/env" <<ENV
export PG_STATE_DIR=$STATE
export CINDERTS_PG_URL=postgres://cinderts:$APP_PW@127.0.0.1:$PORT/cinderts
export CINDERTS_PG_ADMIN_URL=postgres://postgres:$ADMIN_PW@127.0.0.1:$PORT/postgres
ENV
chmod 600 "$STATE/env"
cat "$STATE/env"
