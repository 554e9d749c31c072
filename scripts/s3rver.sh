#!/usr/bin/env bash
# The S3 protocol server the tests and local scale-out runs use: npm's s3rver, pinned by
# scripts/s3rver/package-lock.json (no registry host in it: npm takes the registry from this machine's config).
#
#   scripts/s3rver.sh install   installs node (apt) if missing, then s3rver into .tools/s3rver/; skipped when
#                               what is there was installed from the same lock file
#   scripts/s3rver.sh start     starts it on 127.0.0.1, a free port, a new temp folder; waits until it serves;
#                               prints its endpoint (http://127.0.0.1:PORT). S3RVER_PORT picks the port;
#                               S3RVER_ADDRESS another address (one a benchmark's network namespace owns).
#   scripts/s3rver.sh stop      stops the one `start` started (by its PID file) and deletes its folder
#
# Credentials: any access key / secret pair whose names match, e.g. AWS_ACCESS_KEY_ID=S3RVER
# AWS_SECRET_ACCESS_KEY=S3RVER. State (PID, endpoint, data folder) is in .tools/s3rver/run/, or in
# S3RVER_STATE when set, so several can run side by side.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source_dir="$root/scripts/s3rver"
tools="$root/.tools/s3rver"
state="${S3RVER_STATE:-$tools/run}"

# True while PID runs; a process that exited but was not yet reaped (a zombie) counts as gone.
alive() {
  local status
  status="$(ps -o stat= -p "$1" 2>/dev/null)" && [[ "$status" != Z* ]]
}

die() {
  echo "s3rver.sh: $*" >&2
  exit 1
}

ensure_node() {
  if command -v node >/dev/null && command -v npm >/dev/null; then
    return
  fi

  [[ $(id -u) -eq 0 ]] || die "node and npm are needed and missing; install them (Debian: apt-get install nodejs npm) and run this again."
  echo "s3rver.sh: installing node and npm with apt-get" >&2
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends nodejs npm >/dev/null
}

install() {
  ensure_node
  mkdir -p "$tools"
  # Two test processes may install at once: one installs, the other waits and then finds it done.
  exec 9>"$tools/.install.lock"
  flock 9
  local want
  want="$(cat "$source_dir/package.json" "$source_dir/package-lock.json" "$source_dir/serve.js" | sha256sum | cut -d' ' -f1)"
  if [[ -f "$tools/.installed" && "$(cat "$tools/.installed")" == "$want" && -d "$tools/node_modules/s3rver" ]]; then
    flock -u 9
    return
  fi

  rm -f "$tools/.installed"
  cp "$source_dir/package.json" "$source_dir/package-lock.json" "$source_dir/serve.js" "$tools/"
  # ci: exactly the lock file's versions and integrity hashes, or fail.
  (cd "$tools" && npm ci --omit-lockfile-registry-resolved --no-audit --no-fund --loglevel=error >/dev/null) \
    || die "npm ci in $tools failed (see above); check that npm reaches its registry, then run this again."
  echo "$want" >"$tools/.installed"
  flock -u 9
}

start() {
  install
  mkdir -p "$state"
  if [[ -f "$state/pid" ]] && alive "$(cat "$state/pid")"; then
    die "one is already running (PID $(cat "$state/pid"), $(cat "$state/endpoint" 2>/dev/null)); stop it first with: $0 stop"
  fi

  local data log
  data="$(mktemp -d "${TMPDIR:-/tmp}/s3rver.XXXXXX")"
  log="$state/log"
  echo "$data" >"$state/data"
  rm -f "$state/endpoint"
  setsid node "$tools/serve.js" "$data" "${S3RVER_PORT:-0}" </dev/null >"$log" 2>&1 &
  echo $! >"$state/pid"

  # serve.js prints its endpoint once it accepts connections.
  local deadline=$((SECONDS + 30))
  while ((SECONDS < deadline)); do
    if grep -q '^s3rver listening on ' "$log"; then
      sed -n 's/^s3rver listening on //p' "$log" | head -1 >"$state/endpoint"
      cat "$state/endpoint"
      return
    fi
    alive "$(cat "$state/pid")" || die "s3rver exited before it was ready: $(cat "$log")"
    sleep 0.1
  done

  stop
  die "s3rver was not ready within 30 s: $(cat "$log")"
}

stop() {
  [[ -f "$state/pid" ]] || return 0
  local pid
  pid="$(cat "$state/pid")"
  if alive "$pid"; then
    kill "$pid"
    local deadline=$((SECONDS + 10))
    while alive "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
    if alive "$pid"; then kill -9 "$pid"; fi
  fi
  [[ -f "$state/data" ]] && rm -rf "$(cat "$state/data")"
  rm -f "$state/pid" "$state/endpoint" "$state/data"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  *) die "usage: $0 install|start|stop" ;;
esac
