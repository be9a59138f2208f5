"""Canary rollouts end to end: real API server and Prometheus, two live model servers,
and a traffic generator obeying the weights the operator writes."""

import time
from collections.abc import Callable

import pytest
from localcluster.controlplane import ControlPlane
from localcluster.waiting import wait_for
from prometheus_api_client import PrometheusConnect
from tests.harness.admission import deny_operator_writes
from tests.harness.canary import (
    ACCURACY,
    CANARY,
    MODEL,
    STABLE,
    CanaryFleet,
    CanaryWorld,
    StatusLog,
    changes,
    forward_only,
    percent,
    rollout,
)
from tests.harness.world import sample

from modelloop.api.resources import MODELS
from modelloop.kube.rest import EVENTS

GOOD = {"mobile": 0.85, "web": 0.85}
BETTER = {"mobile": 0.95, "web": 0.95}
WORSE_ON_WEB = {"mobile": 0.99, "web": 0.6}  # better on average (0.795 vs ...) but not on web
ALL_PROVIDERS = ["gateway-managed", "gateway-patch", "istio-managed", "replicas"]
# Enough canary samples at 10% (4/s on web) for the test to see web's drop at its first step.
# Drawn 20 000 times against analysis.analyse: with ACCURACY's 40 samples a single analysis
# passes a canary at 0.6 against 0.85 10-35% of the time (first to fifth tested analysis;
# the level shrinks as they add up), so two passed in a row now and then and the rollout
# went on to 50% (seen in CI); with 200, none passed.
POWERED = {**ACCURACY, "minSamples": 200, "window": "60s"}


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
    world = canary_world(traffic, GOOD, WORSE_ON_WEB, metrics=[POWERED])
    world.release()
    world.await_phase(CANARY, "RolledBack", timeout=180)
    wait_for(lambda: world.canary_weights()[-1] == 0, 30, "weights back to stable")
    weights = world.canary_weights()
    assert max(weights) == 10, weights  # never past the first step
    # The version is marked first; the Model's conditions follow in the same pass.
    rolled_back = wait_for(lambda: world.condition("RolledBack"), 30, "the RolledBack condition")
    assert rolled_back["reason"] == "AnalysisFailed"
    assert "on slice web" in rolled_back["message"]
    assert "on slice mobile" not in rolled_back["message"]
    [event] = world.await_events("RolledBack")
    assert "accuracy on slice web: canary 0." in event
    assert world.status()["stableVersion"] == STABLE
    assert "canary" not in world.status()


def test_too_little_labelled_traffic_stays_inconclusive_until_the_deadline(
    canary_world: Callable[..., CanaryWorld],
) -> None:
    steps = rollout(stepTimeout="25s", maxInconclusive=1000)
    world = canary_world(
        "gateway-managed", GOOD, BETTER, {"mobile": 2.0, "web": 2.0}, rollout=steps
    )
    world.release()
    wait_for(
        lambda: (world.status().get("canary") or {}).get("inconclusive", 0) >= 3, 60, "inconclusive"
    )
    canary = world.status()["canary"]
    assert (canary["step"], canary["weight"], canary["failures"]) == (0, 10, 0)
    assert {row["outcome"] for row in canary["analysis"]} == {"inconclusive"}
    # Each row says why: too few samples, or no series at all in the window yet.
    for row in canary["analysis"]:
        assert row["code"] in ("TooFewSamples", "NoValue"), row
    world.await_phase(CANARY, "RolledBack", timeout=60)
    # The Model's condition is written in the same pass, just after the version's phase.
    rolled_back = wait_for(lambda: world.condition("RolledBack"), 30, "the RolledBack condition")
    assert rolled_back["reason"] == "Inconclusive"
    assert max(world.canary_weights()) == 10


