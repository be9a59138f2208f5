#!/usr/bin/env bash
# Proves the suites run on any cluster given by a kubeconfig: starts a control plane
# as a separate program, then runs a subset of the integration and e2e tests through
# MODELLOOP_TEST_KUBECONFIG only (the suites start no cluster of their own).
set -euo pipefail
cd "$(dirname "$0")/.."
workdir="$(mktemp -d)"
.venv/bin/python -m localcluster.controlplane "$workdir" >"$workdir/kubeconfig.path" &
cluster=$!
trap 'kill $cluster; wait $cluster || true; rm -rf "$workdir"' EXIT
for _ in $(seq 120); do [[ -s "$workdir/kubeconfig.path" ]] && break; sleep 1; done
kubeconfig="$(cat "$workdir/kubeconfig.path")"
echo "control plane up; its admin kubeconfig: $kubeconfig"
MODELLOOP_TEST_KUBECONFIG="$kubeconfig" .venv/bin/pytest -p no:cacheprovider -q \
  tests/integration/test_serving.py tests/integration/test_leader_election.py \
  "tests/e2e/test_rollout.py::test_a_candidate_better_everywhere_walks_the_steps_and_is_promoted[gateway-managed]" \
  "$@"
