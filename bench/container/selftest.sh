#!/usr/bin/env bash
# selftest.sh [PROJECT_DIR] [READY_REGEX] [ADDRESS:PORT]
#
# Runs the whole container-deploy baseline once, on one machine, the way the benchmark orchestrator
# calls it: base image -> build -> registry start -> push -> pull-run (warm agent) -> registry stop.
# Defaults: samples/Hello of this repository, '^hello', 127.0.0.1:5055. Each step's JSON line is
# printed on stdout with the step's name; everything else goes to stderr.
#
# State lives under $SKIFF_BENCH_SELFTEST_DIR (default /var/lib/skiff-bench/selftest): CI storage,
# agent storage and registry data, kept between runs, so running it twice shows the second run's
# base-image step doing nothing. Delete that folder to start over.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
project="${1:-$repo/samples/Hello}"
ready="${2:-^hello}"
addr="${3:-127.0.0.1:5055}"
dir="${SKIFF_BENCH_SELFTEST_DIR:-/var/lib/skiff-bench/selftest}"
ci="$dir/ci-storage"
agent="$dir/agent-storage"
reg="$dir/registry"
tag="localhost/skiff-selftest-$(basename "$project" | tr '[:upper:]' '[:lower:]'):latest"

step() {
    local name="$1" t0 out
    shift
    t0=${EPOCHREALTIME/[.,]/}
    out="$("$@")"
    printf '%-12s %6d ms  %s\n' "$name" $(((${EPOCHREALTIME/[.,]/} - t0) / 1000)) "$out"
}

# Always stop the registry, even when a step fails.
trap '"$here/registry.sh" stop "$reg" || true' EXIT

step base-image "$here/base-image.sh" --root "$ci"
step build "$here/build-image.sh" "$project" "$tag" --root "$ci"
step registry "$here/registry.sh" start "$addr" "$reg"
step push "$here/push.sh" "$tag" "$addr" --root "$ci"
step pull-run "$here/pull-run.sh" "$addr/${tag#localhost/}" "$ready" --root "$agent" --drop-app-images -- list
step stop "$here/registry.sh" stop "$reg"