def test_a_restart_mid_rollout_continues_from_the_same_step_without_flapping(
    canary_world: Callable[..., CanaryWorld], control_plane: ControlPlane
) -> None:
    world = canary_world("gateway-managed", GOOD, BETTER)
    routes = [
        {
            "apiGroups": ["gateway.networking.k8s.io"],
            "apiVersions": ["*"],
            "resources": ["httproutes"],
            "operations": ["UPDATE", "CREATE"],
        }
    ]
    world.release()
    wait_for(lambda: (world.status().get("canary") or {}).get("weight") == 10, 90, "step 1 at 10%")
    with deny_operator_writes(control_plane, "hold-weights", routes, "held by the test"):
        wait_for(
            lambda: world.condition("Progressing").get("reason") == "TrafficWriteFailed",
            60,
            "the next weight change is denied",
        )
        canary = world.status()["canary"]
        assert (canary["step"], canary["weight"]) == (0, 10)
        assert percent(world.traffic.timeline[-1].weights) == {STABLE: 90, CANARY: 10}
        world.operator.kill()
    world.start_operator_again()
    world.await_phase(CANARY, "Serving", timeout=120)
    wait_for(lambda: world.canary_weights()[-1] == 100, 30, "the data plane follows")
    weights = world.canary_weights()
    assert forward_only(weights), weights
    assert [w for w in weights if w] == [10, 50, 100], weights
    # The denied step was not announced, and its retries were not either.
    assert len(world.events("StepAdvanced")) == 1
    assert len(world.events("TrafficWriteFailed")) == 1


def test_undo_pins_the_previous_version_back(canary_world: Callable[..., CanaryWorld]) -> None:
    world = canary_world("gateway-managed", GOOD, BETTER)
    world.release()
    world.await_phase(CANARY, "Serving", timeout=150)
    world.kube.merge_patch(MODELS, world.namespace, MODEL, {"spec": {"pinnedVersion": STABLE}})
    world.await_phase(STABLE, "Serving", timeout=60)
    wait_for(lambda: world.canary_weights()[-1] == 0, 30, "traffic back on the pinned version")
    assert world.status()["stableVersion"] == STABLE
    assert world.condition("Pinned")["status"] == "True"
    assert world.phase_of(CANARY) == "Retired"


def test_reaction_time_from_a_visible_degradation_to_weights_back_on_stable(
    canary_world: Callable[..., CanaryWorld], record_property: Callable[[str, object], None]
) -> None:
    """The candidate is good until it reaches 50%, then its web slice degrades. The 50%
    step lasts long enough that it cannot be promoted before the degradation shows."""
    steps = rollout()
    steps["steps"][1]["duration"] = "5m"
    world = canary_world("gateway-managed", GOOD, BETTER, rollout=steps)
    world.release()
    wait_for(lambda: (world.status().get("canary") or {}).get("weight") == 50, 120, "step 2 at 50%")
    world.servers[CANARY].set_accuracy({"mobile": 0.95, "web": 0.5})
    query = (
        'sum(increase(model_correct_predictions_total{version="churn-v2", slice="web"}[10s]))'
        ' / sum(increase(model_predictions_total{version="churn-v2", slice="web"}[10s]))'
    )

    client = PrometheusConnect(world.prometheus.url)

    def degraded() -> bool:
        result = client.custom_query(query)
        return bool(result) and float(result[0]["value"][1]) < 0.8

    wait_for(degraded, 60, "the degradation visible in Prometheus", interval=0.1)
    visible = time.monotonic()
    wait_for(lambda: world.canary_weights()[-1] == 0, 60, "weights back on stable", interval=0.05)
    back = next(
        o.monotonic for o in reversed(world.traffic.timeline) if o.weights.get(CANARY, 0) == 0
    )
    reaction = back - visible
    record_property("reaction_seconds", round(reaction, 2))
    print(f"reaction time: {reaction:.2f} s from visible degradation to weights on stable")
    # The weights go back first; the version is marked RolledBack in the same pass, after.
    world.await_phase(CANARY, "RolledBack", timeout=30)


def test_identical_candidates_with_noisy_metrics_are_never_rolled_back(
    canary_fleet: Callable[..., CanaryFleet],
) -> None:
    """The null case at scale: 10 Models at once, each candidate exactly as good as its
    stable version (0.85 on both slices, its own random draws), one analysed step.

    At confidence 0.999 a rollout is falsely rolled back with probability at most 0.001
    (however many analyses it takes), so this test fails by chance at most 1% of runs.
    """
    steps = rollout(confidence=0.999)
    steps["steps"] = [{"weight": 50, "duration": "6s"}, {"weight": 100}]
    fleet = canary_fleet(10, GOOD, {"mobile": 8.0, "web": 8.0}, rollout=steps)
    fleet.release()
    wait_for(
        lambda: all(phase in ("Serving", "RolledBack") for phase in fleet.phases().values()),
        240,
        "every rollout ended",
    )
    rolled_back = [
        e["message"]
        for e in fleet.kube.list(EVENTS, fleet.namespace)
        if e["reason"] == "RolledBack"
    ]
    assert set(fleet.phases().values()) == {"Serving"}, rolled_back
    metrics = fleet.operator_metrics()
    analyses = {
        outcome: sum(
            sample(metrics, "modelloop_canary_analyses_total", model=name, outcome=outcome) or 0
            for name in fleet.names
        )
        for outcome in ("pass", "fail", "inconclusive")
    }
    print(f"analyses of 10 identical candidates: {analyses}")
    assert analyses["pass"] >= 10  # every promotion rests on passing analyses
    assert analyses["fail"] == 0
    wait_for(
        lambda: all(fleet.canary_weights(name)[-1] == 100 for name in fleet.names),
        30,
        "the data plane follows every promotion",
    )
    assert all(forward_only(fleet.canary_weights(name)) for name in fleet.names)


