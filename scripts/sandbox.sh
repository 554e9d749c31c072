#!/usr/bin/env bash
# What an agent needs to sandbox its locations (docs/agent.md, "Isolation"): Debian's bubblewrap (bwrap) and
# util-linux's setpriv, and root to run each location as a user of its own.
#
#   scripts/sandbox.sh install   installs bubblewrap with apt-get when bwrap is missing (as root; apt-get update
#                                first); does nothing when it is there. Exits non-zero, saying why, when the agent
#                                could still not sandbox (not root, no apt-get).
#   scripts/sandbox.sh check     exits 0 when this machine can sandbox, else prints why and exits 1
set -euo pipefail

die() {
  echo "sandbox.sh: $*" >&2
  exit 1
}

check() {
  [[ $(id -u) -eq 0 ]] || die "not root: only root can run a location's processes as a user of its own; run the agent as root, or with --no-sandbox for code you trust"
  command -v bwrap >/dev/null || die "bwrap is missing; install Debian's bubblewrap (as root: $0 install)"
  command -v setpriv >/dev/null || die "setpriv is missing; install Debian's util-linux"
}

install() {
  if command -v bwrap >/dev/null && command -v setpriv >/dev/null; then
    check
    return
  fi

  [[ $(id -u) -eq 0 ]] || die "bwrap is missing and only root can install it (Debian: apt-get install bubblewrap); or run the agent with --no-sandbox for code you trust"
  command -v apt-get >/dev/null || die "bwrap is missing and there is no apt-get here; install bubblewrap with this system's package manager"
  # Two test processes may install at once: one installs, the other waits and then finds it done.
  exec 9>/tmp/.skiff-sandbox-install.lock
  flock 9
  if ! command -v bwrap >/dev/null; then
    echo "sandbox.sh: installing bubblewrap with apt-get" >&2
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends bubblewrap util-linux >/dev/null
  fi
  flock -u 9
  check
}

case "${1:-}" in
  install) install ;;
  check) check ;;
  *) die "usage: $0 install|check" ;;
esac
