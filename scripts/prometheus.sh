#!/usr/bin/env bash
# The Prometheus the metrics test scrapes a server with (docs/metrics.md): Debian's prometheus (2.42 on bookworm).
#
#   scripts/prometheus.sh install   installs prometheus with apt-get when it is missing (as root), then prints the
#                                   path of its executable; does nothing else when it is there
#
# It starts nothing: the package starts no service here (policy-rc.d), and the test runs its own Prometheus on
# 127.0.0.1 and a free port (a plain `prometheus` listens on every interface, on 9090).
set -euo pipefail

die() {
  echo "prometheus.sh: $*" >&2
  exit 1
}

install() {
  local binary
  binary="$(command -v prometheus || true)"
  if [[ -z "$binary" ]]; then
    [[ $(id -u) -eq 0 ]] || die "prometheus is needed and missing; install it (Debian: apt-get install prometheus) and run this again."
    # Two test processes may install at once: one installs, the other waits and then finds it there.
    exec 9>/tmp/skiff-prometheus-install.lock
    flock 9
    if ! command -v prometheus >/dev/null; then
      echo "prometheus.sh: installing prometheus with apt-get" >&2
      # The package lists are read again only when the package is not known yet (a fresh machine image).
      if ! apt-cache show prometheus >/dev/null 2>&1; then
        apt-get -o DPkg::Lock::Timeout=600 update -qq
      fi
      DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends prometheus >/dev/null \
        || die "apt-get install prometheus failed (see above); check that apt reaches its sources, then run this again."
    fi
    flock -u 9
    binary="$(command -v prometheus)" || die "prometheus was installed but is not on PATH."
  fi
  echo "$binary"
}

case "${1:-}" in
  install) install ;;
  *) die "usage: scripts/prometheus.sh install" ;;
esac
