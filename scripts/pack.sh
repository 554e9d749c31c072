#!/usr/bin/env bash
# Packs what a team installs into artifacts/packages/:
#   Skiff.Sdk (+ .snupkg symbols)   what job projects reference
#   skiff                           the CLI as a .NET tool (command `skiff`)
#   Skiff.Templates                 `dotnet new skiff-jobs`
# Idempotent: packing sources that were already packed does nothing. Prints the packages' version last.
#
# Versioning: every pack of different sources gets a different version, 0.1.0.N with N taken from a hash
# of the sources (src/, the build settings, this script). NuGet's global-packages folder and the tool
# cache keep a package by id and version forever; if two packs with different bytes shared a version,
# a restore or tool install would quietly use whichever came first. With the version tied to the
# content, a version always means the same sources, so a cached copy can never be stale, and the same
# checkout packed twice (or in two clones) gives the same version. Only the newest pack is kept here, so
# `dotnet tool install --add-source artifacts/packages skiff` finds exactly one version.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1

out="$root/artifacts/packages"
mkdir -p "$out"
# Tests, the quickstart and a developer may pack at once: one packs, the others wait and find it done.
exec 9>"$root/artifacts/.pack.lock"
flock 9

base="$(sed -n 's|.*<Version>\(.*\)</Version>.*|\1|p' Directory.Build.props | head -1)"
# SourceLink writes the commit and the remote into the packages (nuspec and PDB), so they are inputs too:
# otherwise two checkouts of the same sources at other commits would pack the same version with other bytes,
# and a lock file's content hash would depend on which one a machine's NuGet cache met first.
hash="$( { { find src \( -name bin -o -name obj \) -prune -o -type f -print
             echo Directory.Build.props Directory.Packages.props global.json .editorconfig scripts/pack.sh | tr ' ' '\n'
           } | LC_ALL=C sort | while read -r f; do [[ -f "$f" ]] && printf '%s\n' "$f" && sha256sum <"$f"; done
           git rev-parse HEAD 2>/dev/null || true
           git remote get-url origin 2>/dev/null || true
         } | sha256sum | cut -c1-7)"
version="$base.$((16#$hash))"

if [[ -f "$out/Skiff.Sdk.$version.nupkg" && -f "$out/Skiff.Sdk.$version.snupkg" && -f "$out/skiff.$version.nupkg" && -f "$out/Skiff.Templates.$version.nupkg" ]]; then
  echo "packages $version are up to date in ${out#"$root/"}" >&2
  echo "$version"
  exit 0
fi

rm -f "$out"/*.nupkg "$out"/*.snupkg
# Built apart from the projects' own bin/obj (artifacts/build), so packing never disturbs a developer's
# or the launcher's incremental builds. ContinuousIntegrationBuild maps source paths to /_/ and turns on
# SourceLink's repository information (the .NET SDK has SourceLink built in). DeterministicTimestamp
# (NuGet 7.9+) gives every zip entry one fixed time instead of now, so the same sources pack to the same
# bytes (2000-01-01: a DOS zip time cannot go before 1980 in any time zone).
for project in src/Skiff.Sdk src/Skiff.Cli src/Skiff.Templates; do
  echo "packing $project ($version)" >&2
  # The template's lock files pin the Skiff.Sdk package packed just before it by NuGet's content hash
  # (base64 SHA-512 of the .nupkg): the same bytes every pack, as the pack is deterministic.
  sdk_hash=""
  if [[ -f "$out/Skiff.Sdk.$version.nupkg" ]]; then
    sdk_hash="$(openssl dgst -sha512 -binary "$out/Skiff.Sdk.$version.nupkg" | base64 -w0)"
  fi
  log="$(mktemp)"
  if ! dotnet pack "$project" -c Release --artifacts-path "$root/artifacts/build" -o "$out" \
      -p:ContinuousIntegrationBuild=true -p:PackageVersion="$version" -p:SkiffSdkVersion="$version" -p:SkiffSdkContentHash="$sdk_hash" -p:DeterministicTimestamp=946684800 \
      -nologo -v:quiet >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "pack.sh: packing $project failed (errors above)" >&2
    exit 1
  fi
  rm -f "$log"
done
ls "$out" >&2
echo "$version"