def test_an_identical_candidate_under_the_default_canary_check_is_promoted_on_10_slices(
    canary_world: Callable[..., CanaryWorld], control_plane: ControlPlane
) -> None:
    """The metric says nothing of how to judge the canary (no ``canary`` settings): the
    default, test auto, z-tests the proportions with their sample counts. An identical
    candidate on 10 slices passes; the old default (a raw difference, nothing allowed)
    failed one of the 10 pairs at the first analysis almost surely. The confidence is the
    null case's: at most 1 run in 1000 rolls it back by chance."""
    ten = [f"s{i}" for i in range(10)]
    steps = rollout(confidence=0.999)
    steps["steps"] = [{"weight": 50, "duration": "6s"}, {"weight": 100}]
    default_check = {k: v for k, v in ACCURACY.items() if k != "canary"}
    same = dict.fromkeys(ten, 0.85)
    world = canary_world(
        "gateway-managed",
        same,
        same,
        dict.fromkeys(ten, 8.0),
        slices=[{"name": s, "matchLabels": {"slice": s}} for s in ten],
        metrics=[default_check],
        rollout=steps,
    )
    log = StatusLog(control_plane.admin.kubeconfig, world.namespace, MODEL)
    try:
        world.release()
        world.await_phase(CANARY, "Serving", timeout=150)
    finally:
        log.stop()
    assert world.events("RolledBack") == []
    analyses = log.analyses()
    assert not [r for rows in analyses for r in rows if r["outcome"] == "fail"], analyses
    # The promotion rests on analyses that z-tested all 10 slices and found no regression.
    passed = [
        rows
        for rows in analyses
        if {(r["outcome"], r["code"]) for r in rows} == {("pass", "NotSignificant")}
    ]
    assert passed, analyses
    assert all(sorted(r["slice"] for r in rows) == ten for rows in passed)
    wait_for(lambda: world.canary_weights()[-1] == 100, 30, "the data plane follows")
    assert [w for w in changes(world.canary_weights()) if w] == [50, 100]


def test_steps_shortened_at_the_second_step_restart_the_rollout_at_the_first(
    canary_world: Callable[..., CanaryWorld], control_plane: ControlPlane
) -> None:
    """10→50→100 edited to 20→100 while the canary is at 50%: the documented rule restarts
    the rollout at the first step of the new steps (weight 20), says so in an Event and the
    Progressing condition, and goes on to promotion, once (no restart loop)."""
    steps = rollout()
    steps["steps"][1]["duration"] = "5m"  # the rollout waits at 50% for the edit
    world = canary_world("gateway-managed", GOOD, BETTER, rollout=steps)
    world.release()
    wait_for(lambda: (world.status().get("canary") or {}).get("weight") == 50, 120, "step 2 at 50%")
    log = StatusLog(control_plane.admin.kubeconfig, world.namespace, MODEL)
    try:
        shorter = [{"weight": 20, "duration": "4s"}, {"weight": 100}]
        world.kube.merge_patch(
            MODELS, world.namespace, MODEL, {"spec": {"rollout": {"steps": shorter}}}
        )
        world.await_phase(CANARY, "Serving", timeout=150)
    finally:
        log.stop()
    [restarted] = world.await_events("RolloutRestarted")
    assert "restarted at step 1 of 2 (20%)" in restarted
    assert "StepsChanged" in log.reasons("Progressing"), log.reasons("Progressing")
    # From step 2 at 50% straight to step 1 at 20%, analysed there, then promoted.
    assert log.steps()[:2] == [(1, 50), (0, 20)], log.steps()
    wait_for(lambda: world.canary_weights()[-1] == 100, 30, "the data plane follows")
    assert [w for w in changes(world.canary_weights()) if w] == [10, 50, 20, 100]
    assert world.condition("Promoted")["reason"] == "Promoted"
    assert world.operator.running
