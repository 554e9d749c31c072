#!/usr/bin/env bash
# push.sh TAG REGISTRY_HOSTPORT [--root STORAGE_ROOT] [--skip-base]
#
# The "upload" step of a container-image deploy: podman push TAG from the CI storage to a plain-HTTP
# registry (--tls-verify=false). The image lands at REGISTRY_HOSTPORT/<TAG without its registry
# host>, e.g. localhost/skiff-hello:v1 -> 127.0.0.1:5000/skiff-hello:v1 (printed on stderr; pass that
# to pull-run.sh). Only layers the registry lacks are uploaded, so after the first push of any app the
# base layer is already there and a new app version uploads just its app layer, as on a real registry.
# Layers are gzip-compressed during the push (podman's default), which is part of the measured time.
#
# Prints one JSON line on stdout: {"push":ms}
#
# After the timed push it also tags the base image in the registry as
# REGISTRY_HOSTPORT/skiff-bench-base:bookworm-dotnet10 (its blobs are there already, so this is a
# manifest upload): pull-run.sh --drop-app-images pulls it by that name to keep an agent warm.
# --skip-base leaves that out.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh
. "$here/common.sh"

usage() { echo "usage: $0 TAG REGISTRY_HOSTPORT [--root STORAGE_ROOT] [--skip-base]" >&2; exit 2; }

root=""
skip_base=0
positional=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --root) [[ $# -ge 2 ]] || usage; root="$2"; shift 2 ;;
        --skip-base) skip_base=1; shift ;;
        -h | --help) usage ;;
        -*) echo "unknown option: $1" >&2; usage ;;
        *) positional+=("$1"); shift ;;
    esac
done
[[ ${#positional[@]} -eq 2 ]] || usage
tag="${positional[0]}"
registry="${positional[1]}"
[[ "$registry" =~ ^[^/:]+:[0-9]+$ ]] || die "REGISTRY_HOSTPORT must be HOST:PORT, got '$registry'"

require_root
require_cmd podman
store_setup "$root"

# strip_host REF -> REF without a leading registry host (a first component with '.' or ':' or that is
# "localhost", the same rule podman uses to tell a host from a namespace).
strip_host() {
    local ref="$1" first="${1%%/*}"
    if [[ "$ref" == */* && ("$first" == *.* || "$first" == *:* || "$first" == localhost) ]]; then
        echo "${ref#*/}"
    else
        echo "$ref"
    fi
}

pm image exists "$tag" || die "image $tag not in ${root:-the default storage}; run build-image.sh first"
dest="$registry/$(strip_host "$tag")"

t0=$(now_ms)
# podman's progress output goes to stderr; stdout is kept for the JSON line.
if ! pm push --tls-verify=false "$tag" "docker://$dest" >&2; then
    die "podman push $tag -> $dest failed (is the registry running on $registry?)"
fi
t1=$(now_ms)
log "pushed $tag as $dest"

if [[ $skip_base -eq 0 ]] && pm image exists "$SKIFF_BENCH_BASE_IMAGE"; then
    base_dest="$registry/$(strip_host "$SKIFF_BENCH_BASE_IMAGE")"
    pm push --quiet --tls-verify=false "$SKIFF_BENCH_BASE_IMAGE" "docker://$base_dest" >&2 ||
        die "podman push of the base image to $base_dest failed"
    log "base image available as $base_dest"
fi

printf '{"push":%d}\n' $((t1 - t0))
