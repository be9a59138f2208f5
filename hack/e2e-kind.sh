#!/usr/bin/env bash
# make e2e-kind: for a machine with Docker and kind. ModelLoop's own development and CI
# machine has no container runtime, so this script has never run there (see README).
#
# 1. a kind cluster; the operator's image built (Dockerfile) and loaded into it;
# 2. the chart installed from that image, watching one namespace, and proven on an
#    example Model: the operator in its pod serves it (Deployment Available, Ready=True);
# 3. the suites that run on any cluster, through the kind cluster's kubeconfig: the
#    serving tests and the rollout e2e tests (their operator runs on this machine, as in
#    every suite; the served pods run registry.k8s.io/pause, loaded into kind).
#
# KIND_CLUSTER names the cluster (default modelloop-e2e); KEEP_CLUSTER=1 keeps it.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in docker kind; do
  if ! command -v "$tool" >/dev/null; then
    echo "make e2e-kind needs $tool and a running Docker engine; $tool is not installed here." >&2
    echo "Every other suite runs without them: make test." >&2
    exit 2
  fi
done
if ! docker info >/dev/null 2>&1; then
  echo "make e2e-kind needs a running Docker engine; docker info cannot reach one." >&2
  exit 2
fi
cluster="${KIND_CLUSTER:-modelloop-e2e}"
image=modelloop:e2e
pause=registry.k8s.io/pause:3.10
release=modelloop-kind  # not the suites' "modelloop": their RBAC must not collide with it
watched=modelloop-kind-smoke
workdir="$PWD/.tmp/kind"
mkdir -p "$workdir"
kubeconfig="$workdir/kubeconfig"
helm="$(hack/helm/build.sh)"
kubectl="$(.venv/bin/python -c 'from localcluster import binaries; print(binaries.control_plane_dir() / "kubectl")')"
k() { "$kubectl" --kubeconfig "$kubeconfig" "$@"; }

kind create cluster --name "$cluster" --kubeconfig "$kubeconfig" --wait 180s
trap '[[ -n "${KEEP_CLUSTER:-}" ]] || kind delete cluster --name "$cluster"' EXIT
docker build -t "$image" .
docker pull "$pause"
kind load docker-image "$image" "$pause" --name "$cluster"

echo "--- the chart from the image, watching $watched"
k create namespace "$watched"
"$helm" install "$release" charts/modelloop --kubeconfig "$kubeconfig" \
  --namespace "$release" --create-namespace \
  --set image.repository="${image%%:*}" --set image.tag="${image##*:}" \
  --set image.pullPolicy=Never --set "watchNamespaces={$watched}" \
  --wait --timeout 5m
.venv/bin/python - "$watched" "$pause" <<'PY' | k apply --server-side -n "$watched" -f -
"""examples/fraud-detector.yaml and its first version, served by the pause image."""
import sys
import yaml
namespace, pause = sys.argv[1:]
model = yaml.safe_load(open("examples/fraud-detector.yaml"))
for container in model["spec"]["serving"]["template"]["spec"]["containers"]:
    container["image"] = pause
    container.pop("ports", None)
version = yaml.safe_load(open("examples/fraud-detector-v1.yaml"))
print(yaml.safe_dump_all([model, version]))
PY
k wait -n "$watched" --for=condition=Ready model/fraud-detector --timeout=180s
k get -n "$watched" models,modelversions,deployments
k logs -n "$release" "deployment/$release" --tail=20

echo "--- the suites through the kind cluster's kubeconfig"
MODELLOOP_TEST_KUBECONFIG="$kubeconfig" MODELLOOP_TEST_SERVING_IMAGE="$pause" \
  .venv/bin/pytest -p no:cacheprovider -q tests/integration/test_serving.py tests/e2e/test_rollout.py "$@"
