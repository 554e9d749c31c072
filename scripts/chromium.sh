#!/usr/bin/env bash
# The browser the web UI's tests drive: Debian's chromium (Playwright cannot download its own here).
#
#   scripts/chromium.sh install   installs chromium with apt-get when it is missing (as root), then prints
#                                 the path of its executable; does nothing else when it is there
set -euo pipefail

die() {
  echo "chromium.sh: $*" >&2
  exit 1
}

install() {
  local browser
  browser="$(command -v chromium || true)"
  if [[ -z "$browser" ]]; then
    [[ $(id -u) -eq 0 ]] || die "chromium is needed and missing; install it (Debian: apt-get install chromium) and run this again."
    # Two test processes may install at once: one installs, the other waits and then finds it there.
    exec 9>/tmp/skiff-chromium-install.lock
    flock 9
    if ! command -v chromium >/dev/null; then
      echo "chromium.sh: installing chromium with apt-get" >&2
      apt-get -o DPkg::Lock::Timeout=600 update -qq
      DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends chromium >/dev/null \
        || die "apt-get install chromium failed (see above); check that apt reaches its sources, then run this again."
    fi
    flock -u 9
    browser="$(command -v chromium)" || die "chromium was installed but is not on PATH."
  fi
  echo "$browser"
}

case "${1:-}" in
  install) install ;;
  *) die "usage: scripts/chromium.sh install" ;;
esac
