"""Verdicts into status: changes only when a verdict does, conditions and Events explain it."""

from datetime import UTC, datetime, timedelta

import pytest

from modelloop.api.model import ModelSpec
from modelloop.conditions import find
from modelloop.monitoring.evaluate import Evaluated, evaluate_model
from modelloop.monitoring.plan import SeriesKey
from modelloop.monitoring.readings import Readings
from modelloop.monitoring.status import update_status
from modelloop.monitoring.verdicts import Observation, VerdictName

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
EU = SeriesKey("metric", "precision", "eu", "fd-v1")
US = SeriesKey("metric", "precision", "us", "fd-v1")


def passing(key: SeriesKey, value: float = 0.9) -> Evaluated:
    return Evaluated(key, "pass", value, 500)


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
    breach = Evaluated(EU, "breach", 0.71, 480, "below min 0.8")
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
        Evaluated(k, "inconclusive", None, None, "Prometheus default unreachable", True)
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
    few = Evaluated(EU, "inconclusive", 0.5, 12, "fewer samples than minSamples 200")
    update = update_status([], [], [few, passing(US)], T0, 1)
    unavailable = find(update.conditions, "MetricsUnavailable")
    assert unavailable is not None
    assert unavailable["status"] == "False"


def test_drift_verdicts_are_kept_apart_from_metrics() -> None:
    same_name = SeriesKey("drift", "precision", "eu", "fd-v1")
    update = update_status(
        [],
        [],
        [passing(EU), Evaluated(same_name, "breach", 0.31, 900, "psi above threshold 0.2")],
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
    update = update_status([], [], [Evaluated(k, "breach", 0.1, 500) for k in keys], T0, 1)
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
