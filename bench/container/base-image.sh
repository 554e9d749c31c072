#!/usr/bin/env bash
# base-image.sh [--root STORAGE_ROOT]
#
# Builds, once, the local base image localhost/skiff-bench-base:bookworm-dotnet10 that every app image
# of the container-deploy baseline is built FROM. No registry is reachable here, so instead of pulling
# mcr.microsoft.com/dotnet/runtime:10.0 we make the equivalent ourselves:
#   Debian bookworm minbase (debootstrap, cached on disk)
#   + the runtime-deps packages Microsoft's image has (ca-certificates, libicu72, libssl3, tzdata, ...)
#   + this machine's .NET runtime: the `dotnet` host, host/fxr and shared/Microsoft.NETCore.App/<ver>
#     (everything a framework-dependent console app needs; ASP.NET Core is not needed and left out).
# The result is committed as a single layer with a fixed timestamp, so rebuilding it from the same
# rootfs cache and runtime gives the same layer digest.
#
# Idempotent: does nothing if the image already exists in the storage root; reuses the rootfs cache
# when it is complete (a marker file is written only after debootstrap and cleanup succeeded).
#
# Environment: SKIFF_BENCH_CACHE (default /var/cache/skiff-bench), DEBIAN_MIRROR (default: the Debian
# mirror this machine's own apt configuration uses for bookworm), SKIFF_BENCH_STORAGE_DRIVER (see common.sh).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh
. "$here/common.sh"

usage() { echo "usage: $0 [--root STORAGE_ROOT]" >&2; exit 2; }

root=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --root) [[ $# -ge 2 ]] || usage; root="$2"; shift 2 ;;
        -h | --help) usage ;;
        *) echo "unknown argument: $1" >&2; usage ;;
    esac
done

require_root
require_cmd podman buildah debootstrap flock
store_setup "$root"

cache="${SKIFF_BENCH_CACHE:-/var/cache/skiff-bench}"
# The mirror apt already uses here (deb822 .sources or one-line sources.list), for the suite we bootstrap:
# no registry or mirror name is written into the repository.
apt_mirror() {
    local suite="$1"
    {
        awk -v suite="$suite" '
            /^[[:space:]]*$/ { if (uri != "" && suites ~ "(^| )" suite "( |$)") { print uri; exit } uri = ""; suites = ""; next }
            $1 == "URIs:" { uri = $2 }
            $1 == "Suites:" { $1 = ""; suites = $0 " " }
            END { if (uri != "" && suites ~ "(^| )" suite "( |$)") print uri }
        ' /etc/apt/sources.list.d/*.sources 2>/dev/null || true
        awk -v suite="$suite" '$1 == "deb" && $0 !~ /\[/ && $3 == suite { print $2 }' /etc/apt/sources.list 2>/dev/null || true
    } | head -n 1
}
mirror="${DEBIAN_MIRROR:-$(apt_mirror bookworm)}"
[[ -n "$mirror" ]] || die "no Debian mirror for bookworm in this machine's apt configuration; set DEBIAN_MIRROR"
rootfs="$cache/rootfs-bookworm-minbase"
marker="$rootfs/.skiff-bench-complete"
# What Microsoft's runtime-deps:bookworm-slim image installs on top of Debian, so the app sees the
# same libraries (ICU for globalization, OpenSSL for crypto/TLS, tzdata for time zones).
packages="ca-certificates,libc6,libgcc-s1,libicu72,libssl3,libstdc++6,tzdata,zlib1g"
# The marker records how the cache was made; a cache made with other packages or trimming is redone.
recipe="v2 bookworm minbase include=$packages trim=slim"

dotnet_root="${DOTNET_ROOT:-/usr/share/dotnet}"
[[ -x "$dotnet_root/dotnet" ]] || dotnet_root="$(dirname "$(readlink -f "$(command -v dotnet)")")"
[[ -x "$dotnet_root/dotnet" ]] || die "no .NET installation found (looked at /usr/share/dotnet and PATH)"

mkdir -p "$cache"
# One builder at a time: two orchestrator runs starting together must not debootstrap into the same
# folder or commit the same image twice.
exec 9>"$cache/base-image.lock"
flock 9

if pm image exists "$SKIFF_BENCH_BASE_IMAGE"; then
    log "$SKIFF_BENCH_BASE_IMAGE already present in ${root:-the default storage}; nothing to do"
    exit 0
fi

# --- 1. Debian rootfs, cached ------------------------------------------------------------------
if [[ -f "$marker" && "$(cat "$marker")" == "$recipe" ]]; then
    log "reusing cached rootfs $rootfs"
