#!/usr/bin/env bash
# Builds the local control plane (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kwok, and kubectl for people) from the Go module proxy into a cache outside the repo.
#
# Prints the directory holding the binaries. The directory is keyed by a hash of
# this module's go.mod/go.sum and the Go version, so a change of versions
# rebuilds and an unchanged one costs nothing. One `go build` of one module so
# shared packages compile once.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_root="${MODELLOOP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/modelloop}"
key="$(cat "$here/go.mod" "$here/go.sum" <(go version) | sha256sum | cut -c1-16)"
out="$cache_root/controlplane/$key"
binaries=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok)

complete() {
  for b in "${binaries[@]}"; do [[ -x "$out/$b" ]] || return 1; done
}

if ! complete; then
  k8s_version="$(cd "$here" && go list -m -f '{{.Version}}' k8s.io/kubernetes)"
  major="${k8s_version#v}"; minor="${major#*.}"; major="${major%%.*}"; minor="${minor%%.*}"
  version_pkg=k8s.io/component-base/version
  ldflags="-s -w -X $version_pkg.gitVersion=$k8s_version -X $version_pkg.gitMajor=$major -X $version_pkg.gitMinor=$minor"
  ldflags+=" -X $version_pkg.gitTreeState=clean -X $version_pkg.buildDate=1970-01-01T00:00:00Z"
  tmp="$out.tmp.$$"
  mkdir -p "$tmp"
  echo "building control plane $k8s_version into $out (first time takes a while)" >&2
  (cd "$here" && go build -trimpath -ldflags "$ldflags" -o "$tmp/" \
    go.etcd.io/etcd/server/v3 \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler \
    k8s.io/kubernetes/cmd/kubectl \
    sigs.k8s.io/kwok/cmd/kwok)
  mv "$tmp/server" "$tmp/etcd"  # go names a /v3 module's binary after its parent element
  rm -rf "$out"
  mv "$tmp" "$out"
fi
echo "$out"
