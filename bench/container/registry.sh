#!/usr/bin/env bash
# registry.sh start ADDRESS:PORT DATA_DIR
# registry.sh stop DATA_DIR
#
# A local image registry for the container-deploy baseline: Debian's `docker-registry` (CNCF
# distribution v2.8), plain HTTP, no auth, blobs on the filesystem under DATA_DIR. Runs in the
# background; DATA_DIR holds its config (registry.yml), pid file (registry.pid) and log (registry.log)
# next to the storage tree it creates (DATA_DIR/docker/registry/v2).
#
# Works under `ip netns exec NS`: the registry binds ADDRESS:PORT in whatever network namespace this
# script runs in, and readiness is probed from that same namespace. The daemon is detached from our
# stdin/stdout/stderr so a caller reading our output is not kept waiting by it.
#
# Idempotent: `start` on a DATA_DIR whose registry is already running on the same address does
# nothing; `stop` on a stopped one does nothing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh
. "$here/common.sh"

usage() {
    echo "usage: $0 start ADDRESS:PORT DATA_DIR | $0 stop DATA_DIR" >&2
    exit 2
}

# The pid in the file is ours only if that process is still a docker-registry serving this DATA_DIR's
# config (pids get reused; never signal a stranger).
running_pid() {
    local data="$1" pid
    [[ -f "$data/registry.pid" ]] || return 1
    pid="$(cat "$data/registry.pid")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [[ -r "/proc/$pid/cmdline" ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "docker-registry serve $data/registry.yml" || return 1
    echo "$pid"
}

# Alive and not a zombie (a zombie's parent may be slow to reap it; it no longer serves anything).
alive() {
    local st
    st="$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" || return 1
    [[ -n "$st" && "$st" != Z && "$st" != X ]]
}

start() {
    local addr="$1" data="$2"
    [[ "$addr" =~ ^[^:]+:[0-9]+$ ]] || die "ADDRESS:PORT expected, got '$addr'"
    require_cmd docker-registry curl
    mkdir -p "$data"
    data="$(readlink -f "$data")"

    local pid
    if pid="$(running_pid "$data")"; then
        if grep -qx "  addr: $addr" "$data/registry.yml" && curl -fsS -o /dev/null --max-time 2 "http://$addr/v2/"; then
            log "registry already running on $addr (pid $pid); nothing to do"
            return 0
        fi
        die "a registry for $data is already running (pid $pid) on another address; stop it first"
    fi

    # Minimal distribution config: filesystem storage, plain HTTP, no auth section (= no auth),
    # deletes allowed so a benchmark can clean up, warnings only and no access log (a line per request
    # is noise, and file I/O the registry need not do), and a fixed http secret (it only signs upload
    # state; a fixed one avoids the "generated random secret" warning).
    cat >"$data/registry.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
  fields:
    service: skiff-bench-registry
storage:
  filesystem:
    rootdirectory: $data
  cache:
    blobdescriptor: inmemory
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: $addr
  secret: skiff-bench-not-a-secret
  headers:
    X-Content-Type-Options: [nosniff]
EOF

    # setsid: own session, so the caller's Ctrl-C / process-group kill does not take it down by
    # accident and `stop` is the one way to end it.
    setsid docker-registry serve "$data/registry.yml" </dev/null >>"$data/registry.log" 2>&1 &
    pid=$!
    echo "$pid" >"$data/registry.pid"

    # Ready when /v2/ answers 200 (API version check, no auth configured). 10 s is generous: it is
    # normally ready in well under 100 ms.
    local deadline=$(($(now_ms) + 10000))
    until curl -fsS -o /dev/null --max-time 1 "http://$addr/v2/" 2>/dev/null; do
        if ! alive "$pid"; then
            rm -f "$data/registry.pid"
            tail -n 20 "$data/registry.log" >&2 || true
            die "docker-registry exited during start-up (log: $data/registry.log)"
        fi
        if (($(now_ms) > deadline)); then
            kill "$pid" 2>/dev/null || true
            rm -f "$data/registry.pid"
            tail -n 20 "$data/registry.log" >&2 || true
            die "docker-registry not answering on http://$addr/v2/ after 10 s (log: $data/registry.log)"
        fi
        sleep 0.05
    done
    log "registry listening on http://$addr (pid $pid, data $data)"
}

stop() {
    local data="$1" pid
    [[ -d "$data" ]] || { log "no such data dir $data; nothing to stop"; return 0; }
    data="$(readlink -f "$data")"
    if ! pid="$(running_pid "$data")"; then
        rm -f "$data/registry.pid"
        log "no registry running for $data; nothing to do"
        return 0
    fi
    kill -TERM "$pid"
    # Give it 5 s to close connections, then force.
    local deadline=$(($(now_ms) + 5000))
    while alive "$pid"; do
        if (($(now_ms) > deadline)); then
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.05
    done
    rm -f "$data/registry.pid"
    log "registry stopped (pid $pid)"
}

[[ $# -ge 1 ]] || usage
case "$1" in
    start) [[ $# -eq 3 ]] || usage; start "$2" "$3" ;;
    stop) [[ $# -eq 2 ]] || usage; stop "$2" ;;
    *) usage ;;
esac
