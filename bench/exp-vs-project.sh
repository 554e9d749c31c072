#!/usr/bin/env bash
# Trying a package: `skiff deploy --exp YamlDotNet@18.0.0` against adding it to the project file and deploying, side by
# side in one run on a warm embedded platform (bench/Skiff.Bench/ExperimentalBenchmark.cs). Writes medians to
# bench/results/exp-DATE.md.
#
#   bench/exp-vs-project.sh [--reps 5]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

reps=5
while [[ $# -gt 0 ]]; do
  case "$1" in
    --reps) reps=$2; shift 2 ;;
    *) echo "usage: $0 [--reps N]" >&2; exit 2 ;;
  esac
done

echo "building bench/Skiff.Bench (Release)" >&2
dotnet build -c Release bench/Skiff.Bench -v q -nologo >/dev/null
out="bench/results/exp-$(date -u +%F).md"
trap 'rm -f "$out.tmp"' EXIT
{
  echo "# Experimental dependency: deploy --exp against a project edit"
  echo
  echo "\`bench/exp-vs-project.sh --reps $reps\`"
  echo
  dotnet bench/Skiff.Bench/bin/Release/net10.0/Skiff.Bench.dll exp --iterations "$reps"
} | tee "$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out" >&2
