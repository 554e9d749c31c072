#!/usr/bin/env bash
# Cold deploy of samples/Heavy across shaped links, scale-out against embedded, side by side in one run
# (bench/Skiff.Bench/ColdLinkBenchmark.cs): PostgreSQL + s3rver + `skiff server` in skiffb-srv on 10.77.1.1,
# the CLI in skiffb-cli, the agent in skiffb-agt (bench/network/link.sh). Reports median wall clock, what the
# CLI uploaded, the agent's cache, and the bytes each link carried in each direction, and writes them to
# bench/results/cold-deploy-RATE-DATE.md. Needs root (network namespaces); takes the links down at the end.
#
#   bench/cold-deploy-100mbit.sh [--reps 3] [--rate 100mbit]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

reps=3
rate=100mbit
while [[ $# -gt 0 ]]; do
  case "$1" in
    --reps) reps=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    *) echo "usage: $0 [--reps N] [--rate RATE]" >&2; exit 2 ;;
  esac
done
[[ "$(id -u)" -eq 0 ]] || { echo "$0 makes network namespaces and needs root" >&2; exit 1; }

echo "building bench/Skiff.Bench (Release)" >&2
dotnet build -c Release bench/Skiff.Bench -v q -nologo >/dev/null
out="bench/results/cold-deploy-$rate-$(date -u +%F).md"
trap 'bench/network/link.sh down; rm -f "$out.tmp"' EXIT
bench/network/link.sh up "$rate"

{
  echo "# Cold deploy at $rate: where the environment's bytes go"
  echo
  echo "\`bench/cold-deploy-100mbit.sh --reps $reps --rate $rate\` (links: bench/network/link.sh up $rate)"
  echo
  dotnet bench/Skiff.Bench/bin/Release/net10.0/Skiff.Bench.dll coldlink --iterations "$reps"
} | tee "$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out" >&2
