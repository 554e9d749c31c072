#!/usr/bin/env bash
# The main job, for now: build samples/Hello into a content-addressed store, then run it from the
# store, its packages and its own code unpacked from separate blobs.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

log="$(mktemp)"
trap 'rm -f "$log"' EXIT

echo "== skiff build samples/Hello"
./skiff build samples/Hello | tee "$log"
release="$(awk '/^release /{print $2}' "$log")"
echo
echo "== skiff exec ${release:7:12} -- from the store"
./skiff exec "$release" -- run hello --param "name=from the store"
