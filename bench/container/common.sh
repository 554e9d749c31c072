# shellcheck shell=bash
# Shared helpers for the container-image baseline scripts in this folder. Sourced, never run.
#
# Why a helper: every script talks to a containers-storage root chosen by the orchestrator ("CI" side
# and "agent" side are separate roots so that layers really travel through the registry), and podman
# and buildah must be given exactly the same storage flags and runtime settings everywhere, or they
# would silently look at different stores.

# The base image every app image is built FROM. It is only ever built locally (no registry reachable).
SKIFF_BENCH_BASE_IMAGE="${SKIFF_BENCH_BASE_IMAGE:-localhost/skiff-bench-base:bookworm-dotnet10}"

# Storage driver. overlay works on this machine (ext4 backing filesystem, native overlay diff, root)
# and is what a real container host uses: a container's rootfs is a mount over the image layers, not a
# copy. vfs also works but copies every layer in full for each layer applied on pull and for every
# container started (about 200 MB for this base), which would make the baseline unfairly slow.
# Override with SKIFF_BENCH_STORAGE_DRIVER=vfs if overlay is unavailable; a root keeps the driver it was
# created with, so we read it back from an existing root rather than guessing.
SKIFF_BENCH_STORAGE_DRIVER="${SKIFF_BENCH_STORAGE_DRIVER:-overlay}"

# OCI runtime: runc (Debian package `runc`). Debian's podman defaults to crun, but crun 1.8 refuses
# this host's hybrid cgroup layout ("cgroups in hybrid mode not supported, drop all controllers from
# cgroupv2"); runc 1.1 runs fine.
SKIFF_BENCH_RUNTIME="${SKIFF_BENCH_RUNTIME:-runc}"

die() {
    echo "error: $(basename "$0"): $*" >&2
    exit 1
}

log() {
    echo "[$(basename "$0")] $*" >&2
}

# Milliseconds since the epoch, from bash's own clock (no fork, so it does not distort short timings).
now_ms() {
    local t=${EPOCHREALTIME/[.,]/}
    echo $((t / 1000))
}

require_root() {
    [[ $(id -u) -eq 0 ]] || die "must run as root (podman/buildah use rootful storage here)"
}

require_cmd() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || die "'$c' not found; install it (apt-get install -y $c)"
    done
}

# store_setup ROOT — fills the STORE array with the global flags that podman and buildah both accept.
# Empty ROOT means podman's default storage (/var/lib/containers/storage with its own runroot).
# A custom root gets its own runroot next to it (locks and mount bookkeeping must not be shared between
# roots, and must survive between our short-lived commands).
STORE=()
PODMAN_EXTRA=()
store_setup() {
    local root="${1:-}"
    STORE=()
    if [[ -n "$root" ]]; then
        [[ "$root" = /* ]] || root="$(pwd)/$root"
        mkdir -p "$root"
        local driver="$SKIFF_BENCH_STORAGE_DRIVER"
        if [[ -d "$root/vfs-images" && ! -d "$root/overlay-images" ]]; then driver=vfs; fi
        if [[ -d "$root/overlay-images" && ! -d "$root/vfs-images" ]]; then driver=overlay; fi
        local runroot="${root%/}.run"
        mkdir -p "$runroot"
        STORE=(--root "$root" --runroot "$runroot" --storage-driver "$driver")
    fi
    # cgroupfs: this host has cgroup v1 and no running systemd, so the "systemd" manager that
    # /etc/containers/libpod.conf asks for cannot work. events-backend=file: no journald either.
    PODMAN_EXTRA=(--cgroup-manager=cgroupfs --events-backend=file --runtime "$SKIFF_BENCH_RUNTIME")
    run_limits
}

# Resource limits for `podman run`. nofile=20000 is this sandbox's hard limit (the design notes ask for
# it). nproc must be given too: rootful podman otherwise asks for RLIMIT_NPROC=1048576, which needs
# CAP_SYS_RESOURCE (absent here), and podman/conmon themselves run with nproc capped at
# kernel.pid_max (32768), so the runtime may only set a value up to min(hard limit, pid_max).
run_limits() {
    local hard pidmax
    hard="$(ulimit -Hu)"
    pidmax="$(cat /proc/sys/kernel/pid_max)"
    [[ "$hard" == unlimited || "$hard" -gt "$pidmax" ]] && hard="$pidmax"
    RUN_LIMITS=(--ulimit nofile=20000:20000 --ulimit "nproc=$hard:$hard")
}
# shellcheck disable=SC2034 # used by the scripts that source this file
RUN_LIMITS=()

pm() { podman "${STORE[@]}" "${PODMAN_EXTRA[@]}" "$@"; }
bh() { buildah "${STORE[@]}" "$@"; }

# `ip netns exec` gives its command a private mount namespace with a fresh /sys, which hides the cgroup
# hierarchies mounted under /sys/fs/cgroup; podman run then fails to create the container's cgroup.
# Re-mount them inside that private namespace (never touches the host's mounts). Only acts when
# /sys/fs/cgroup is visibly empty and we are not in the initial mount namespace.
ensure_cgroups_visible() {
    if [[ -n "$(ls -A /sys/fs/cgroup 2>/dev/null)" ]]; then
        return 0
    fi
    if [[ "$(readlink /proc/self/ns/mnt)" == "$(readlink /proc/1/ns/mnt 2>/dev/null)" ]]; then
        die "/sys/fs/cgroup is empty in the host mount namespace; cannot run containers"
    fi
    log "no cgroup hierarchy under /sys/fs/cgroup (ip netns exec?); mounting it in this private mount namespace"
    mount -t tmpfs -o mode=755 cgroup_root /sys/fs/cgroup
    local line name opts
    # Mirror the host's hierarchies as PID 1 sees them (/proc/1/mounts), v1 controllers and v2 alike.
    while read -r _ mnt type opts _; do
        case "$type" in
            cgroup)
                name=${mnt#/sys/fs/cgroup/}
                mkdir -p "/sys/fs/cgroup/$name"
                # Keep only the controller/name options; rw,relatime etc. are defaults.
                local o keep=()
                IFS=, read -ra line <<<"$opts"
                for o in "${line[@]}"; do
                    case "$o" in rw | ro | relatime | nosuid | nodev | noexec) ;; *) keep+=("$o") ;; esac
                done
                mount -t cgroup -o "$(IFS=,; echo "${keep[*]}")" cgroup "/sys/fs/cgroup/$name"
                ;;
            cgroup2)
                name=${mnt#/sys/fs/cgroup}
                name=${name#/}
                mkdir -p "/sys/fs/cgroup/$name"
                mount -t cgroup2 cgroup2 "/sys/fs/cgroup/$name"
                ;;
        esac
    done < <(grep -E '^[^ ]+ /sys/fs/cgroup' /proc/1/mounts)
}
