"""The loop on a KServe InferenceService, end to end: real API server with KServe's CRD,
KServe's controller played by the harness, two live model servers standing for the
predictor's revisions, a real Prometheus, the operator, and traffic split by the
percents KServe reports for the revisions."""

import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from localcluster.kserve import FakeKServe
from localcluster.kubelet import TRAINING_JOB, finish_pod
from localcluster.waiting import wait_for
from tests.e2e.conftest import RATES
from tests.harness.canary import CANARY, MODEL, STABLE, RolloutParts, breach_loop, forward_only
from tests.harness.kserve import KServeWorld

from modelloop.kube.rest import DEPLOYMENTS, SERVICES, Kube, Resource

PODS = Resource("", "v1", "pods")
GOOD = {"mobile": 0.85, "web": 0.85}
BETTER = {"mobile": 0.95, "web": 0.95}
WORSE_ON_WEB = {"mobile": 0.99, "web": 0.6}


@pytest.fixture
def kserve_world(
    kube: Kube, namespace: str, kserve_crd: list[str], rollout_parts: RolloutParts
) -> Iterator[Callable[..., KServeWorld]]:
    """Makes the churn model's world on an InferenceService, KServe played by the harness."""
    kserve = FakeKServe(kube, namespace, ready_after=1.0).start()

    def make(
        stable: Mapping[str, float],
        candidate: Mapping[str, float],
        rates: Mapping[str, float] = RATES,
        **spec: Any,
    ) -> KServeWorld:
        return KServeWorld(rollout_parts, kserve, stable, candidate, rates, spec)

    yield make
    kserve.stop()


def no_deployments_of_modelloop(world: KServeWorld) -> None:
    selector = f"modelloop.dev/model={MODEL}"
    assert world.kube.list(DEPLOYMENTS, world.namespace, selector) == []
    assert world.kube.list(SERVICES, world.namespace, selector) == []


def serves_alone(world: KServeWorld, version: str) -> None:
    """The predictor serves ``version``'s artifact with all the traffic (no percent)."""

    def settled() -> bool:
        predictor = world.inference_service()["spec"]["predictor"]
        return (
            predictor["model"]["storageUri"] == f"s3://models/{MODEL}/{version}"
            and "canaryTrafficPercent" not in predictor
        )

    wait_for(settled, 60, f"the InferenceService serves {version} alone")


def test_a_candidate_better_everywhere_walks_the_steps_and_is_promoted(
    kserve_world: Callable[..., KServeWorld],
) -> None:
    world = kserve_world(GOOD, BETTER)
    world.release()
    world.await_phase(CANARY, "Serving", timeout=150)
    world.await_phase(STABLE, "Retired", timeout=30)
    wait_for(lambda: world.canary_weights()[-1] == 100, 30, "the data plane follows")
    weights = world.canary_weights()
    assert forward_only(weights), weights
    assert [w for w in weights if w] == [10, 50, 100], weights
    promoted = world.condition("Promoted")
    assert (promoted["status"], promoted["reason"]) == ("True", "Promoted")
    serves_alone(world, CANARY)
    assert world.condition("Ready")["reason"] == "InferenceServiceReady"
    no_deployments_of_modelloop(world)
    assert world.traffic.stats().failed == {}


def test_a_candidate_worse_on_one_slice_is_rolled_back_naming_the_slice(
    kserve_world: Callable[..., KServeWorld],
) -> None:
    world = kserve_world(GOOD, WORSE_ON_WEB)
    world.release()
    world.await_phase(CANARY, "RolledBack", timeout=120)
    rolled_back = wait_for(lambda: world.condition("RolledBack"), 30, "the RolledBack condition")
    assert rolled_back["reason"] == "AnalysisFailed"
    assert "on slice web" in rolled_back["message"]
    assert "on slice mobile" not in rolled_back["message"]
    [event] = world.await_events("RolledBack")
    assert "accuracy on slice web: canary 0." in event
    serves_alone(world, STABLE)  # stable's artifact again, in a revision of its own
    wait_for(lambda: world.canary_weights()[-1] == 0, 30, "weights back to stable")
    assert max(world.canary_weights()) == 10, world.canary_weights()
    assert world.status()["stableVersion"] == STABLE
    no_deployments_of_modelloop(world)


# --------------------------------------------------------------------------- the loop

BROKEN_ON_MOBILE = {"mobile": 0.6, "web": 0.85}
LOOP = breach_loop(job=TRAINING_JOB)


def trained(mobile_champion: float) -> str:
    """The trainer's result: churn-v2's artifact, better than the champion on mobile."""
    rows = [("mobile", 0.95, mobile_champion), ("web", 0.95, 0.95)]

    def metrics(column: int) -> list[dict[str, Any]]:
        return [
            {"metric": "accuracy", "slice": row[0], "value": row[column], "samples": 2000}
            for row in rows
        ]

    return json.dumps(
        {
            "artifactURI": f"s3://models/{MODEL}/{CANARY}",
            "metrics": {"candidate": metrics(1), "champion": metrics(2)},
        }
    )


def test_the_loop_closes_on_an_inference_service(
    kserve_world: Callable[..., KServeWorld],
) -> None:
    """Breach → training → validation → canary → promotion, all on the InferenceService."""
    world = kserve_world(GOOD, BETTER, **LOOP)
    world.servers[STABLE].set_accuracy(BROKEN_ON_MOBILE)  # the concept turns on mobile
    pod = wait_for(
        lambda: [
            p
            for p in world.kube.list(PODS, world.namespace, "modelloop.dev/training")
            if p["status"].get("phase") == "Running"
        ],
        90,
        "a training started by the breach (its pod Running: kwok leaves it to the harness)",
    )[0]
    running = (world.status().get("training") or {}).get("running") or {}
    trigger = running.get("trigger") or {}
    assert trigger.get("kind") == "breach", running
    assert {"metric": "accuracy", "slice": "mobile"} in trigger.get("failing", []), running
    finish_pod(world.kube, world.namespace, pod["metadata"]["name"], trained(0.6))
    world.await_phase(CANARY, "Canary", timeout=60)  # Validated, then rolled out
    world.await_phase(CANARY, "Serving", timeout=150)
    wait_for(lambda: world.canary_weights()[-1] == 100, 30, "the data plane follows")
    weights = world.canary_weights()
    assert forward_only(weights), weights
    assert [w for w in weights if w] == [10, 50, 100], weights
    serves_alone(world, CANARY)
    wait_for(
        lambda: world.condition("Healthy").get("status") == "True",
        60,
        "accuracy within its objective again",
    )
    no_deployments_of_modelloop(world)
