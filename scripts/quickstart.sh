#!/usr/bin/env bash
# The main job: start the embedded platform, deploy samples/Hello (full path), run its hello job, change
# one line in a temporary copy and deploy again (fast path), run again, and show both deploys' timelines
# side by side. Uses a fresh data folder and stops the platform at the end: nothing is left running.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

work="$(mktemp -d)"
data="$work/data"
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

export SKIFF_HOME="$data"
./skiff --help >/dev/null # builds the CLI on a fresh clone

# A working copy of the sample (with the SDK it references, laid out as in the repository), restored and
# built once, as a developer's checkout would be: the fast deploy below then measures an edit, not a clone.
copy="$work/copy"
mkdir -p "$copy/samples" "$copy/src"
cp Directory.Build.props Directory.Packages.props global.json .editorconfig "$copy/"
cp samples/Directory.Build.props samples/Directory.Packages.props "$copy/samples/"
cp -r src/Skiff.Sdk "$copy/src/"
cp -r samples/Hello "$copy/samples/"
rm -rf "$copy/src/Skiff.Sdk/bin" "$copy/src/Skiff.Sdk/obj" "$copy/samples/Hello/bin" "$copy/samples/Hello/obj"
./skiff build "$copy/samples/Hello" >/dev/null

echo "== skiff up (embedded platform: server + agent, SQLite and files in $data)"
./skiff up --data "$data" --port 0 >"$work/up.log" 2>&1 &
platform=$!
for _ in $(seq 1 300); do
  [[ -f "$data/client.json" ]] && break
  kill -0 "$platform" 2>/dev/null || { cat "$work/up.log"; exit 1; }
  sleep 0.1
done
[[ -f "$data/client.json" ]] || { echo "skiff up did not start within 30 s:"; cat "$work/up.log"; exit 1; }
head -1 "$work/up.log"

echo
echo "== skiff deploy samples/Hello --location quickstart   (first deploy: full path)"
./skiff deploy samples/Hello --location quickstart

echo
echo "== skiff run quickstart hello"
./skiff run quickstart hello --param name=quickstart

echo
echo "== one-line change in the working copy, then skiff deploy again   (fast path)"
sed -i 's/"Hello, {Name}!"/"Hello, {Name}, from the fast path!"/' "$copy/samples/Hello/Program.cs"
./skiff deploy "$copy/samples/Hello" --location quickstart

echo
echo "== skiff run quickstart hello   (the changed line)"
./skiff run quickstart hello --param name=quickstart

echo
echo "== the two deploys side by side (skiff history quickstart --timeline)"
./skiff history quickstart --timeline --limit 2
