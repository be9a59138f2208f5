"""The numbers a notification carries, taken from the status just written."""

from typing import Any

import pytest

from modelloop.api.model import CanaryStatus, ModelSpec, TrainingRecord
from modelloop.notify.evidence import (
    MAX_ROWS,
    canary_evidence,
    gate_evidence,
    training_evidence,
    verdict_evidence,
)

NOW, EARLIER = "2026-05-01T10:00:05Z", "2026-05-01T09:00:00Z"
SPEC = ModelSpec.model_validate(
    {
        "serving": {"template": {"spec": {"containers": [{"name": "s", "image": "x:1"}]}}},
        "slices": [{"name": s, "matchLabels": {"region": s}} for s in ("eu", "us")],
        "metrics": [
            {"name": "precision", "query": "q", "objective": {"min": 0.8}},
            {"name": "latency", "query": "q", "objective": {"max": 0.3}},
        ],
        "drift": [{"name": "amount", "histogram": "h", "test": "psi", "threshold": 0.2}],
    }
)


def entry(metric: str, slice_: str, verdict: str, since: str, **more: Any) -> dict[str, Any]:
    return {
        "kind": "metric",
        "metric": metric,
        "slice": slice_,
        "version": "fraud-v1",
        "verdict": verdict,
        "since": since,
        **more,
    }


VERDICTS = [
    entry("precision", "us", "breach", NOW, value=0.5, samples=100.0, failingSince=EARLIER),
    entry("precision", "eu", "breach", EARLIER, value=0.6, samples=90.0),  # an older breach
    entry("latency", "eu", "pass", NOW, value=0.35, samples=50.0, reason="0.35 > max 0.3"),
    entry("latency", "us", "pass", NOW, value=0.1, samples=50.0),
    entry("amount", "us", "breach", NOW, value=0.4, samples=500.0) | {"kind": "drift"},
]


BEFORE = [
    entry("precision", "us", "inconclusive", EARLIER),
    entry("precision", "eu", "breach", EARLIER, value=0.6, samples=90.0),
    entry("latency", "eu", "pass", EARLIER, value=0.2, samples=50.0),
    entry("latency", "us", "breach", EARLIER, value=0.5, samples=50.0),
]


def test_a_breach_carries_the_entries_that_became_breaches_with_their_bounds() -> None:
    assert verdict_evidence(SPEC, "Breach", VERDICTS, NOW, BEFORE) == {
        "verdicts": [
            # what the breach rule remembers (failingSince, recent) is not news
            entry("precision", "us", "breach", NOW, value=0.5, samples=100.0)
            | {"objective": {"min": 0.8}, "was": "inconclusive"},
            entry("amount", "us", "breach", NOW, value=0.4, samples=500.0)
            | {"kind": "drift", "test": "psi", "threshold": 0.2},  # new: nothing before
        ]
    }


def test_a_pending_breach_and_a_recovery_are_told_apart() -> None:
    pending = verdict_evidence(SPEC, "BreachPending", VERDICTS, NOW, BEFORE)
    recovered = verdict_evidence(SPEC, "Recovered", VERDICTS, NOW, BEFORE)
    assert pending is not None
    assert recovered is not None
    assert [(v["metric"], v["slice"], v["was"]) for v in pending["verdicts"]] == [
        ("latency", "eu", "pass")
    ]
    assert [(v["metric"], v["slice"], v["was"]) for v in recovered["verdicts"]] == [
        ("latency", "us", "breach")
    ]
    assert recovered["verdicts"][0]["objective"] == {"max": 0.3}


@pytest.mark.parametrize(
    "was",
    [
        entry("latency", "us", "inconclusive", EARLIER),
        entry("latency", "us", "pass", EARLIER, reason="0.4 > max 0.3"),  # pending, never held
    ],
)
def test_a_pass_that_ends_no_breach_is_no_recovery(was: dict[str, Any]) -> None:
    assert verdict_evidence(SPEC, "Recovered", VERDICTS, NOW, [was]) == {"verdicts": []}


def test_an_event_of_no_verdict_carries_none() -> None:
    assert verdict_evidence(SPEC, "EvaluationFailed", VERDICTS, NOW) is None


def test_many_entries_are_capped_and_the_rest_counted() -> None:
    many = [entry("precision", f"s{i}", "breach", NOW) for i in range(MAX_ROWS + 7)]
    evidence = verdict_evidence(SPEC, "Breach", many, NOW)
    assert evidence is not None
    assert (len(evidence["verdicts"]), evidence["omitted"]) == (MAX_ROWS, 7)


def row(slice_: str, outcome: str, **numbers: Any) -> dict[str, Any]:
    return {"metric": "precision", "slice": slice_, "outcome": outcome, **numbers}


def test_a_canary_event_carries_the_rollout_and_its_analysis_failing_rows_first() -> None:
    canary = CanaryStatus.model_validate(
        {
            "version": "fraud-v2",
            "weight": 10,
            "step": 0,
            "phase": "RollingBack",
            "analysis": [
                row("eu", "pass", stable=0.95, canary=0.96, code="NotSignificant"),
                row("us", "fail", stable=0.95, canary=0.6, pValue=0.0001, code="Significant"),
            ],
        }
    )
    assert canary_evidence(canary) == {
        "canary": {"version": "fraud-v2", "weight": 10, "step": 0, "phase": "RollingBack"},
        "analysis": [
            row("us", "fail", stable=0.95, canary=0.6, pValue=0.0001, code="Significant")
            | {"reason": ""},
            row("eu", "pass", stable=0.95, canary=0.96, code="NotSignificant") | {"reason": ""},
        ],
    }
    assert canary_evidence(None) is None


def test_a_judged_version_carries_its_gate_checks_failed_first() -> None:
    gates = [
        {"metric": "precision", "slice": "eu", "passed": True, "candidate": 0.95},
        {"metric": "precision", "slice": "us", "passed": False, "candidate": 0.9},
    ]
    assert gate_evidence("fraud-v2", gates) == {"version": "fraud-v2", "gates": gates[::-1]}


def test_a_training_carries_its_record() -> None:
    record = TrainingRecord.model_validate(
        {
            "sequence": 2,
            "job": "fraud-train-2",
            "trigger": {"kind": "breach", "reason": "precision on slice us = 0.5"},
            "started": "2026-05-01T10:00:00Z",
        }
    )
    assert training_evidence(record) == {
        "training": {
            "sequence": 2,
            "job": "fraud-train-2",
            "trigger": {"kind": "breach", "reason": "precision on slice us = 0.5", "failing": []},
            "started": "2026-05-01T10:00:00Z",
        }
    }
