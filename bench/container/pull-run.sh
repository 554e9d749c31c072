#!/usr/bin/env bash
# pull-run.sh IMAGE_REF READY_REGEX [--root STORAGE_ROOT] [--drop-app-images | --drop-all-images]
#             [--timeout SECONDS] [-- ARGS...]
#
# The "agent" side of a container-image deploy:
#   1. podman pull --tls-verify=false IMAGE_REF into the agent's own containers-storage root (default
#      /var/lib/skiff-bench/agent-storage, never the CI root), so layers really travel from the registry;
#   2. podman run --rm --network host IMAGE ARGS, and wait until a line of its output (stdout or stderr)
#      matches READY_REGEX (bash =~, extended regex), then stop the container if it is still running.
# Prints one JSON line on stdout: {"pull":ms,"start_to_ready":ms}
# start_to_ready runs from just before `podman run` to the moment the matching line is read. The
# container's output is copied to stderr, prefixed, for diagnosis.
#
# For a Skiff sample: ARGS = list, READY_REGEX = the name of a job it defines (e.g. '^hello'): the
# program prints its jobs and exits, the container equivalent of "started and listed its definitions".
#
# Agent state before the pull (not timed):
#   (default)           whatever the agent storage holds; pulling an image it already has only
#                       re-checks the manifest.
#   --drop-app-images   warm agent: remove every image except the base image, so the app layer has to
#                       travel but the base layer is already cached, as on a host that has run other
#                       apps built on the same base. If the base image is not there yet, pull it first
#                       from the same registry as REGISTRY/skiff-bench-base:bookworm-dotnet10 (push.sh
#                       puts it there).
#   --drop-all-images   cold agent: remove every image; the whole image travels.
# --timeout: seconds to wait for READY_REGEX (default 60); past it the container is stopped and the
# script fails.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh
. "$here/common.sh"

usage() {
    echo "usage: $0 IMAGE_REF READY_REGEX [--root STORAGE_ROOT] [--drop-app-images|--drop-all-images] [--timeout SECONDS] [-- ARGS...]" >&2
    exit 2
}

root="${SKIFF_BENCH_AGENT_ROOT:-/var/lib/skiff-bench/agent-storage}"
drop=""
timeout_s=60
positional=()
args=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --root) [[ $# -ge 2 ]] || usage; root="$2"; shift 2 ;;
        --drop-app-images) drop=app; shift ;;
        --drop-all-images) drop=all; shift ;;
        --timeout) [[ $# -ge 2 && "$2" =~ ^[0-9]+$ ]] || usage; timeout_s="$2"; shift 2 ;;
        --) shift; args=("$@"); break ;;
        -h | --help) usage ;;
        -*) echo "unknown option: $1" >&2; usage ;;
        *) positional+=("$1"); shift ;;
    esac
