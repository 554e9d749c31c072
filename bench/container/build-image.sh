#!/usr/bin/env bash
# build-image.sh PROJECT_DIR TAG [--root STORAGE_ROOT] [--clean]
#
# The "CI" side of a container-image deploy, as teams do it today:
#   1. dotnet publish PROJECT_DIR -c Release -r linux-x64 --self-contained false  (the app and every
#      package it uses, i.e. the whole deployable, rebuilt for each commit)
#   2. one app layer FROM the base image: the publish folder copied to /app, entrypoint
#      ["dotnet", "/app/<AssemblyName>.dll"], committed as TAG.
# Prints one JSON line on stdout: {"publish":ms,"image_build":ms,"image_bytes":N}
# image_bytes is the uncompressed size of the app layer (app image size minus base image size, as
# containers-storage reports them). Everything else goes to stderr.
#
# Build intermediates (obj/, bin/ of the project and its project references) go to a per-project
# artifacts folder under $SKIFF_BENCH_CACHE/artifacts (dotnet --artifacts-path), not into the project:
# the benchmark builds the same project with Skiff at the same time, and the two must not race on (or
# rewrite each other's) obj/project.assets.json. That folder persists between calls, like a warm CI
# runner's workspace, so a one-line change is an incremental build: the baseline gets the benefit of
# the doubt. --clean empties it first, for a from-scratch CI build.
#
# Requires the base image in the same storage root (run base-image.sh with the same --root first).
# Idempotent: rebuilding the same TAG replaces the tag; the old image is removed if nothing else uses it.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh
. "$here/common.sh"

usage() { echo "usage: $0 PROJECT_DIR TAG [--root STORAGE_ROOT] [--clean]" >&2; exit 2; }

root=""
clean=0
positional=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --root) [[ $# -ge 2 ]] || usage; root="$2"; shift 2 ;;
        --clean) clean=1; shift ;;
        -h | --help) usage ;;
        -*) echo "unknown option: $1" >&2; usage ;;
        *) positional+=("$1"); shift ;;
    esac
done
[[ ${#positional[@]} -eq 2 ]] || usage
project="${positional[0]}"
tag="${positional[1]}"

require_root
require_cmd podman buildah dotnet
[[ -e "$project" ]] || die "project not found: $project"
project_abs="$(readlink -f "$project")"
artifacts="${SKIFF_BENCH_CACHE:-/var/cache/skiff-bench}/artifacts/$(basename "$project_abs" .csproj)-$(echo -n "$project_abs" | sha256sum | cut -c1-12)"
mkdir -p "$(dirname "$artifacts")"
# Two builds of the same project at once would race on its artifacts folder; the second waits.
exec 9>"$artifacts.lock"
flock 9
if [[ $clean -eq 1 ]]; then rm -rf "$artifacts"; fi
mkdir -p "$artifacts"
store_setup "$root"

pm image exists "$SKIFF_BENCH_BASE_IMAGE" ||
    die "base image $SKIFF_BENCH_BASE_IMAGE not in ${root:-the default storage}; run base-image.sh${root:+ --root $root} first"

work="$(mktemp -d "${TMPDIR:-/tmp}/skiff-bench-publish.XXXXXX")"
ctr=""
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    if [[ -n "$ctr" ]]; then bh rm "$ctr" >/dev/null 2>&1 || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
out="$work/publish"

# --- 1. publish (timed) ------------------------------------------------------------------------
# Output goes to stderr so stdout carries only the JSON line. The NuGet cache on this machine is warm,
# as it would be on a CI runner with a package cache; restore still runs as part of publish.
log "dotnet publish $project -c Release -r linux-x64 --self-contained false"
t0=$(now_ms)
if ! dotnet publish "$project" -c Release -r linux-x64 --self-contained false -o "$out" \
    --artifacts-path "$artifacts" -nologo -v:quiet >"$work/publish.log" 2>&1; then
    cat "$work/publish.log" >&2
    die "dotnet publish failed"
fi
t1=$(now_ms)

# The entry assembly is the one with a runtimeconfig.json (exactly one for an executable project);
# reading it from the output avoids a second, slow MSBuild evaluation just to learn AssemblyName.
mapfile -t rcs < <(find "$out" -maxdepth 1 -name '*.runtimeconfig.json' -printf '%f\n')
[[ ${#rcs[@]} -eq 1 ]] || die "expected one *.runtimeconfig.json in the publish output, found ${#rcs[@]} (is $project an executable project?)"
assembly="${rcs[0]%.runtimeconfig.json}"
[[ -f "$out/$assembly.dll" ]] || die "publish output has $assembly.runtimeconfig.json but no $assembly.dll"

# --- 2. image (timed) --------------------------------------------------------------------------
t2=$(now_ms)
ctr="$(bh from --pull-never --name "skiff-bench-app-build-$$" "$SKIFF_BENCH_BASE_IMAGE")"
bh copy --quiet "$ctr" "$out" /app >/dev/null
bh config \
    --entrypoint "[\"dotnet\", \"/app/$assembly.dll\"]" \
    --cmd '' \
    --workingdir /app \
    --label org.skiff.bench.role=app \
    --label org.skiff.bench.assembly="$assembly" \
    "$ctr"
old_id="$(pm image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)"
bh commit --quiet --rm "$ctr" "$tag" >/dev/null
ctr=""
t3=$(now_ms)

# Replacing a tag leaves the previous image dangling; remove it so repeated runs do not pile up.
new_id="$(pm image inspect --format '{{.Id}}' "$tag")"
if [[ -n "$old_id" && "$old_id" != "$new_id" ]]; then
    pm rmi "$old_id" >/dev/null 2>&1 || true
fi

image_size="$(pm image inspect --format '{{.Size}}' "$tag")"
base_size="$(pm image inspect --format '{{.Size}}' "$SKIFF_BENCH_BASE_IMAGE")"
image_bytes=$((image_size - base_size))
log "built $tag ($assembly): app layer $image_bytes bytes, publish folder $(du -sb "$out" | cut -f1) bytes"

printf '{"publish":%d,"image_build":%d,"image_bytes":%d}\n' $((t1 - t0)) $((t3 - t2)) "$image_bytes"
