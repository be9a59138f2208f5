"""Canary rollouts end to end: real API server and Prometheus, two live model servers,
and a traffic generator obeying the weights the operator writes."""

from collections.abc import Callable

import pytest
from tests.harness.canary import (
    CANARY,
    STABLE,
    CanaryWorld,
    forward_only,
)
from tests.harness.waiting import wait_for

GOOD = {"mobile": 0.85, "web": 0.85}
BETTER = {"mobile": 0.95, "web": 0.95}
WORSE_ON_WEB = {"mobile": 0.99, "web": 0.6}  # better on average (0.795 vs ...) but not on web
ALL_PROVIDERS = ["gateway-managed", "gateway-patch", "istio-managed", "replicas"]


@pytest.mark.parametrize("traffic", ALL_PROVIDERS)
def test_a_candidate_better_everywhere_walks_the_steps_and_is_promoted(
    canary_world: Callable[..., CanaryWorld], traffic: str
) -> None:
    world = canary_world(traffic, GOOD, BETTER)
    world.release()
    world.await_phase(CANARY, "Serving", timeout=150)
    wait_for(lambda: world.status().get("stableVersion") == CANARY, 30, "status follows")
    world.await_phase(STABLE, "Retired", timeout=30)
    wait_for(lambda: world.canary_weights()[-1] == 100, 30, "the data plane follows")
    weights = world.canary_weights()
    assert forward_only(weights), weights
    walked = [w for w in weights if w]
    if traffic == "replicas":  # the promotion may show the new stable scaled up first (10:5)
        walked = [w for w in walked if w in (10, 50, 100)]
    assert walked == [10, 50, 100], weights
    promoted = world.condition("Promoted")
    assert (promoted["status"], promoted["reason"]) == ("True", "Promoted")
    assert world.events("Promoted"), "the promotion is explained in an Event"
    assert world.traffic.stats().failed == {}


@pytest.mark.parametrize("traffic", ALL_PROVIDERS)
def test_a_candidate_worse_on_one_slice_is_rolled_back_at_the_first_step(
    canary_world: Callable[..., CanaryWorld], traffic: str
) -> None:
    world = canary_world(traffic, GOOD, WORSE_ON_WEB)
    world.release()
    world.await_phase(CANARY, "RolledBack", timeout=120)
    wait_for(lambda: world.canary_weights()[-1] == 0, 30, "weights back to stable")
    weights = world.canary_weights()
    assert max(weights) == 10, weights  # never past the first step
    rolled_back = world.condition("RolledBack")
    assert rolled_back["reason"] == "AnalysisFailed"
    assert "on slice web" in rolled_back["message"]
    assert "on slice mobile" not in rolled_back["message"]
    [event] = world.events("RolledBack")
    assert "accuracy on slice web: canary 0." in event
    assert world.status()["stableVersion"] == STABLE
    assert "canary" not in world.status()
