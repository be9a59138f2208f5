"""Verdicts into status: changes only when a verdict does, conditions and Events explain it."""

import json
import math
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest

from modelloop.api.model import ModelSpec, Verdict
from modelloop.api.vocabulary import VerdictName
from modelloop.conditions import find
from modelloop.monitoring.evaluate import Evaluated, evaluate_model
from modelloop.monitoring.plan import SeriesKey
from modelloop.monitoring.readings import Readings
from modelloop.monitoring.status import StatusUpdate, recall_states, update_status
from modelloop.monitoring.verdicts import BreachState, Observation, no_data

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
EU = SeriesKey("metric", "precision", "eu", "fd-v1")
US = SeriesKey("metric", "precision", "us", "fd-v1")


def passing(key: SeriesKey, value: float = 0.9) -> Evaluated:
    return Evaluated(key, VerdictName.PASS, value, 500)


def test_first_evaluation_records_verdicts_and_is_healthy() -> None:
    update = update_status([], [], [passing(EU), passing(US)], T0, 3)
    assert [(v["slice"], v["verdict"], v["value"], v["since"]) for v in update.verdicts] == [
        ("eu", "pass", 0.9, "2026-11-25T12:00:00Z"),
        ("us", "pass", 0.9, "2026-11-25T12:00:00Z"),
    ]
    healthy = find(update.conditions, "Healthy")
    assert healthy is not None
    assert (healthy["status"], healthy["reason"], healthy["observedGeneration"]) == (
        "True",
        "AllPass",
        3,
    )
    assert update.events == []  # a first verdict that passes is not news


def test_new_values_without_a_verdict_change_leave_status_identical() -> None:
    first = update_status([], [], [passing(EU), passing(US)], T0, 3)
    later = update_status(
        first.verdicts,
        first.conditions,
        [passing(EU, 0.93), passing(US, 0.85)],
        T0 + timedelta(minutes=5),
        3,
    )
    assert later.verdicts == first.verdicts  # value as of the change, not the live value
    assert later.conditions == first.conditions
    assert later.events == []


def test_a_breach_on_one_slice_degrades_with_the_numbers() -> None:
    first = update_status([], [], [passing(EU), passing(US)], T0, 1)
    breach = Evaluated(EU, VerdictName.BREACH, 0.71, 480, "below min 0.8")
    later = update_status(
        first.verdicts, first.conditions, [breach, passing(US)], T0 + timedelta(minutes=1), 1
    )
    degraded = find(later.conditions, "Degraded")
    healthy = find(later.conditions, "Healthy")
    assert degraded is not None
    assert healthy is not None
    assert degraded["status"] == "True"
    assert degraded["message"] == (
        "precision on slice eu of fd-v1 = 0.71 (480 samples): below min 0.8"
    )
    assert degraded["lastTransitionTime"] == "2026-11-25T12:01:00Z"
    assert (healthy["status"], healthy["reason"]) == ("False", "Breach")
    [event] = later.events
    assert (event.type, event.reason) == ("Warning", "Breach")
    assert event.message.endswith("(was pass)")
    us = next(v for v in later.verdicts if v["slice"] == "us")
    assert us["since"] == "2026-11-25T12:00:00Z"


def test_unreadable_metrics_are_unavailable_not_degraded() -> None:
    down = [
        Evaluated(k, VerdictName.INCONCLUSIVE, None, None, "Prometheus default unreachable", True)
        for k in (EU, US)
    ]
    update = update_status([], [], down, T0, 1)
    unavailable = find(update.conditions, "MetricsUnavailable")
    degraded = find(update.conditions, "Degraded")
    healthy = find(update.conditions, "Healthy")
    assert unavailable is not None
    assert degraded is not None
    assert healthy is not None
    assert (unavailable["status"], unavailable["reason"]) == ("True", "QueryFailed")
    assert "unreachable" in unavailable["message"]
    assert degraded["status"] == "False"
    assert (healthy["status"], healthy["reason"]) == ("Unknown", "Inconclusive")


def test_too_few_samples_is_inconclusive_but_metrics_are_available() -> None:
    few = Evaluated(EU, VerdictName.INCONCLUSIVE, 0.5, 12, "fewer samples than minSamples 200")
    update = update_status([], [], [few, passing(US)], T0, 1)
    unavailable = find(update.conditions, "MetricsUnavailable")
    assert unavailable is not None
    assert unavailable["status"] == "False"


