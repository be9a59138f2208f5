#!/usr/bin/env bash
# Builds helm from the Go module proxy into a cache outside the repo and prints its
# path. Keyed by this module's go.mod/go.sum and the Go version: unchanged, it costs nothing.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_root="${MODELLOOP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/modelloop}"
key="$(cat "$here/go.mod" "$here/go.sum" <(go version) | sha256sum | cut -c1-16)"
out="$cache_root/helm/$key"
if [[ ! -x "$out/helm" ]]; then
  echo "building helm into $out (first time takes a few minutes)" >&2
  tmp="$out.tmp.$$"
  mkdir -p "$tmp"
  (cd "$here" && go build -trimpath -ldflags "-s -w" -o "$tmp/helm" helm.sh/helm/v3/cmd/helm)
  rm -rf "$out"
  mv "$tmp" "$out"
fi
echo "$out/helm"
