#!/usr/bin/env bash
# Runs every test suite and ends with one summary line: "N passed, M failed".
# Installs and starts whatever the tests need beyond the .NET SDK: bubblewrap, so the agent tests and `skiff up`
# sandbox locations as a user ships them (scripts/sandbox.sh; as root, it installs it when missing).
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

"$root/scripts/sandbox.sh" install || { echo "the tests need a machine that can sandbox (see above)" >&2; exit 1; }

# SKIFF_TEST_RESULTS=FOLDER keeps the .trx files there (per-test durations, to find the slow ones); otherwise
# they go to a temporary folder that is removed at the end.
if [[ -n "${SKIFF_TEST_RESULTS:-}" ]]; then
  results="$SKIFF_TEST_RESULTS"
  mkdir -p "$results"
else
  results="$(mktemp -d)"
  trap 'rm -rf "$results"' EXIT
fi

# One build of everything, then the test projects in two lanes side by side. `dotnet test` on the solution ran the
# projects one after another, and the CLI's end-to-end tests (two thirds of the time) spend much of theirs waiting
# on processes, servers and grace periods: the other projects fill those waits. A lane's failure fails the run
# and the other lane still finishes, so the summary counts every test.
# A lane is a list of test projects, each run whole, or as PROJECT@NAME@FILTER: its tests that FILTER selects, with
# their results in NAME.trx (two runs of one project must not write one file).
lane() {
  local lane_status=0 item name filter selection
  for item in "$@"; do
    selection=(--logger "trx")
    if [[ "$item" == *@* ]]; then
      IFS=@ read -r item name filter <<<"$item"
      selection=(--filter "$filter" --logger "trx;LogFileName=$name.trx")
    fi
    # Several tests send SIGINT to the programs they start (Ctrl-C during `skiff run`, `skiff exec`, a job run by
    # hand), and SIGHUP (`skiff exec`). A shell started in the background ignores SIGINT and SIGQUIT, `nohup` ignores
    # SIGHUP, every child inherits that, and .NET then (rightly) never sees the signal: give the test run the default
    # dispositions whatever started it.
    env --default-signal=INT,QUIT,HUP dotnet test "$item" --no-build --nologo "${selection[@]}" --results-directory "$results" "${test_args[@]}" || lane_status=1
  done
  return $lane_status
}
# The launcher's first run (./skiff: a Release ReadyToRun publish of the CLI, minutes of CPU, into its own
# intermediate folder) goes beside the solution's build instead of beside the tests, where it took ~9 minutes of the
# CLI lane in CI and slowed every test around it. Its own test (LauncherTests) then finds it built and runs it; were
# this publish to fail, that test builds again and fails with the errors, so nothing is hidden here.
# The base image of the `skiff export` test (scripts/oci-base.sh: apt-get install podman, debootstrap; about 3 minutes
# on a fresh machine, nothing once cached in .tools/) is made beside the build too, for the same reason; the test runs
# the script again, which then only prints the path, or fails with its errors.
build() {
  "$root/skiff" --version >/dev/null 2>&1 &
  local launcher=$! build_status=0
  "$root/scripts/oci-base.sh" build >/dev/null 2>&1 &
  local base=$!
  dotnet build Skiff.slnx --nologo -v quiet -clp:ErrorsOnly || build_status=1
  wait $launcher
  wait $base
  return $build_status
}
# The packages a team outside the repository installs (scripts/pack.sh: a Release build of the SDK, the CLI and the
# templates) are packed beside the tests instead of inside one: OutsideRepositoryTests' fixture packed them while
# holding one of the CLI lane's three slots for ~6 of its 18 minutes in CI, and that slot was missed by the tests
# queued behind it. The fixture runs the script again, which waits for this pack (a lock) and then only prints the
# version, or packs itself and fails with the errors. Not beside the solution's build: the tests wait for that one.
pack() {
  "$root/scripts/pack.sh" >/dev/null 2>&1 &
  packing=$!
}
test_args=("$@")
status=0
packing=""
if build; then
  pack
  # The other projects' lane ended ~5 minutes before the CLI's in CI (13 and 18 minutes): it runs the CLI classes that
  # need nothing of the others (their own projects, platform and fixtures) after its projects, in a second test
  # host, the web UI (~1 min with its fixture) and a team outside the repository (~1 min with its packages packed).
  # Not when the caller gave arguments (a --filter of their own): then the CLI tests run whole in their lane.
  cli=(tests/Skiff.Cli.Tests)
  late_cli=()
  if [[ ${#test_args[@]} -eq 0 ]]; then
    late='FullyQualifiedName~Skiff.Cli.Tests.Ui.|FullyQualifiedName~Skiff.Cli.Tests.Packages.'
    cli=("tests/Skiff.Cli.Tests@Skiff.Cli.Tests@FullyQualifiedName!~Skiff.Cli.Tests.Ui.&FullyQualifiedName!~Skiff.Cli.Tests.Packages.")
    late_cli=("tests/Skiff.Cli.Tests@Skiff.Cli.Tests.Late@$late")
  fi
  lane "${cli[@]}" &
  cli_lane=$!
  others=()
  for project in tests/*/*.Tests.csproj; do
    [[ "$project" == tests/Skiff.Cli.Tests/* ]] || others+=("$project")
  done
  lane "${others[@]}" "${late_cli[@]}" || status=1
  wait $cli_lane || status=1
  wait $packing
else
  echo "the build failed (errors above): no test ran" >&2
  status=1
fi
# The builds under test started compiler and MSBuild servers; leave nothing running.
dotnet build-server shutdown >/dev/null 2>&1 || true

passed=0
failed=0
for trx in "$results"/*.trx; do
  [[ -f "$trx" ]] || continue
  counters="$(grep -o '<Counters [^>]*>' "$trx" | head -1)"
  p="$(sed -n 's/.* passed="\([0-9]*\)".*/\1/p' <<<"$counters")"
  f="$(sed -n 's/.* failed="\([0-9]*\)".*/\1/p' <<<"$counters")"
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-0}))
done

if [[ $status -ne 0 && $failed -eq 0 ]]; then
  echo "the test run failed before all tests ran (exit $status); see above" >&2
  failed=1
fi
echo "$passed passed, $failed failed"
[[ $status -eq 0 && $failed -eq 0 ]]
