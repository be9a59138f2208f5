#!/usr/bin/env bash
# Fetches the upstream CRDs of the training workloads ModelLoop creates (Kubeflow Trainer's
# TrainJob, Kubeflow's PyTorchJob, KubeRay's RayJob) from the Go module proxy into a cache
# outside the repo, so the tests create workloads against the real schemas.
#
# The newest version of each the proxy serves (`go list -m -versions <module>`):
# kubeflow/trainer v2.0.0, kubeflow/training-operator v1.8.1 (its last release with the
# v1 API; PyTorchJob's successor is Trainer's TrainJob), ray-project/kuberay v1.5.0.
#
# Prints the directory holding the CRDs. Like hack/thirdparty-crds.sh, the directory is
# keyed by a hash of this script (which names the versions), so a change of versions
# refetches and an unchanged one costs nothing; Go's own module cache settings are used.
set -euo pipefail
trainer=github.com/kubeflow/trainer/v2@v2.0.0
training_operator=github.com/kubeflow/training-operator@v1.8.1
kuberay=github.com/ray-project/kuberay/ray-operator@v1.5.0
cache_root="${MODELLOOP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/modelloop}"
key="$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-16)"
out="$cache_root/training-crds/$key"
trainjobs=trainer.kubeflow.org_trainjobs.yaml
pytorchjobs=kubeflow.org_pytorchjobs.yaml
rayjobs=ray.io_rayjobs.yaml

# The directory of a module version in the module cache, downloading it when missing.
module_dir() {
  go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p'
}

if [[ ! -s "$out/$trainjobs" || ! -s "$out/$pytorchjobs" || ! -s "$out/$rayjobs" ]]; then
  tmp="$out.tmp.$$"
  trap 'rm -rf "$tmp"' EXIT
  mkdir -p "$tmp"
  echo "fetching the TrainJob ($trainer), PyTorchJob ($training_operator) and RayJob" \
    "($kuberay) CRDs into $out" >&2
  cp "$(module_dir "$trainer")/manifests/base/crds/$trainjobs" "$tmp/"
  cp "$(module_dir "$training_operator")/manifests/base/crds/$pytorchjobs" "$tmp/"
  cp "$(module_dir "$kuberay")/config/crd/bases/$rayjobs" "$tmp/"
  chmod -R u+w "$tmp"
  rm -rf "$out"
  mv "$tmp" "$out"
fi
echo "$out"
