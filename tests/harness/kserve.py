"""The rollout world of tests/harness/canary.py served through a KServe InferenceService:
the same churn model, model servers, Prometheus and operator, with KServe played by
localcluster/kserve.py and the traffic split by the revisions' percents KServe reports."""

from collections.abc import Mapping
from typing import Any

from localcluster.kserve import INFERENCE_SERVICES, FakeKServe
from tests.harness.canary import (
    MODEL,
    TRAFFIC,
    CanaryWorld,
    RolloutParts,
    model,
)

Obj = dict[str, Any]
# The predictor of the tests' InferenceService: what a user declares (format, runtime,
# resources); ModelLoop adds the storageUri, the version label and canaryTrafficPercent.
PREDICTOR: Obj = {
    "minReplicas": 1,
    "model": {
        "modelFormat": {"name": "sklearn"},
        "runtime": "kserve-sklearnserver",
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
    },
}
SERVING: Obj = {"kserve": {"predictor": PREDICTOR}}


class KServeWorld(CanaryWorld):
    """Stable serving through the Model's InferenceService and taking traffic; the
    candidate's model server is up, ``release`` makes its ModelVersion."""

    def __init__(
        self,
        parts: RolloutParts,
        kserve: FakeKServe,
        stable: Mapping[str, float],
        candidate: Mapping[str, float],
        rates: Mapping[str, float],
        spec: dict[str, Any],
    ) -> None:
        self.kserve = kserve
        self._start(parts, stable, candidate)
        body = model(TRAFFIC["replicas"], **{"serving": SERVING, **spec})
        del body["spec"]["traffic"]  # KServe splits the traffic
        self._serve(parts, body, kserve.weight_reader(MODEL), rates)

    def inference_service(self) -> Obj:
        found = self.kube.get(INFERENCE_SERVICES, self.namespace, MODEL)
        assert found is not None, f"InferenceService {MODEL}"
        return found

    def deployment_states(self) -> dict[str, Any]:
        """What the InferenceService serves and KServe reports, to explain a stall."""
        isvc = self.kube.get(INFERENCE_SERVICES, self.namespace, MODEL) or {}
        predictor = (isvc.get("spec") or {}).get("predictor") or {}
        status = (isvc.get("status") or {}).get("components", {}).get("predictor") or {}
        return {
            "version": (predictor.get("labels") or {}).get("modelloop.dev/version"),
            "canaryTrafficPercent": predictor.get("canaryTrafficPercent"),
            "latestCreatedRevision": status.get("latestCreatedRevision"),
            "latestReadyRevision": status.get("latestReadyRevision"),
            "traffic": status.get("traffic"),
        }
