#!/usr/bin/env bash
# Fetches the upstream CRDs of the traffic providers ModelLoop writes to (the Gateway API
# HTTPRoute and Istio's VirtualService) from the Go module proxy into a cache outside the
# repo, so the tests validate routes against the real schemas (and CEL rules); and, in its
# subdirectory kserve/, KServe's InferenceService CRD (the serving target of
# spec.serving.kserve), installed only by the tests that serve through KServe.
#
# Prints the directory holding the CRDs. Like hack/controlplane/build.sh, the directory is
# keyed by a hash of this script (which names the versions), so a change of versions
# refetches and an unchanged one costs nothing; Go's own module cache settings are used.
set -euo pipefail
gateway_api=sigs.k8s.io/gateway-api@v1.6.3
istio_api=istio.io/api@v1.32.0
# The newest KServe release the Go module proxy served when chosen (it lists none; v0.17.1
# and v0.18.0 were refused): its CRD has predictor.canaryTrafficPercent (Serverless
# canaries) and no spec.canary / status.canaryStatuses (no RawDeployment canaries).
kserve=github.com/kserve/kserve@v0.17.0
cache_root="${MODELLOOP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/modelloop}"
key="$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-16)"
out="$cache_root/thirdparty-crds/$key"
httproutes=gateway.networking.k8s.io_httproutes.yaml
virtualservices=networking.istio.io_virtualservices.yaml
inferenceservices=serving.kserve.io_inferenceservices.yaml

# The directory of a module version in the module cache, downloading it when missing.
module_dir() {
  go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p'
}

# One document of a multi-document YAML file: the one whose metadata.name is $1.
yaml_document() {
  awk -v want="  name: $1" '
    /^---$/ { if (keep) printf "%s", doc; doc = ""; keep = 0; next }
    { doc = doc $0 "\n"; if ($0 == want) keep = 1 }
    END { if (keep) printf "%s", doc }' "$2"
}

if [[ ! -s "$out/$httproutes" || ! -s "$out/$virtualservices" ||
  ! -s "$out/kserve/$inferenceservices" ]]; then
  tmp="$out.tmp.$$"
  trap 'rm -rf "$tmp"' EXIT
  mkdir -p "$tmp"
  echo "fetching the HTTPRoute ($gateway_api) and VirtualService ($istio_api) CRDs into $out" >&2
  cp "$(module_dir "$gateway_api")/config/crd/standard/$httproutes" "$tmp/"
  yaml_document virtualservices.networking.istio.io \
    "$(module_dir "$istio_api")/kubernetes/customresourcedefinitions.gen.yaml" \
    >"$tmp/$virtualservices"
  [[ -s "$tmp/$virtualservices" ]] || { echo "no VirtualService CRD in $istio_api" >&2; exit 1; }
  echo "fetching the InferenceService CRD ($kserve) into $out/kserve" >&2
  mkdir -p "$tmp/kserve"
  cp "$(module_dir "$kserve")/config/crd/full/$inferenceservices" "$tmp/kserve/"
  chmod -R u+w "$tmp"
  rm -rf "$out"
  mv "$tmp" "$out"
fi
echo "$out"
