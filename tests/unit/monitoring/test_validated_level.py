"""maxDrop objectives: each live version judged against the level it was validated at."""

from datetime import UTC, datetime, timedelta
from typing import Any

from modelloop.api.model import ModelSpec
from modelloop.api.vocabulary import VerdictName
from modelloop.monitoring.evaluate import evaluate_model
from modelloop.monitoring.evaluator import target_of
from modelloop.monitoring.plan import SeriesKey
from modelloop.monitoring.readings import Readings
from modelloop.monitoring.verdicts import Observation

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SPEC = ModelSpec.model_validate(
    {
        "serving": {"template": {"spec": {"containers": [{"name": "s", "image": "x"}]}}},
        "slices": [{"name": "eu", "matchLabels": {"region": "eu"}}],
        "metrics": [{"name": "accuracy", "query": "x", "objective": {"maxDrop": 0.03}}],
    }
)


def key(version: str) -> SeriesKey:
    return SeriesKey("metric", "accuracy", "eu", version)


def version(name: str, offline: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {"model": "m", "uri": "u", "metrics": {"candidate": offline}},
    }


def test_each_live_version_has_the_level_it_was_validated_at() -> None:
    model = {
        "metadata": {"name": "m", "namespace": "ns"},
        "status": {"stableVersion": "m-v1", "canary": {"version": "m-v2"}},
    }
    versions = {
        ("ns", "m-v1"): version("m-v1", [{"metric": "accuracy", "slice": "eu", "value": 0.88}]),
        ("ns", "m-v2"): version("m-v2", [{"metric": "accuracy", "slice": "eu", "value": 0.91}]),
        ("ns", "m-v0"): version("m-v0", [{"metric": "accuracy", "slice": "eu", "value": 0.5}]),
    }
    target = target_of(model, SPEC, versions)
    assert target.validated == {("accuracy", "eu", "m-v1"): 0.88, ("accuracy", "eu", "m-v2"): 0.91}


def test_a_drop_breaches_and_clears_only_within_half_of_it() -> None:
    validated = {("accuracy", "eu", "m-v1"): 0.88}
    states: dict[SeriesKey, Any] = {}
    verdicts = []
    for minute, value in enumerate([0.87, 0.84, 0.86, 0.87]):
        evaluated, states = evaluate_model(
            SPEC,
            Readings(metrics={key("m-v1"): Observation(value, 500)}),
            states,
            T0 + timedelta(minutes=minute),
            validated,
        )
        verdicts.append(evaluated[0].verdict)
    assert verdicts == [
        VerdictName.PASS,
        VerdictName.BREACH,
        VerdictName.BREACH,  # 0.02 below: not yet within 0.015
        VerdictName.PASS,
    ]


def test_a_version_without_an_offline_value_is_not_judged_by_the_drop() -> None:
    evaluated, _ = evaluate_model(
        SPEC, Readings(metrics={key("m-v9"): Observation(0.1, 500)}), {}, T0, {}
    )
    assert evaluated[0].verdict is VerdictName.PASS
