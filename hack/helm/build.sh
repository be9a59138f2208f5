#!/usr/bin/env bash
# Builds helm from the Go module proxy into a cache outside the repo and prints its
# path. Keyed by this module's go.mod/go.sum and the Go version: unchanged, it costs nothing.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_root="${MODELLOOP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/modelloop}"
# Helm's default Kubernetes version (what `helm template` and `helm lint` check a chart's
# kubeVersion against) comes from link-time flags upstream's Makefile sets from client-go;
# without them it is v1.20.0 and a chart requiring >= 1.31 could not be templated.
client_go="$(cd "$here" && go list -m -f '{{.Version}}' k8s.io/client-go)"  # v0.MINOR.PATCH
k8s_minor="$(echo "$client_go" | cut -d. -f2)"
ldflags="-s -w"
for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$k8s_minor"
done
key="$(cat "$here/go.mod" "$here/go.sum" <(go version) <(echo "$ldflags") | sha256sum | cut -c1-16)"
out="$cache_root/helm/$key"
if [[ ! -x "$out/helm" ]]; then
  echo "building helm into $out (first time takes a few minutes)" >&2
  tmp="$out.tmp.$$"
  mkdir -p "$tmp"
  (cd "$here" && go build -trimpath -ldflags "$ldflags" -o "$tmp/helm" helm.sh/helm/v3/cmd/helm)
  rm -rf "$out"
  mv "$tmp" "$out"
fi
echo "$out/helm"