else
    # Build next to the final folder and rename at the end, so an interrupted debootstrap never
    # leaves something that looks complete.
    tmp="$rootfs.partial"
    rm -rf "$tmp" "$rootfs"
    log "debootstrap --variant=minbase bookworm into $tmp (from $mirror); takes a minute or two"
    if ! debootstrap --variant=minbase --include="$packages" bookworm "$tmp" "$mirror" >"$cache/debootstrap.log" 2>&1; then
        tail -n 30 "$cache/debootstrap.log" >&2 || true
        die "debootstrap failed; full log in $cache/debootstrap.log"
    fi
    # Trim what a container never needs, as Debian's slim images (debuerreotype --slim) do: package
    # caches and lists, docs, man pages, translations. Keeps the base layer (and its push/pull) the
    # size of the real debian:bookworm-slim based image rather than padded.
    rm -rf "$tmp"/var/cache/apt/archives/*.deb "$tmp"/var/cache/apt/*.bin "$tmp"/var/lib/apt/lists/* \
        "$tmp"/usr/share/doc/* "$tmp"/usr/share/man/* "$tmp"/usr/share/info/* "$tmp"/usr/share/groff/* \
        "$tmp"/usr/share/lintian/* "$tmp"/usr/share/linda/* "$tmp"/var/log/*.log \
        "$tmp"/var/cache/debconf/*-old "$tmp"/var/lib/dpkg/*-old
    find "$tmp/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
    # debootstrap copies the host's resolv.conf/hostname; the container runtime provides its own.
    rm -f "$tmp/etc/resolv.conf" "$tmp/etc/hostname"
    echo "$recipe" >"$tmp/.skiff-bench-complete"
    mv "$tmp" "$rootfs"
    log "rootfs ready: $(du -sh --exclude=proc --exclude=sys "$rootfs" | cut -f1)"
fi

# --- 2. .NET runtime: host + the newest Microsoft.NETCore.App 10.x -----------------------------
netcore_version="$(find "$dotnet_root/shared/Microsoft.NETCore.App" -mindepth 1 -maxdepth 1 -type d -name '10.*' -printf '%f\n' | sort -V | tail -n 1)"
[[ -n "$netcore_version" ]] || die "no Microsoft.NETCore.App 10.x under $dotnet_root/shared"
fxr_version="$(find "$dotnet_root/host/fxr" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort -V | tail -n 1)"
[[ -n "$fxr_version" ]] || die "no hostfxr under $dotnet_root/host/fxr"
log "adding .NET runtime $netcore_version (hostfxr $fxr_version) from $dotnet_root"

# --- 3. Image: scratch + rootfs + runtime, one layer -------------------------------------------
ctr=""
mnt=""
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    if [[ -n "$ctr" ]]; then
        bh umount "$ctr" >/dev/null 2>&1 || true
        bh rm "$ctr" >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

ctr="$(bh from --name "skiff-bench-base-build-$$" scratch)"
mnt="$(bh mount "$ctr")"
# cp -a keeps owners, modes, links and device-free trees as debootstrap made them.
cp -a "$rootfs/." "$mnt/"
rm -f "$mnt/${marker##*/}"
install -d -m 755 "$mnt/usr/share/dotnet/host/fxr" "$mnt/usr/share/dotnet/shared/Microsoft.NETCore.App"
cp -a "$dotnet_root/dotnet" "$mnt/usr/share/dotnet/"
cp -a "$dotnet_root/LICENSE.txt" "$dotnet_root/ThirdPartyNotices.txt" "$mnt/usr/share/dotnet/" 2>/dev/null || true
cp -a "$dotnet_root/host/fxr/$fxr_version" "$mnt/usr/share/dotnet/host/fxr/"
cp -a "$dotnet_root/shared/Microsoft.NETCore.App/$netcore_version" "$mnt/usr/share/dotnet/shared/Microsoft.NETCore.App/"
ln -sfn /usr/share/dotnet/dotnet "$mnt/usr/bin/dotnet"
install -d -m 755 "$mnt/app"
bh umount "$ctr" >/dev/null

# Same environment as Microsoft's runtime images, so the app behaves as it would in production.
bh config \
    --env DOTNET_ROOT=/usr/share/dotnet \
    --env DOTNET_RUNNING_IN_CONTAINER=true \
    --env DOTNET_VERSION="$netcore_version" \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --workingdir /app \
    --label org.skiff.bench.role=base \
    --label org.skiff.bench.dotnet="$netcore_version" \
    --os linux --arch amd64 \
    "$ctr"

# --timestamp 0: fixed image/history time and file mtimes in the layer, so the same inputs give the
# same layer digest in every storage root.
bh commit --quiet --timestamp 0 --rm "$ctr" "$SKIFF_BENCH_BASE_IMAGE" >/dev/null
ctr=""
size="$(pm image inspect --format '{{.Size}}' "$SKIFF_BENCH_BASE_IMAGE")"
log "built $SKIFF_BENCH_BASE_IMAGE in ${root:-the default storage}: $size bytes uncompressed"