def test_drift_verdicts_are_kept_apart_from_metrics() -> None:
    same_name = SeriesKey("drift", "precision", "eu", "fd-v1")
    update = update_status(
        [],
        [],
        [
            passing(EU),
            Evaluated(same_name, VerdictName.BREACH, 0.31, 900, "psi above threshold 0.2"),
        ],
        T0,
        1,
    )
    assert [(v["kind"], v["verdict"]) for v in update.verdicts] == [
        ("metric", "pass"),
        ("drift", "breach"),
    ]
    degraded = find(update.conditions, "Degraded")
    assert degraded is not None
    assert degraded["message"].startswith("drift precision on slice eu of fd-v1 = 0.31")


def test_many_breaches_are_summarised() -> None:
    keys = [SeriesKey("metric", "precision", f"s{i}", "fd-v1") for i in range(5)]
    update = update_status(
        [], [], [Evaluated(k, VerdictName.BREACH, 0.1, 500) for k in keys], T0, 1
    )
    degraded = find(update.conditions, "Degraded")
    assert degraded is not None
    assert degraded["message"].endswith("; and 2 more")


def test_a_failing_value_within_its_for_is_pending_with_a_stable_reason() -> None:
    spec = ModelSpec.model_validate(
        {
            "serving": {"template": {"spec": {"containers": [{"name": "s", "image": "x"}]}}},
            "slices": [{"name": "eu", "matchLabels": {"region": "eu"}}],
            "metrics": [
                {
                    "name": "precision",
                    "query": "x",
                    "objective": {"min": 0.8},
                    "breach": {"for": "15m"},
                }
            ],
        }
    )
    readings = Readings(metrics={EU: Observation(0.7, None)})
    first, states = evaluate_model(spec, readings, {}, T0)
    later, _ = evaluate_model(
        spec, Readings(metrics={EU: Observation(0.65, None)}), states, T0 + timedelta(minutes=5)
    )
    assert [(e.verdict, e.reason) for e in first + later] == [
        ("pass", "below min 0.8; a breach once it lasts 15m")
    ] * 2


PENDING = "below min 0.8; a breach once it lasts 15m"


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (("pass", None), ("pass", PENDING), ("Warning", "BreachPending", "(was pass)")),
        (("pass", PENDING), ("breach", "below min 0.8"), ("Warning", "Breach", "(was pending)")),
        (("pass", PENDING), ("pass", None), ("Normal", "Recovered", "(was pending)")),
        (("breach", "below min 0.8"), ("pass", None), ("Normal", "Recovered", "(was breach)")),
        (
            ("inconclusive", "no value"),
            ("pass", PENDING),
            ("Warning", "BreachPending", "(was inconclusive)"),
        ),
    ],
)
def test_each_kind_of_change_has_its_own_event(
    before: tuple[VerdictName, str | None],
    after: tuple[VerdictName, str | None],
    expected: tuple[str, str, str],
) -> None:
    first = update_status([], [], [Evaluated(EU, before[0], 0.9, 500, before[1])], T0, 1)
    later = update_status(
        first.verdicts, first.conditions, [Evaluated(EU, after[0], 0.7, 500, after[1])], T0, 1
    )
    [event] = later.events
    assert (event.type, event.reason) == expected[:2]
    assert event.message.endswith(expected[2])


def spec_with(breach: dict[str, object]) -> ModelSpec:
    return ModelSpec.model_validate(
        {
            "serving": {"template": {"spec": {"containers": [{"name": "s", "image": "x"}]}}},
            "slices": [{"name": "eu", "matchLabels": {"region": "eu"}}],
            "metrics": [
                {"name": "precision", "query": "x", "objective": {"min": 0.8}, "breach": breach}
            ],
        }
    )


FOR_15M = spec_with({"for": "15m"})
TWO_OF_THREE = spec_with({"ofLast": {"failures": 2, "evaluations": 3}})


def evaluations(
    spec: ModelSpec,
    values: list[float],
    start: int = 0,
    previous: list[dict[str, Any]] | None = None,
) -> list[StatusUpdate]:
    """One evaluation a minute from T0 + ``start`` minutes; the breach states come from the
    status alone when ``previous`` is given (a restarted operator), else from memory."""
    status = previous or []
    states = recall_states(status)
    updates: list[StatusUpdate] = []
    for i, value in enumerate(values, start):
        readings = Readings(metrics={EU: Observation(value, None)})
        evaluated, states = evaluate_model(spec, readings, states, T0 + i * timedelta(minutes=1))
        conditions = updates[-1].conditions if updates else []
        updates.append(
            update_status(status, conditions, evaluated, T0 + i * timedelta(minutes=1), 1)
        )
        status = updates[-1].verdicts
    return updates


