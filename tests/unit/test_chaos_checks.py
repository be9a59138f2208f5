"""The chaos run's pure parts (tests/chaos): its seeded plan, the phase a kill lands in,
and the invariants it checks afterwards."""

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.chaos.invariants import (
    BreachClocks,
    SeenJob,
    SeenTraining,
    SeenVersion,
    events_once,
    expected_version,
    final_state,
    jobs_per_sequence,
    route_weights,
    versions_per_training,
)
from tests.chaos.phases import phase
from tests.chaos.plan import FULL, SHORT, WITH_RESTART, make_plan
from tests.chaos.replicas import blind_replicas, refused_writes

NOW = datetime(2026, 12, 1, 20, 0, 0, tzinfo=UTC)


def ago(seconds: float) -> str:
    return (NOW - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- plan


def test_a_seed_always_makes_the_same_plan_and_another_seed_another() -> None:
    assert make_plan(FULL, 7) == make_plan(FULL, 7)
    assert make_plan(FULL, 7).kills != make_plan(FULL, 8).kills


@pytest.mark.parametrize("settings", [FULL, SHORT], ids=["full", "short"])
def test_the_plan_kills_the_replicas_in_turn_and_one_with_each_api_server_restart(
    settings: Any,
) -> None:
    plan = make_plan(settings, 3)
    assert len(plan.kills) == settings.kills
    assert len(plan.apiserver_restarts) == settings.apiserver_restarts
    replicas = [k.replica for k in plan.kills]
    assert all(a != b for a, b in itertools.pairwise(replicas))
    instants = [k.at for k in plan.kills]
    assert instants == sorted(instants)
    for restart in plan.apiserver_restarts:
        assert restart + WITH_RESTART in instants
    start, end = plan.prometheus_down
    assert end - start == pytest.approx(settings.prometheus_down)
    assert start > 0
    assert end <= plan.end


# --------------------------------------------------------------------------- phases


def verdict(version: str, **fields: Any) -> dict[str, Any]:
    return {"metric": "accuracy", "slice": "mobile", "version": version, **fields}


def version(name: str, phase_: str | None, since: float = 600, trained: bool = True) -> Any:
    status = {"phase": phase_, "lastTransitionTime": ago(since)} if phase_ else {}
    spec = {"model": "m", "uri": "file:///x", **({"lineage": {"sequence": 2}} if trained else {})}
    return {"metadata": {"name": name}, "spec": spec, "status": status}


SERVING = [version("m-v1", "Serving", trained=False)]
PHASES = [
    (
        "observing",
        {"stableVersion": "m-v1", "verdicts": [verdict("m-v1", verdict="pass")]},
        SERVING,
    ),
    (
        "breach pending",
        {
            "stableVersion": "m-v1",
            "verdicts": [verdict("m-v1", verdict="pass", failingSince=ago(5))],
        },
        SERVING,
    ),
    (
        "breached",
        {"stableVersion": "m-v1", "verdicts": [verdict("m-v1", verdict="breach")]},
        SERVING,
    ),
    (
        "training",
        {"stableVersion": "m-v1", "training": {"running": {"sequence": 2}}},
        SERVING,
    ),
    ("validating", {"stableVersion": "m-v1"}, [*SERVING, version("m-v2", None)]),
    ("validating", {"stableVersion": "m-v1"}, [*SERVING, version("m-v2", "Validated")]),
    ("observing", {"stableVersion": "m-v1"}, [*SERVING, version("m-v2", "Rejected")]),
    (
        "canary step 2",
        {"stableVersion": "m-v1", "canary": {"version": "m-v2", "step": 1, "weight": 50}},
        SERVING,
    ),
    (
        "rolling back",
        {"stableVersion": "m-v1", "canary": {"version": "m-v2", "phase": "RollingBack"}},
        SERVING,
    ),
    ("promoted", {"stableVersion": "m-v2"}, [version("m-v2", "Serving", since=10)]),
    ("observing", {"stableVersion": "m-v2"}, [version("m-v2", "Serving", since=60)]),
    ("observing", {"stableVersion": "m-v1"}, [version("m-v1", "Serving", 5, trained=False)]),
]


@pytest.mark.parametrize(("expected", "status", "versions"), PHASES)
def test_the_phase_of_a_model(expected: str, status: Any, versions: Any) -> None:
    assert phase(status, versions, NOW) == expected


# --------------------------------------------------------------------------- invariants


def training(sequence: int, outcome: str | None = "Succeeded") -> SeenTraining:
    made = f"m-v{sequence}" if outcome == "Succeeded" else None
    return SeenTraining("m", sequence, f"m-train-{sequence}", outcome, made)


def job(uid: str, sequence: int | None) -> SeenJob:
    return SeenJob(uid, "m", f"m-train-{sequence}", sequence)


@pytest.mark.parametrize(
    ("jobs", "trainings", "codes"),
    [
        ([job("u1", 2)], [training(2)], []),
        ([job("u1", 2), job("u2", 2)], [training(2)], ["DuplicateJob"]),
        ([], [training(2)], ["NoJob"]),
        ([job("u1", 3)], [], ["JobWithoutTraining"]),
        ([job("u1", None)], [], ["JobWithoutSequence"]),
    ],
)
def test_one_job_per_training_sequence(
    jobs: list[SeenJob], trainings: list[SeenTraining], codes: list[str]
) -> None:
    by_key = {(t.model, t.sequence): t for t in trainings}
    assert [v.code for v in jobs_per_sequence(jobs, by_key)] == codes


def made(uid: str, sequence: int, name: str | None = None) -> SeenVersion:
    return SeenVersion(uid, "m", name or f"m-v{sequence}", sequence, ago(30))


@pytest.mark.parametrize(
    ("versions", "trainings", "codes"),
    [
        ([made("u1", 2)], [training(2)], []),
        ([], [training(2)], ["LostVersion"]),
        ([made("u1", 2), made("u2", 2)], [training(2)], ["DuplicateVersion"]),
        ([made("u1", 2, "m-v9")], [training(2)], ["VersionMismatch"]),
        ([made("u1", 2)], [training(2, "Failed")], ["VersionWithoutSuccess"]),
        ([made("u1", 2)], [training(2, None)], ["VersionWithoutSuccess"]),
        ([], [training(2, "Failed")], []),
    ],
)
def test_no_lost_or_duplicate_model_version(
    versions: list[SeenVersion], trainings: list[SeenTraining], codes: list[str]
) -> None:
    by_key = {(t.model, t.sequence): t for t in trainings}
    assert [v.code for v in versions_per_training(versions, by_key)] == codes


@pytest.mark.parametrize(
    ("weights", "code"),
    [({"m-v1": 100}, None), ({"m-v1": 90, "m-v2": 10}, None), ({"m-v1": 90}, "WeightsNot100")],
)
def test_route_weights_sum_to_100(weights: dict[str, int], code: str | None) -> None:
    found = route_weights("m", "7", weights)
    assert (found.code if found else None) == code


def test_a_breach_clock_that_moves_later_during_a_streak_is_a_restart() -> None:
    clocks = BreachClocks()
    assert clocks.observe("m", "1", [verdict("m-v1", failingSince=ago(20))]) == []
    assert clocks.observe("m", "2", [verdict("m-v1", failingSince=ago(20))]) == []
    [found] = clocks.observe("m", "3", [verdict("m-v1", failingSince=ago(5))])
    assert (found.code, found.numbers) == ("ClockRestarted", {"was": ago(20), "now": ago(5)})
    assert (clocks.streaks, clocks.compared) == (1, 2)


def test_a_streak_that_ended_may_start_again_later() -> None:
    clocks = BreachClocks()
    clocks.observe("m", "1", [verdict("m-v1", failingSince=ago(20))])
    assert clocks.observe("m", "2", [verdict("m-v1", verdict="inconclusive")]) == []
    assert clocks.observe("m", "3", [verdict("m-v1", failingSince=ago(5))]) == []
    assert clocks.streaks == 2


def test_after_a_gap_a_model_s_clocks_are_not_compared_across_it() -> None:
    clocks = BreachClocks()
    clocks.observe("m", "1", [verdict("m-v1", failingSince=ago(20))])
    clocks.forget("m")
    assert clocks.observe("m", "9", [verdict("m-v1", failingSince=ago(5))]) == []


def test_a_decision_event_posted_twice() -> None:
    promoted = ("Model/m", "Promoted", "m-v2 promoted")
    pending = ("Model/m", "BreachPending", "accuracy below min")
    [found] = events_once([promoted, pending, pending, promoted])
    assert (found.code, found.numbers["times"]) == ("EventTwice", 2)


def test_the_expected_version_is_the_newest_successful_training_s() -> None:
    trainings = [training(2), training(3, "Failed"), training(4), training(5, None)]
    assert expected_version("m", trainings) == "m-v4"
    assert expected_version("m", []) == "m-v1"


def model(**status: Any) -> dict[str, Any]:
    ready = {"type": "Ready", "status": "True", "reason": "MinimumReplicasAvailable"}
    return {"metadata": {"name": "m"}, "status": {"conditions": [ready], **status}}


def trained(until: str) -> dict[str, Any]:
    return {
        "spec": {"lineage": {"dataWindow": {"end": until}}},
        "status": {"phase": "Serving"},
    }


@pytest.mark.parametrize(
    ("body", "expected_body", "codes"),
    [
        (model(stableVersion="m-v2"), trained(ago(30)), []),
        (model(stableVersion="m-v1"), trained(ago(30)), ["WrongVersion"]),
        (model(stableVersion="m-v2"), trained(ago(90)), ["NotRetrainedAfterDrift"]),
        (
            model(stableVersion="m-v2", canary={"version": "m-v3"}),
            trained(ago(30)),
            ["RolloutInProgress"],
        ),
        (model(stableVersion="m-v2"), None, ["ExpectedNotServing", "NotRetrainedAfterDrift"]),
        (None, None, ["ModelGone"]),
    ],
)
def test_the_final_state(body: Any, expected_body: Any, codes: list[str]) -> None:
    drift = NOW - timedelta(seconds=60)
    assert [v.code for v in final_state("m", body, "m-v2", expected_body, drift)] == codes


BLIND = """Starting Kopf 1.45.2.
waiting to lead: Lease modelloop-system/modelloop
leading as vm-3900
Starting Kopf 1.45.2.
waiting to lead: Lease modelloop-system/modelloop
Unresolved resources cannot be served (try creating their CRDs): \
Selector(group='modelloop.dev', version='v1alpha1', any_name='modelversions'), \
Selector(group='batch', version='v1', any_name='jobs')
Starting the watch-stream for pods.v1 in 'modelloop-chaos'.
leading as vm-4070
Starting Kopf 1.45.2.
Unresolved resources cannot be served (try creating their CRDs): Selector(group='apps', \
version='v1', any_name='deployments')
waiting to lead: Lease modelloop-system/modelloop
Starting Kopf 1.45.2.
Unresolved resources cannot be served (try creating their CRDs): \
Selector(group='serving.kserve.io', version='v1beta1', any_name='inferenceservices'), \
Selector(group='ray.io', version='v1', kind='RayJob')
leading as vm-4200
"""


def test_replicas_that_never_watched_what_they_need() -> None:
    found = blind_replicas(1, BLIND)
    assert [(v.code, v.subject, v.numbers) for v in found] == [
        (
            "LeaderWithoutWatches",
            "operator-b incarnation 2 (vm-4070)",
            {"unwatched": ["modelversions", "jobs"]},
        ),
        ("StandbyWithoutWatches", "operator-b incarnation 3", {"unwatched": ["deployments"]}),
        # Incarnation 4 misses only integrations this cluster does not have: no violation.
    ]


REFUSED = """Traceback (most recent call last):
modelloop.kube.rest.KubeError: 422 Invalid: Model.modelloop.dev "m" is invalid: [too many: 21]
modelloop.kube.rest.KubeError: 409 Conflict: the object has been modified
"""


def test_writes_the_api_server_refused_once_each() -> None:
    found = refused_writes([REFUSED, REFUSED])
    assert [(v.code, v.numbers) for v in found] == [
        ("WriteRefused", {"message": 'Model.modelloop.dev "m" is invalid: [too many: 21]'})
    ]