done
[[ ${#positional[@]} -eq 2 ]] || usage
image="${positional[0]}"
ready_re="${positional[1]}"
# Validate the regex up front: a bad one would otherwise look like "never ready".
{ [[ "" =~ $ready_re ]] || [[ $? -eq 1 ]]; } 2>/dev/null || die "READY_REGEX is not a valid extended regex: $ready_re"

require_root
require_cmd podman
store_setup "$root"

base_name="${SKIFF_BENCH_BASE_IMAGE#*/}"      # skiff-bench-base:bookworm-dotnet10
base_repo="${base_name%:*}"                    # skiff-bench-base
registry="${image%%/*}"                        # HOST:PORT of IMAGE_REF

# A run that was killed may have left its container behind (--rm never ran); it would pin images.
# Containers are named after the pid of the pull-run.sh that started them: remove only those whose
# script is gone, never one a concurrent pull-run.sh is still using.
stale=()
while read -r cname; do
    owner="${cname##*-}"
    if [[ "$owner" =~ ^[0-9]+$ ]] && ! kill -0 "$owner" 2>/dev/null; then stale+=("$cname"); fi
done < <(pm ps -a --filter 'name=^skiff-bench-run-' --format '{{.Names}}')
if [[ ${#stale[@]} -gt 0 ]]; then
    pm rm -f "${stale[@]}" >/dev/null 2>&1 || true
fi

# --- agent state (not timed) -------------------------------------------------------------------
is_base_repo() { [[ "${1##*/}" == "$base_repo" ]]; }
case "$drop" in
    all)
        mapfile -t ids < <(pm images -q --no-trunc | sort -u)
        if [[ ${#ids[@]} -gt 0 ]]; then pm rmi -f "${ids[@]}" >/dev/null; fi
        log "dropped all images (cold agent)"
        ;;
    app)
        # Keep images whose repository is the base's, drop every other image (by id, so dangling
        # ones go too).
        base_ids=()
        remove=()
        while read -r id repo; do
            if is_base_repo "$repo"; then base_ids+=("$id"); fi
        done < <(pm images --no-trunc --format '{{.ID}} {{.Repository}}')
        while read -r id; do
            is_base=0
            for b in "${base_ids[@]}"; do [[ "$b" == "$id" ]] && is_base=1; done
            [[ $is_base -eq 1 ]] || remove+=("$id")
        done < <(pm images -q --no-trunc | sort -u)
        if [[ ${#remove[@]} -gt 0 ]]; then pm rmi -f "${remove[@]}" >/dev/null; fi
        if [[ ${#base_ids[@]} -eq 0 ]]; then
            log "base image not cached yet; pulling $registry/$base_name to warm the agent (not timed)"
            pm pull --quiet --tls-verify=false "$registry/$base_name" >/dev/null ||
                log "warning: could not pull $registry/$base_name; this pull will be cold (run push.sh without --skip-base)"
        fi
        log "dropped ${#remove[@]} app image(s) (warm agent: base layer cached)"
        ;;
esac

# --- 1. pull (timed) ---------------------------------------------------------------------------
t0=$(now_ms)
if ! pm pull --tls-verify=false "$image" >&2; then
    die "podman pull $image failed (is the registry up, and was the image pushed?)"
fi
t1=$(now_ms)

# --- 2. run until ready (timed) ----------------------------------------------------------------
# `ip netns exec` hides /sys/fs/cgroup; put it back in that private mount namespace if needed.
ensure_cgroups_visible

work="$(mktemp -d "${TMPDIR:-/tmp}/skiff-bench-run.XXXXXX")"
name="skiff-bench-run-$$"
run_pid=""
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    if [[ -n "$run_pid" ]] && kill -0 "$run_pid" 2>/dev/null; then
        pm kill "$name" >/dev/null 2>&1 || true
        wait "$run_pid" 2>/dev/null || true
    fi
    exec 3<&- 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
mkfifo "$work/out"

t2=$(now_ms)
pm run --rm --name "$name" --pull=never --network host "${RUN_LIMITS[@]}" \
    "$image" "${args[@]}" >"$work/out" 2>&1 </dev/null &
run_pid=$!
exec 3<"$work/out"

deadline=$((t2 + timeout_s * 1000))
ready=0
t3=0
while :; do
    left=$((deadline - $(now_ms)))
    if ((left <= 0)); then break; fi
    if IFS= read -r -t "$((left / 1000)).$(printf '%03d' $((left % 1000)))" -u 3 line; then
        echo "  [container] $line" >&2
        if [[ "$line" =~ $ready_re ]]; then
            t3=$(now_ms)
            ready=1
            break
        fi
    else
        # >128: timed out; otherwise end of output (the container exited), possibly after a last
        # line with no newline, which read still returns in $line.
        (($? > 128)) && continue
        if [[ -n "${line:-}" ]]; then
            echo "  [container] $line" >&2
            if [[ "$line" =~ $ready_re ]]; then
                t3=$(now_ms)
                ready=1
            fi
        fi
        break
    fi
done

if [[ $ready -eq 1 ]]; then
    # Ready. Pass the rest of its output on; a program that exits by itself (`list`) ends the stream
    # within moments, one that keeps serving is killed after half a second of silence (its shutdown is
    # not what we measure, and a PID-1 shell would make a graceful stop wait out the whole timeout).
    stop_sent=0
    while :; do
        rc=0
        IFS= read -r -t 0.5 -u 3 line || rc=$?
        if [[ $rc -eq 0 ]]; then
            echo "  [container] $line" >&2
            continue
        fi
        ((rc > 128)) || break # end of output: the container has exited
        if [[ $stop_sent -eq 0 ]]; then
            pm kill "$name" >/dev/null 2>&1 || true
            stop_sent=1
        fi
    done
    wait "$run_pid" 2>/dev/null || true
    run_pid=""
    printf '{"pull":%d,"start_to_ready":%d}\n' $((t1 - t0)) $((t3 - t2))
    exit 0
fi

if kill -0 "$run_pid" 2>/dev/null; then
    pm kill "$name" >/dev/null 2>&1 || true
    wait "$run_pid" 2>/dev/null || true
    run_pid=""
    die "no output line matched /$ready_re/ within ${timeout_s}s; container stopped"
fi
rc=0
wait "$run_pid" || rc=$?
run_pid=""
die "container exited (code $rc) before any output line matched /$ready_re/"