def test_a_pending_breach_keeps_when_its_streak_began_and_writes_it_once() -> None:
    first, second = evaluations(FOR_15M, [0.7, 0.65])
    [entry] = first.verdicts
    assert (entry["verdict"], entry["failingSince"]) == ("pass", "2026-11-25T12:00:00Z")
    assert second.verdicts == first.verdicts  # nothing changed: no write
    assert second.events == []


def test_a_restarted_operator_declares_the_breach_for_after_the_streak_began() -> None:
    before = evaluations(FOR_15M, [0.7, 0.7, 0.7])
    # The operator restarts with nothing but the status; it evaluates again at minute 10.
    after = evaluations(FOR_15M, [0.7] * 6, start=10, previous=before[-1].verdicts)
    assert [u.verdicts[0]["verdict"] for u in after] == ["pass"] * 5 + ["breach"]
    assert [e.reason for u in after for e in u.events] == ["Breach"]  # no second BreachPending
    breach = after[-1].verdicts[0]
    assert (breach["since"], breach["failingSince"]) == (
        "2026-11-25T12:15:00Z",
        "2026-11-25T12:00:00Z",
    )


@pytest.mark.parametrize(
    ("values", "recent", "writes"),
    [
        ([0.9, 0.9, 0.9, 0.9, 0.9], "...", 3),  # fills up, then stays
        ([0.7, 0.9, 0.9, 0.9], "...", 4),  # a pending breach, then a recovery
        ([0.9, 0.7, 0.9, 0.7], "x.x", 4),  # mixed outcomes: a change each time
    ],
)
def test_of_last_keeps_the_recent_outcomes(values: list[float], recent: str, writes: int) -> None:
    updates = evaluations(TWO_OF_THREE, values)
    assert updates[-1].verdicts[0]["recent"] == recent
    statuses: list[list[dict[str, Any]]] = [[]] + [u.verdicts for u in updates]
    assert sum(a != b for a, b in pairwise(statuses)) == writes


def test_the_breach_states_are_recalled_from_status() -> None:
    status = [
        {"metric": "precision", "slice": "eu", "version": "fd-v1", "verdict": "pass"},
        {
            "metric": "precision",
            "slice": "us",
            "version": "fd-v1",
            "verdict": "pass",
            "reason": PENDING,
            "failingSince": "2026-11-25T12:00:00Z",
        },
        {"kind": "drift", "metric": "amount", "slice": "eu", "version": "fd-v1", "verdict": "pass"},
    ]
    assert recall_states(status) == {US: BreachState(T0)}


def test_no_data_never_reaches_status() -> None:
    nan = Evaluated(EU, VerdictName.INCONCLUSIVE, math.nan, 0.0, no_data("query", math.nan))
    inf = Evaluated(
        US, VerdictName.INCONCLUSIVE, 3.0, math.inf, no_data("sample-count query", math.inf)
    )
    update = update_status([], [], [nan, inf], T0, 1)
    assert [(v.get("value"), v.get("samples")) for v in update.verdicts] == [
        (None, 0.0),
        (3.0, None),
    ]
    json.dumps(update.verdicts, allow_nan=False)
    healthy = find(update.conditions, "Healthy")
    assert healthy is not None
    assert (healthy["status"], healthy["reason"]) == ("Unknown", "Inconclusive")
    assert "no data: the query returned NaN" in healthy["message"]


def test_verdict_entries_are_valid_status() -> None:
    pending = evaluations(FOR_15M, [0.7])[-1].verdicts
    mixed = evaluations(TWO_OF_THREE, [0.9, 0.7])[-1].verdicts
    for entry in pending + mixed:
        assert Verdict.model_validate(entry).to_wire() == entry


def test_a_verdict_waiting_for_labels_says_how_complete_they_are() -> None:
    reason = "waiting for labels: coverage below minCoverage 80%"
    waiting = Evaluated(EU, VerdictName.WAITING, None, None, reason, coverage=0.42)
    update = update_status([], [], [waiting, passing(US)], T0, 1)
    entry = update.verdicts[0]
    assert (entry["verdict"], entry["coverage"]) == ("waiting", 0.42)
    Verdict.model_validate(entry)  # the API takes it
    healthy = find(update.conditions, "Healthy")
    assert healthy is not None
    assert (healthy["status"], healthy["reason"]) == ("Unknown", "WaitingForLabels")
    assert healthy["message"] == (
        "precision on slice eu of fd-v1, labels 42% complete: waiting for labels: "
        "coverage below minCoverage 80%"
    )
    assert [e.reason for e in update.events] == ["WaitingForLabels"]
