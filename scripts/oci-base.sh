#!/usr/bin/env bash
# A base image for `skiff export --oci --base` (docs/export.md), built here since no registry is reachable:
# Debian bookworm minbase from this machine's own apt sources + this machine's .NET runtime, as the container
# benchmark builds it (bench/container/base-image.sh does the work), saved as an OCI archive.
#
#   scripts/oci-base.sh install   installs podman, buildah, runc and debootstrap with apt-get when missing (as root)
#   scripts/oci-base.sh build     installs, then builds the base once and prints the path of its OCI archive
#                                 (.tools/oci-base/base.oci.tar); run again, it only prints the path
#
# Everything is kept under .tools/oci-base/: the debootstrap rootfs (the slow part, reused across runs), the
# containers-storage root the image is committed to, and the archive. Delete that folder to start over.
# Settings: OCI_BASE_DIR (default .tools/oci-base), DEBIAN_MIRROR (default: the one apt uses here).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${OCI_BASE_DIR:-$root/.tools/oci-base}"
archive="$dir/base.oci.tar"

die() {
  echo "oci-base.sh: $*" >&2
  exit 1
}

install() {
  local need=() pkg
  for pkg in podman buildah runc debootstrap; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
  done
  [[ ${#need[@]} -eq 0 ]] && return
  [[ $(id -u) -eq 0 ]] || die "${need[*]} needed and missing; install them (Debian: apt-get install ${need[*]}) and run this again."
  # Two test processes may install at once: one installs, the other waits and then finds them there.
  mkdir -p "$root/.tools"
  exec 9>"$root/.tools/.oci-base-install.lock"
  flock 9
  need=()
  for pkg in podman buildah runc debootstrap; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
  done
  if [[ ${#need[@]} -gt 0 ]]; then
    echo "oci-base.sh: installing ${need[*]} with apt-get" >&2
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${need[@]}" >/dev/null \
      || die "apt-get install ${need[*]} failed (see above); check that apt reaches its sources, then run this again."
  fi
  flock -u 9
}

build() {
  install
  mkdir -p "$dir"
  exec 8>"$dir/.build.lock"
  flock 8
  if [[ ! -f "$archive" ]]; then
    # The benchmark's script: debootstrap (cached rootfs), runtime-deps packages, the machine's .NET runtime, one layer.
    SKIFF_BENCH_CACHE="$dir/cache" "$root/bench/container/base-image.sh" --root "$dir/storage"
    # shellcheck source=../bench/container/common.sh
    . "$root/bench/container/common.sh"
    store_setup "$dir/storage"
    rm -f "$archive.partial"
    pm save --quiet --format oci-archive -o "$archive.partial" "$SKIFF_BENCH_BASE_IMAGE" >&2
    mv "$archive.partial" "$archive"
  fi
  flock -u 8
  echo "$archive"
}

case "${1:-}" in
  install) install ;;
  build) build ;;
  *) die "usage: scripts/oci-base.sh install|build" ;;
esac
