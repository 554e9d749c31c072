#!/usr/bin/env bash
# The events bench's batched runs only, for side-by-side comparisons (bench/results/events-2026-11-29.md): runs
# REPO/bench/Skiff.Bench (built with `dotnet build -c Release bench/Skiff.Bench` in REPO, whose own SDK sources go into the
# deployed job) and stops it after "batch 2000, shared runs, paced 50000/s, run ITERATIONS:" (the batched runs: isolated, shared, then shared with the job paced at 50,000 lines/s), before its slow batch-1 runs. With PERF_OUTPUT, under
# `perf record -g` (children followed, JIT-compiled code named through DOTNET_PerfMapEnabled's /tmp/perf-PID.map).
# usage: bench/events-batched.sh LOG REPO ITERATIONS [PERF_OUTPUT]
set -u
log=$(realpath -m "$1"); repo=$2; iterations=$3; perf_output=${4:-}
echo "== $(date -u +%T) start, load $(cut -d' ' -f1-3 /proc/loadavg)" > "$log"
cd "$repo"
bench=(dotnet bench/Skiff.Bench/bin/Release/net10.0/Skiff.Bench.dll events --iterations "$iterations")
if [ -n "$perf_output" ]; then
  DOTNET_PerfMapEnabled=1 perf record -F 999 -g -o "$perf_output" -- "${bench[@]}" >> "$log" 2>&1 &
else
  "${bench[@]}" >> "$log" 2>&1 &
fi
pid=$!
while kill -0 "$pid" 2>/dev/null; do
  if grep -q "batch 2000, shared runs, paced 50000/s, run $iterations:" "$log"; then
    # perf stops on SIGINT (and ends the bench); a background job ignores SIGINT, so the bench alone gets SIGTERM.
    if [ -n "$perf_output" ]; then kill -INT "$pid"; else kill -TERM "$pid"; fi
    break
  fi
  sleep 1
done
wait "$pid"
echo "== $(date -u +%T) end, load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$log"
