#!/usr/bin/env bash
# A private PostgreSQL 15 for trying scale-out by hand or for benchmarks, in a folder of its own:
#   scripts/postgres.sh start DIR   initdb (first time) and start it; prints its URL
#   scripts/postgres.sh url DIR     prints its URL (postgres://postgres@127.0.0.1:PORT/skiff)
#   scripts/postgres.sh stop DIR    stops it (the data stays in DIR; delete DIR to forget it)
# Idempotent: starting a running one or stopping a stopped one does nothing. It listens on 127.0.0.1 only, on
# a port chosen once and kept in DIR/port, with its socket in DIR, trust authentication and fsync off (test
# data: it survives a restart, not a power cut). It acts only on the server whose data folder is DIR/data,
# never on any other PostgreSQL on the machine. Run as root, it runs PostgreSQL as the user postgres (initdb
# refuses root). Then: skiff server --metadata "$(scripts/postgres.sh url DIR)".
set -euo pipefail
bin=/usr/lib/postgresql/15/bin

usage() { echo "usage: $0 start|stop|url DIR" >&2; exit 2; }
[[ $# -eq 2 ]] || usage
command="$1"
mkdir -p "$2"
dir="$(cd "$2" && pwd)"
data="$dir/data"

as_postgres() {
  if [[ "$(id -u)" -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

url() { echo "postgres://postgres@127.0.0.1:$(cat "$dir/port")/skiff"; }

running() { [[ -f "$data/postmaster.pid" ]] && (cd / && as_postgres "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1); }

case "$command" in
  start)
    [[ -x "$bin/pg_ctl" ]] || { echo "PostgreSQL 15 is not installed at $bin" >&2; exit 1; }
    if [[ "$(id -u)" -eq 0 ]]; then
      chown postgres:postgres "$dir"
      runuser -u postgres -- test -w "$dir" || {
        echo "the user postgres cannot enter $dir (a parent folder is private); pick a folder under one it can enter, such as /tmp/skiff-pg" >&2
        exit 1
      }
    fi
    if [[ ! -f "$data/PG_VERSION" ]]; then
      (cd / && as_postgres "$bin/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 --no-instructions >"$dir/initdb.log")
    fi
    if [[ ! -f "$dir/port" ]]; then
      python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' >"$dir/port"
    fi
    if ! running; then
      (cd / && as_postgres "$bin/pg_ctl" -D "$data" -l "$dir/postgres.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -c port=$(cat "$dir/port") -c unix_socket_directories=$dir -c fsync=off -c max_connections=300" \
        start >/dev/null)
      # The database Skiff's URL names; CREATE DATABASE has no IF NOT EXISTS.
      if [[ -z "$(as_postgres "$bin/psql" -h 127.0.0.1 -p "$(cat "$dir/port")" -U postgres -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname = 'skiff'")" ]]; then
        as_postgres "$bin/psql" -h 127.0.0.1 -p "$(cat "$dir/port")" -U postgres -d postgres -qc "CREATE DATABASE skiff" >/dev/null
      fi
    fi
    url
    ;;
  stop)
    if running; then (cd / && as_postgres "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null); fi
    ;;
  url)
    [[ -f "$dir/port" ]] || { echo "no PostgreSQL was started in $dir; run: $0 start $dir" >&2; exit 1; }
    url
    ;;
  *) usage ;;
esac
