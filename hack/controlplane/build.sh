#!/usr/bin/env bash
# Builds the local control plane (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kwok, and kubectl for people) from the Go module proxy into a cache outside the repo.
#
#   hack/controlplane/build.sh          the newest supported Kubernetes (this directory's go.mod)
#   hack/controlplane/build.sh 1.31     an older minor: the module in k8s-1.31/ (go.mod, go.sum)
#
# Prints the directory holding the binaries. The directory is keyed by a hash of
# the module's go.mod/go.sum and the Go version (an older minor's also by its
# name), so a change of versions rebuilds and an unchanged one costs nothing. One
# `go build` of one module so shared packages compile once.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
minor="${1:-}"
module="$here"
prefix=""
if [[ -n "$minor" ]]; then
  module="$here/k8s-$minor"
  prefix="k8s-$minor-"
  if [[ ! -f "$module/go.mod" ]]; then
    echo "no control-plane module for Kubernetes $minor (expected $module/go.mod); have:" \
      "$(cd "$here" && ls -d k8s-* 2>/dev/null | sed 's/^k8s-//' | tr '\n' ' ')" >&2
    exit 2
  fi
fi
cache_root="${MODELLOOP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/modelloop}"
key="$(cat "$module/go.mod" "$module/go.sum" <(go version) | sha256sum | cut -c1-16)"
out="$cache_root/controlplane/$prefix$key"
binaries=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok)

complete() {
  for b in "${binaries[@]}"; do [[ -x "$out/$b" ]] || return 1; done
}

if ! complete; then
  k8s_version="$(cd "$module" && go list -m -f '{{.Version}}' k8s.io/kubernetes)"
  major="${k8s_version#v}"; minor_n="${major#*.}"; major="${major%%.*}"; minor_n="${minor_n%%.*}"
  version_pkg=k8s.io/component-base/version
  ldflags="-s -w -X $version_pkg.gitVersion=$k8s_version -X $version_pkg.gitMajor=$major -X $version_pkg.gitMinor=$minor_n"
  ldflags+=" -X $version_pkg.gitTreeState=clean -X $version_pkg.buildDate=1970-01-01T00:00:00Z"
  tmp="$out.tmp.$$"
  trap 'rm -rf "$tmp"' EXIT  # a failed build leaves nothing behind
  mkdir -p "$tmp"
  # Measured on 2 busy cores: 1.31 in 8.5 min from empty Go caches (615 s of CPU),
  # 23 s when the Go build cache holds its packages (the newest: 4-8 min cold, measured before).
  echo "building control plane $k8s_version into $out: about 5-9 minutes on 2 cores" \
    "when the Go caches are empty (downloads included), under a minute when they hold it" >&2
  started=$SECONDS
  (cd "$module" && go build -trimpath -ldflags "$ldflags" -o "$tmp/" \
    go.etcd.io/etcd/server/v3 \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler \
    k8s.io/kubernetes/cmd/kubectl \
    sigs.k8s.io/kwok/cmd/kwok)
  mv "$tmp/server" "$tmp/etcd"  # go names a /v3 module's binary after its parent element
  rm -rf "$out"
  mv "$tmp" "$out"
  echo "built control plane $k8s_version in $((SECONDS - started)) s" >&2
fi
echo "$out"
