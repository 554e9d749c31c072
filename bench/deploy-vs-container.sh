#!/usr/bin/env bash
# Skiff's deploy paths against a container-image deploy of the same app, side by side, in one run, with
# the parts on three network namespaces joined by shaped links (bench/network/link.sh):
#   CLI + image build in skiffb-cli, server + blob store + registry in skiffb-srv, agent + image pull/run
#   in skiffb-agt.
# Scenarios, interleaved, REPS repetitions each: fast (one-line change), bump (one package version),
# unchanged (same release again), rollback, cold (empty agent cache and empty server store), baseline
# (dotnet publish → OCI image → push → pull → run until ready). Writes bench/results/deploy-DATE.md,
# .svg and .jsonl.
#
#   bench/deploy-vs-container.sh [--reps 5] [--rate 100mbit] [--apps "Hello Heavy"]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

reps=5
rate=100mbit
apps="Hello Heavy"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --reps) reps=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --apps) apps=$2; shift 2 ;;
    *) echo "usage: $0 [--reps N] [--rate RATE] [--apps \"Hello Heavy\"]" >&2; exit 2 ;;
  esac
done

work="$(mktemp -d /tmp/skiff-bench-XXXX)"
results="$work/measurements.jsonl"
pids=()
cleanup() {
  for pid in "${pids[@]:-}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]:-}"; do wait "$pid" 2>/dev/null || true; done
  bench/container/registry.sh stop "$work/registry" >/dev/null 2>&1 || true
  bench/network/link.sh down || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cli() { ip netns exec skiffb-cli env SKIFF_HOME="$work/cli" SKIFF_URL="http://10.77.1.1:5199" SKIFF_TOKEN="$(cat "$work/server/token" 2>/dev/null)" "$@"; }
now_ms() { date +%s%3N; }
record() { echo "$1" >>"$results"; }

# What the benchmark needs beyond the machine image, installed once (Debian packages).
need=()
for pkg in podman buildah runc debootstrap docker-registry librsvg2-bin iproute2; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [[ ${#need[@]} -gt 0 ]]; then
  echo "installing ${need[*]}"
  apt-get -o DPkg::Lock::Timeout=600 update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${need[@]}" >/dev/null
fi

echo "building the CLI and preparing $work"
./skiff --help >/dev/null
skiff_dll="$root/.skiff-bin/skiff.dll"
bench/network/link.sh up "$rate"

start_platform() {
  ip netns exec skiffb-srv dotnet "$skiff_dll" server --host 0.0.0.0 --port 5199 --data "$work/server" >"$work/server.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 300); do grep -q "listening" "$work/server.log" 2>/dev/null && break; sleep 0.1; done
  ip netns exec skiffb-agt dotnet "$skiff_dll" agent --server http://10.77.2.1:5199 --token "$(cat "$work/server/token")" --cache "$work/agent" --name bench >"$work/agent.log" 2>&1 &
  pids+=($!)
}

stop_platform() {
  for pid in "${pids[@]:-}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]:-}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
}

# A working copy per app, laid out as in the repository (the samples reference the SDK by path).
prepare_copy() {
  local app=$1 copy="$work/src/$1"
  mkdir -p "$copy/samples" "$copy/src"
  cp Directory.Build.props Directory.Packages.props global.json .editorconfig "$copy/"
  cp samples/Directory.Build.props samples/Directory.Packages.props "$copy/samples/"
  cp -r src/Skiff.Sdk "$copy/src/"
  cp -r "samples/$app" "$copy/samples/"
  rm -rf "$copy/src/Skiff.Sdk/bin" "$copy/src/Skiff.Sdk/obj" "$copy/samples/$app/bin" "$copy/samples/$app/obj"
  # The namespaces have no route to the NuGet feed: restore both package versions the bump alternates
  # between here first, as a developer's machine would have them cached.
  SKIFF_HOME="$work/cli" ./skiff build "$copy/samples/$app" >/dev/null
  bump "$copy/samples/$app" "$app"; SKIFF_HOME="$work/cli" ./skiff build "$copy/samples/$app" >/dev/null
  bump "$copy/samples/$app" "$app"
  # From here on restores use only the packages already on this machine, as a local feed: the namespaces
  # have no route to the NuGet feed (and a developer's machine has these cached too).
  cat >"$copy/NuGet.config" <<CONFIG
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
    <add key="local" value="$HOME/.nuget/packages" />
  </packageSources>
</configuration>
CONFIG
  echo "$copy/samples/$app"
}

skiff_deploy() {
  local app=$1 scenario=$2 project=$3 location=$4 started ended out
  started=$(now_ms)
  out=$(cli dotnet "$skiff_dll" deploy "$project" --location "$location" --json)
  ended=$(now_ms)
  record "$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(json.dumps({"app":sys.argv[2],"scenario":sys.argv[3],"wall_ms":int(sys.argv[4]),"path":d["path"],"outcome":d["outcome"],"bytes":d["uploaded"]["bytes"],"blobs":d["uploaded"]["blobs"],"stages":d["timings_ms"]}))' "$out" "$app" "$scenario" $((ended - started)))"
}

skiff_rollback() {
  local app=$1 location=$2 started ended history
  started=$(now_ms)
  cli dotnet "$skiff_dll" rollback "$location" >/dev/null
  ended=$(now_ms)
  history=$(cli dotnet "$skiff_dll" history "$location" --json --limit 1)
  record "$(python3 -c 'import json,sys; d=json.loads(sys.argv[1])[0]; print(json.dumps({"app":sys.argv[2],"scenario":"rollback","wall_ms":int(sys.argv[3]),"path":d["path"],"outcome":d["outcome"],"bytes":0,"blobs":0,"stages":{"activate":d["timings_ms"]["activate"],"total":int(sys.argv[3])}}))' "$history" "$app" $((ended - started)))"
}

container_deploy() {
  local app=$1 project=$2 tag=$3 started ended build push pull
  started=$(now_ms)
  build=$(ip netns exec skiffb-cli bench/container/build-image.sh "$project" "$tag" --root "$work/ci-storage" | tail -1)
  push=$(ip netns exec skiffb-cli bench/container/push.sh "$tag" 10.77.1.1:5000 --root "$work/ci-storage" | tail -1)
  pull=$(ip netns exec skiffb-agt bench/container/pull-run.sh "10.77.2.1:5000/${tag#localhost/}" '^(hello|ping)' --root "$work/agent-storage" --drop-app-images -- list | tail -1)
  ended=$(now_ms)
  record "$(python3 -c 'import json,sys; b,p,q=(json.loads(x) for x in sys.argv[1:4]); stages={"publish":b["publish"],"image_build":b["image_build"],"push":p["push"],"pull":q["pull"],"start_to_ready":q["start_to_ready"],"total":int(sys.argv[6])}; print(json.dumps({"app":sys.argv[4],"scenario":"baseline","wall_ms":int(sys.argv[6]),"path":"container","outcome":"live","bytes":b["image_bytes"],"blobs":0,"stages":stages,"tag":sys.argv[5]}))' "$build" "$push" "$pull" "$app" "$tag" $((ended - started)))"
}

one_line_change() { echo "// change $(date +%s%N)" >>"$1/Program.cs"; }
# One package per app, alternated between two versions the feed has: a dependency bump. Different packages
# per app, so one app's bump does not find its blob already uploaded by the other (content addressing
# would rightly make that a fast path).
bump() {
  local project=$1 app=$2 package from to
  case "$app" in
    Hello) package=Newtonsoft.Json; from=13.0.3; to=13.0.1 ;;
    Heavy) package=Bogus; from=34.0.2; to=34.0.1 ;;
    *) echo "no bump defined for $app" >&2; exit 1 ;;
  esac
  if grep -q "\"$package\" Version=\"$from\"" "$project/$app.csproj"; then
    sed -i "s/\"$package\" Version=\"$from\"/\"$package\" Version=\"$to\"/" "$project/$app.csproj"
  else
    sed -i "s/\"$package\" Version=\"$to\"/\"$package\" Version=\"$from\"/" "$project/$app.csproj"
  fi
}

echo "container base image (debootstrap, once) and registry"
bench/container/base-image.sh --root "$work/ci-storage" >/dev/null
ip netns exec skiffb-srv bench/container/registry.sh start 0.0.0.0:5000 "$work/registry" >/dev/null

start_platform
declare -A copies
for app in $apps; do
  copies[$app]=$(prepare_copy "$app")
  location=$(echo "$app" | tr '[:upper:]' '[:lower:]')
  echo "warming up $app (first deploy, build servers, restore)"
  skiff_deploy "$app" warmup "${copies[$app]}" "$location" && sed -i '$ d' "$results"
  one_line_change "${copies[$app]}"; skiff_deploy "$app" warmup "${copies[$app]}" "$location" && sed -i '$ d' "$results"
  # The container side's first deploy pulls the base image onto the agent, as a warm container host has it,
  # and warms the publish; after that only app layers travel.
  container_deploy "$app" "${copies[$app]}" "localhost/bench-$location:warmup" && sed -i '$ d' "$results"
done

for rep in $(seq 1 "$reps"); do
  for app in $apps; do
    project=${copies[$app]}
    location=$(echo "$app" | tr '[:upper:]' '[:lower:]')
    echo "rep $rep/$reps $app: fast, bump, unchanged, rollback, baseline"
    one_line_change "$project"; skiff_deploy "$app" fast "$project" "$location"
    bump "$project" "$app"; skiff_deploy "$app" bump "$project" "$location"
    skiff_deploy "$app" unchanged "$project" "$location"
    skiff_rollback "$app" "$location"
    one_line_change "$project"; container_deploy "$app" "$project" "localhost/bench-$location:rep$rep"
  done
  # Cold: a new platform with an empty agent cache and an empty store (the CLI's local build cache stays),
  # once per repetition, after every app's warm scenarios, so it never empties the store under them.
  echo "rep $rep/$reps: cold"
  stop_platform; rm -rf "$work/server" "$work/agent"; start_platform
  for app in $apps; do
    location=$(echo "$app" | tr '[:upper:]' '[:lower:]')
    one_line_change "${copies[$app]}"; skiff_deploy "$app" cold "${copies[$app]}" "$location"
  done
done

stop_platform
python3 bench/report.py "$results" "$rate" "$reps" "$root/bench/results"
