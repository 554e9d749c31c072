#!/usr/bin/env bash
# A container registry for `skiff export --push` (docs/export.md): Debian's docker-registry (distribution 2.8).
#
#   scripts/registry.sh install   installs docker-registry and apache2-utils (htpasswd) with apt-get when missing (as root)
#   scripts/registry.sh start     starts a private registry on 127.0.0.1, plain http, on a free port, its data in a new temp
#                                 folder; waits until it answers; prints its address (127.0.0.1:PORT), then its log file
#   scripts/registry.sh stop      stops it by PID (SIGTERM) and deletes its data
#
# Authentication, chosen by the environment of `start` (anonymous when none is set):
#   REGISTRY_USER, REGISTRY_PASSWORD    Basic authentication with one user (`auth: htpasswd`; the bcrypt hash is made by
#                                       htpasswd, the password read from its standard input, never from a command line)
#   REGISTRY_TOKEN_REALM, REGISTRY_TOKEN_SERVICE, REGISTRY_TOKEN_ISSUER, REGISTRY_TOKEN_ROOTCERTS
#                                       the Bearer token flow (`auth: token`): clients get a JWT from the realm, signed
#                                       by a key whose certificate is in the PEM file REGISTRY_TOKEN_ROOTCERTS
# REGISTRY_STATE is where PID, address and data folder are kept (default .tools/registry/run), so several registries can
# run side by side; REGISTRY_START_TIMEOUT the seconds to wait for it (default 60; it starts in well under a second).
# The package starts no service here (policy-rc.d), and its own service would listen on every interface and keep its
# data in /var/lib/docker-registry; this one runs as the caller with everything in its folder.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
state="${REGISTRY_STATE:-$root/.tools/registry/run}"

die() {
  echo "registry.sh: $*" >&2
  exit 1
}

# alive, free_port, stop_pid
source "$root/scripts/lib/services.sh"

install() {
  command -v docker-registry >/dev/null && command -v htpasswd >/dev/null && return
  [[ $(id -u) -eq 0 ]] || die "docker-registry and htpasswd are needed; install them (Debian: apt-get install --no-install-recommends docker-registry apache2-utils) and run this again."
  mkdir -p "$root/.tools"
  exec 9>"$root/.tools/.registry-install.lock"
  flock 9
  if ! command -v docker-registry >/dev/null || ! command -v htpasswd >/dev/null; then
    echo "registry.sh: installing docker-registry and apache2-utils with apt-get" >&2
    # Other test lanes may run apt-get (scripts/rabbitmq.sh, scripts/oci-base.sh): wait for dpkg's lock rather than fail.
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends docker-registry apache2-utils >/dev/null \
      || die "apt-get install docker-registry apache2-utils failed (see above); check that apt reaches its sources, then run this again."
  fi
  flock -u 9
}

start() {
  install
  mkdir -p "$state"
  if [[ -f "$state/pid" ]] && alive "$(cat "$state/pid")"; then
    die "one is already running (PID $(cat "$state/pid"), $(cat "$state/address" 2>/dev/null)); stop it first with: $0 stop"
  fi

  local data port
  data="$(mktemp -d "${TMPDIR:-/tmp}/skiff-registry.XXXXXX")"
  echo "$data" >"$state/data"
  port="$(free_port)"
  {
    echo "version: 0.1"
    echo "log: {level: info, formatter: text, accesslog: {disabled: false}}"
    echo "storage: {filesystem: {rootdirectory: $data/storage}, delete: {enabled: true}, redirect: {disable: true}}"
    echo "http: {addr: 127.0.0.1:$port, secret: $(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')}"
    if [[ -n "${REGISTRY_USER:-}" ]]; then
      [[ -n "${REGISTRY_PASSWORD:-}" ]] || die "REGISTRY_USER is set but REGISTRY_PASSWORD is not"
      printf '%s' "$REGISTRY_PASSWORD" | htpasswd -iBn "$REGISTRY_USER" >"$data/htpasswd" 2>/dev/null \
        || die "htpasswd could not hash the password of $REGISTRY_USER"
      echo "auth: {htpasswd: {realm: skiff-registry, path: $data/htpasswd}}"
    elif [[ -n "${REGISTRY_TOKEN_REALM:-}" ]]; then
      echo "auth: {token: {realm: \"$REGISTRY_TOKEN_REALM\", service: \"$REGISTRY_TOKEN_SERVICE\", issuer: \"$REGISTRY_TOKEN_ISSUER\", rootcertbundle: \"$REGISTRY_TOKEN_ROOTCERTS\"}}"
    fi
  } >"$data/config.yml"

  setsid docker-registry serve "$data/config.yml" </dev/null >"$data/registry.log" 2>&1 &
  echo $! >"$state/pid"
  echo "127.0.0.1:$port" >"$state/address"

  local timeout="${REGISTRY_START_TIMEOUT:-60}"
  local deadline=$((SECONDS + timeout))
  while ((SECONDS < deadline)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      cat "$state/address"
      echo "$data/registry.log"
      return
    fi
    alive "$(cat "$state/pid")" || { local log; log="$(tail -20 "$data/registry.log")"; stop; die "docker-registry exited before it was ready: $log"; }
    sleep 0.1
  done

  local log
  log="$(tail -n 20 "$data/registry.log" 2>/dev/null || true)"
  stop
  die "docker-registry did not listen within $timeout s (raise REGISTRY_START_TIMEOUT on a slow machine); its last log lines:
$log"
}

stop() {
  stop_pid "$state/pid"
  [[ -f "$state/data" ]] && rm -rf "$(cat "$state/data")"
  rm -f "$state/data" "$state/address"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  *) die "usage: $0 install|start|stop" ;;
esac
