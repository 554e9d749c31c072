#!/usr/bin/env bash
# The main job, as a team outside this repository would do it: pack Skiff, install the skiff tool and the
# templates, create a job project from the template, start the embedded platform, deploy it (full path),
# run it, change one line and deploy again (fast path), run again, and show both deploys' timelines side
# by side. Everything happens in a temporary folder outside the repository (tool, templates, project,
# NuGet downloads, platform data), the platform is stopped at the end and the folder deleted: nothing is
# left running or on disk.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1

started=$EPOCHREALTIME
# `step NAME HEADER`: ends the previous step (its time goes into the closing summary) and starts the next.
steps=()
step_name=""
step_started=""
step() {
  local now=$EPOCHREALTIME
  [[ -n "$step_name" ]] && steps+=("$step_name $(awk -v a="$step_started" -v b="$now" 'BEGIN { printf "%.1f", b - a }') s")
  step_name="$1"
  step_started=$now
  [[ -n "$2" ]] && printf '\n== %s\n' "$2"
  return 0
}
work="$(mktemp -d)"
platform=""
cleanup() {
  if [[ -n "$platform" ]]; then
    # SIGTERM: a background job of a script ignores SIGINT.
    kill -TERM "$platform" 2>/dev/null || true
    wait "$platform" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

step pack "./scripts/pack.sh   (Skiff.Sdk, the skiff tool and Skiff.Templates into artifacts/packages)"
version="$("$root/scripts/pack.sh" | tail -1)"
packages="$root/artifacts/packages"

# What a user's machine would have: artifacts/packages as a package source beside the machine's own
# (a nuget.config in the folder above the project adds to them; nothing is cleared). NuGet downloads go
# to a folder of this run, with the machine's global-packages folder as a read-only fallback, so packages
# already on the machine are not fetched again and nothing new is left behind in it.
machine_packages="$(dotnet nuget locals global-packages --list | sed 's/^global-packages: //')"
cat >"$work/nuget.config" <<CONFIG
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <config><add key="globalPackagesFolder" value="$work/nuget-packages" /></config>
  <packageSources><add key="skiff-local" value="$packages" /></packageSources>
  <fallbackPackageFolders><add key="machine" value="$machine_packages" /></fallbackPackageFolders>
</configuration>
CONFIG
cd "$work"

step "tool install" "dotnet tool install --tool-path $work/tools --add-source artifacts/packages skiff --version $version"
dotnet tool install --tool-path "$work/tools" --add-source "$packages" skiff --version "$version" | tail -1
skiff="$work/tools/skiff"
# skiff up writes client.json into its data folder; with SKIFF_HOME there, every later command finds it.
export SKIFF_HOME="$work/data"

step "template + new project" "dotnet new install Skiff.Templates; dotnet new skiff-jobs -n MyJobs"
# A private template hive, so the user's own `dotnet new` list is left as it was.
dotnet new install "$packages/Skiff.Templates.$version.nupkg" --debug:custom-hive "$work/hive" >/dev/null
dotnet new skiff-jobs -n MyJobs --debug:custom-hive "$work/hive" | head -1
(cd MyJobs && find . -path '*/obj' -prune -o -type f -print | sed 's|^\./|   MyJobs/|' | LC_ALL=C sort)

# Locations run sandboxed (bubblewrap, a user per location). A machine that cannot (not root, no apt-get) runs the
# quickstart's own trusted project without a sandbox, and says so.
isolation=()
if ! sandbox_problem="$("$root/scripts/sandbox.sh" install 2>&1)"; then
  echo "no sandbox for this run: ${sandbox_problem#sandbox.sh: }; starting skiff up --no-sandbox (the quickstart deploys only its own project)"
  isolation=(--no-sandbox)
fi

step up "skiff up ${isolation[*]}  (embedded platform: server + agent, SQLite and files in $work/data)"
"$skiff" up --data "$work/data" --port 0 "${isolation[@]}" >"$work/up.log" 2>&1 &
platform=$!
# Ready once it has said which isolation is in force (the agent has started by then).
for _ in $(seq 1 300); do
  grep -q '^isolation: ' "$work/up.log" && break
  kill -0 "$platform" 2>/dev/null || { cat "$work/up.log"; exit 1; }
  sleep 0.1
done
grep -q '^isolation: ' "$work/up.log" || { echo "skiff up did not start within 30 s:"; cat "$work/up.log"; exit 1; }
grep -m1 '^skiff is up' "$work/up.log"
grep -m1 '^isolation: ' "$work/up.log"

step "deploy (full)" "skiff deploy MyJobs/MyJobs --location quickstart   (first deploy: full path)"
"$skiff" deploy MyJobs/MyJobs --location quickstart

step run "skiff run quickstart report --param rows=3"
"$skiff" run quickstart report --param rows=3

step "deploy (fast)" "one-line change in MyJobs/MyJobs/Jobs.cs, then skiff deploy again   (fast path)"
sed -i 's/"Read {Count} rows"/"Read {Count} rows, changed and deployed on the fast path"/' MyJobs/MyJobs/Jobs.cs
"$skiff" deploy MyJobs/MyJobs --location quickstart

step run "skiff run quickstart report --param rows=3   (the changed line)"
"$skiff" run quickstart report --param rows=3

step history "the two deploys side by side (skiff history quickstart --timeline)"
"$skiff" history quickstart --timeline --limit 2

step "" ""
echo
printf 'quickstart done in %s s: %s\n' "$(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')" "$(IFS=,; echo "${steps[*]}" | sed 's/,/, /g')"
echo "stopping the platform and deleting $work"
