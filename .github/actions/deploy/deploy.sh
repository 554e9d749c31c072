#!/usr/bin/env bash
# The Skiff deploy action's one step (action.yml): install the skiff tool unless one is given, run
# `skiff deploy --json`, and turn its answer into a job summary, step outputs and, on failure, an error
# annotation. Runs as well outside GitHub Actions (the tests run it against an embedded platform): every
# GITHUB_* file it writes is optional.
#
# Inputs (environment): SKIFF_SERVER, SKIFF_DEPLOY_TOKEN, SKIFF_LOCATION, SKIFF_PROJECT (default .),
# SKIFF_LOCKED (true|false), SKIFF_VERSION, SKIFF_PACKAGE_SOURCE, SKIFF_CLI (an installed skiff to use).
set -euo pipefail

location="${SKIFF_LOCATION:-}"
title="Skiff deploy${location:+ to $location}"

# An annotation's message is one line: GitHub's workflow commands escape %, CR and LF.
annotate() {
  local message="$1"
  message="${message//'%'/'%25'}"
  message="${message//$'\r'/'%0D'}"
  message="${message//$'\n'/'%0A'}"
  echo "::error title=$title failed::$message"
}

summary() {
  if [[ -n "${GITHUB_STEP_SUMMARY:-}" ]]; then
    cat >>"$GITHUB_STEP_SUMMARY"
  else
    cat >/dev/null
  fi
}

fail() { # message, exit code
  annotate "$1"
  printf '### %s failed\n\n```\n%s\n```\n' "$title" "$1" | summary
  exit "${2:-1}"
}

for input in SKIFF_SERVER SKIFF_DEPLOY_TOKEN SKIFF_LOCATION; do
  [[ -n "${!input:-}" ]] || fail "the input ${input#SKIFF_} is empty; set it in the step's 'with:' (the token from a secret)" 2
done
command -v jq >/dev/null || fail "jq is needed to read skiff's JSON answer; install it (GitHub's runners have it)"
echo "::add-mask::$SKIFF_DEPLOY_TOKEN"

skiff="${SKIFF_CLI:-}"
if [[ -z "$skiff" ]]; then
  tools="${RUNNER_TEMP:-${TMPDIR:-/tmp}}/skiff-tool"
  if [[ ! -x "$tools/skiff" ]]; then
    install=(tool install skiff --tool-path "$tools")
    [[ -n "${SKIFF_VERSION:-}" ]] && install+=(--version "$SKIFF_VERSION")
    [[ -n "${SKIFF_PACKAGE_SOURCE:-}" ]] && install+=(--add-source "$SKIFF_PACKAGE_SOURCE")
    echo "installing the skiff tool: dotnet ${install[*]}" >&2
    dotnet "${install[@]}" >&2 || fail "could not install the skiff tool (dotnet ${install[*]}); check the version and package-source inputs"
  fi
  skiff="$tools/skiff"
fi

arguments=(deploy "${SKIFF_PROJECT:-.}" --location "$SKIFF_LOCATION" --server "$SKIFF_SERVER" --json)
[[ "${SKIFF_LOCKED:-false}" == "true" ]] && arguments+=(--locked)

stdout="$(mktemp)"
stderr="$(mktemp)"
trap 'rm -f "$stdout" "$stderr"' EXIT
echo "skiff ${arguments[*]}" >&2
status=0
# The token goes by environment, never on a command line where `ps` would show it. CI=true keeps the CLI's
# output plain (no progress animation) whatever the runner's terminal.
CI=true SKIFF_TOKEN="$SKIFF_DEPLOY_TOKEN" "$skiff" "${arguments[@]}" >"$stdout" 2>"$stderr" || status=$?
cat "$stderr" >&2

result=""
if jq -e 'type == "object" and has("release")' "$stdout" >/dev/null 2>&1; then
  result="$(cat "$stdout")"
fi

if [[ -z "$result" ]]; then
  # No answer from the server (bad input, build or restore error, unreachable server): what skiff said is the reason.
  message="$(grep -v '^[[:space:]]*$' "$stderr" || true)"
  fail "${message:-skiff deploy exited $status without saying why}" "$(( status == 0 ? 1 : status ))"
fi

field() { jq -r "$1 // empty" <<<"$result"; }
outcome="$(field .outcome)"
if [[ -n "${GITHUB_OUTPUT:-}" ]]; then
  {
    echo "deployment=$(field .deployment)"
    echo "release=$(field .release)"
    echo "path=$(field .path)"
  } >>"$GITHUB_OUTPUT"
fi

{
  if [[ "$outcome" == "live" ]]; then
    echo "### $title: live ($(field .path) path)"
  else
    echo "### $title failed"
  fi
  echo
  echo "| | |"
  echo "|---|---|"
  echo "| path | $(field .path) |"
  echo "| release | \`$(field .release)\` |"
  echo "| deployment | $(field .deployment) |"
  echo "| bytes uploaded | $(field .uploaded.bytes) ($(field .uploaded.blobs) blobs) |"
  echo "| jobs | $(jq -r '(.jobs // []) | join(", ")' <<<"$result") |"
  echo
  echo "| stage | ms |"
  echo "|---|---:|"
  jq -r '(.timings_ms // {}) | to_entries[] | "| \(.key) | \(.value) |"' <<<"$result"
  if [[ "$outcome" != "live" ]]; then
    echo
    echo '```'
    field .error
    echo '```'
  fi
} | summary

if [[ "$outcome" != "live" ]]; then
  annotate "deployment $(field .deployment) did not go live: $(field .error)"
  exit "$(( status == 0 ? 1 : status ))"
fi
exit "$status"
