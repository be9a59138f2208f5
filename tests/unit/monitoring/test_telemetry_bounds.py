"""The operator's per-Model series are bounded: a detail level, a cap on their number,
and none left behind by a retired version, a finished canary or a deleted Model."""

from collections import Counter as Tally
from datetime import UTC, datetime, timedelta
from typing import Literal

import pytest
from kubernetes import client

from modelloop.api.model import CanaryStatus, TrainingRecord, TrainingTrigger
from modelloop.api.vocabulary import TriggerKind, VerdictName
from modelloop.kube.rest import Kube
from modelloop.monitoring.evaluate import Evaluated
from modelloop.monitoring.evaluator import Evaluator, WatchCache
from modelloop.monitoring.plan import SeriesKey
from modelloop.monitoring.series import (
    BoundedRegistry,
    Detail,
    Parts,
    SeriesBudget,
    SeriesLimits,
    exported_parts,
    series_limits,
)
from modelloop.monitoring.telemetry import Telemetry
from modelloop.retraining.telemetry import TrainingTelemetry
from modelloop.rollout.telemetry import RolloutTelemetry

PASS, BREACH, WAITING = VerdictName.PASS, VerdictName.BREACH, VerdictName.WAITING
T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def check(
    version: str,
    verdict: VerdictName = PASS,
    name: str = "acc",
    kind: Literal["metric", "drift"] = "metric",
) -> Evaluated:
    """A metric with a value, samples and coverage: 7 series (a drift check: 5)."""
    return Evaluated(SeriesKey(kind, name, "all", version), verdict, 0.9, 100.0, coverage=0.5)


def series(registry: BoundedRegistry, model: str | None = None) -> Tally[str]:
    """Exported per-Model samples by family (of one Model, or of any)."""
    return Tally(
        metric.name
        for family in registry.collect()
        for metric in family.samples
        if "model" in metric.labels and (model is None or metric.labels["model"] == model)
    )


def exported(registry: BoundedRegistry) -> float | None:
    return registry.get_sample_value("modelloop_metrics_series")


def dropped(registry: BoundedRegistry) -> float | None:
    return registry.get_sample_value("modelloop_metrics_series_dropped_total")


@pytest.mark.parametrize(
    ("env", "limits"),
    [
        ({}, SeriesLimits(Detail.ALL, 200_000)),
        ({"MODELLOOP_METRICS_DETAIL": ""}, SeriesLimits(Detail.ALL, 200_000)),
        ({"MODELLOOP_METRICS_DETAIL": "verdicts"}, SeriesLimits(Detail.VERDICTS, 200_000)),
        (
            {"MODELLOOP_METRICS_DETAIL": "problems", "MODELLOOP_METRICS_MAX_SERIES": "5000"},
            SeriesLimits(Detail.PROBLEMS, 5000),
        ),
        ({"MODELLOOP_METRICS_MAX_SERIES": "0"}, SeriesLimits(Detail.ALL, 0)),
    ],
)
def test_limits_from_the_environment(env: dict[str, str], limits: SeriesLimits) -> None:
    assert series_limits(env) == limits


@pytest.mark.parametrize(
    "env",
    [
        {"MODELLOOP_METRICS_DETAIL": "breaches"},
        {"MODELLOOP_METRICS_MAX_SERIES": "-1"},
        {"MODELLOOP_METRICS_MAX_SERIES": "2e5"},
    ],
)
def test_a_bad_setting_is_refused_naming_it(env: dict[str, str]) -> None:
    with pytest.raises(ValueError, match=next(iter(env))):
        series_limits(env)


@pytest.mark.parametrize(
    ("detail", "verdict", "canary", "parts"),
    [
        (Detail.ALL, PASS, False, Parts.ALL),
        (Detail.ALL, BREACH, True, Parts.ALL),
        (Detail.VERDICTS, PASS, False, Parts.VERDICT),
        (Detail.VERDICTS, BREACH, True, Parts.VERDICT),
        (Detail.PROBLEMS, PASS, False, Parts.NONE),
        (Detail.PROBLEMS, PASS, True, Parts.ALL),
        (Detail.PROBLEMS, BREACH, False, Parts.ALL),
        (Detail.PROBLEMS, VerdictName.INCONCLUSIVE, False, Parts.ALL),
        (Detail.PROBLEMS, WAITING, False, Parts.ALL),
    ],
)
def test_what_a_detail_level_exports_of_a_check(
    detail: Detail, verdict: VerdictName, canary: bool, parts: Parts
) -> None:
    assert exported_parts(detail, verdict, canary) is parts


@pytest.mark.parametrize(
    ("limit", "used", "held", "sizes", "admitted", "after"),
    [
        (10, 0, 0, [7, 7], [True, False], 7),
        (10, 7, 7, [7], [True], 7),  # what a Model held is given back first
        (10, 7, 0, [7, 3], [False, True], 10),  # a smaller one still fits
        (10, 10, 10, [], [], 0),
        (10, 4, 0, [3, 3], [True, True], 10),  # all fit, the last to the limit itself
        (10, 5, 0, [3, 3], [True, False], 8),
        (0, 0, 0, [1], [False], 0),
    ],
)
def test_the_budget_admits_series_in_order_while_they_fit(
    limit: int, used: int, held: int, sizes: list[int], admitted: list[bool], after: int
) -> None:
    budget = SeriesBudget(limit)
    budget.used = used
    assert budget.refit(held, sizes) == admitted
    assert budget.used == after


# One Model: stable v1 with a passing and a breaching metric and a passing drift check,
# canary v2 with a passing metric.
EVALUATED = [
    check("v1"),
    check("v1", BREACH, name="latency"),
    check("v1", kind="drift", name="psi"),
    check("v2"),
]


@pytest.mark.parametrize(
    ("detail", "families"),
    [
        (
            Detail.ALL,
            {
                "modelloop_metric_value": 3,
                "modelloop_metric_samples": 3,
                "modelloop_metric_label_coverage": 3,
                "modelloop_metric_verdict": 12,
                "modelloop_drift_statistic": 1,
                "modelloop_drift_verdict": 4,
            },
        ),
        (Detail.VERDICTS, {"modelloop_metric_verdict": 12, "modelloop_drift_verdict": 4}),
        (
            Detail.PROBLEMS,  # the breach, and the canary's
            {
                "modelloop_metric_value": 2,
                "modelloop_metric_samples": 2,
                "modelloop_metric_label_coverage": 2,
                "modelloop_metric_verdict": 8,
            },
        ),
    ],
)
def test_a_detail_level_bounds_the_evaluation_series(
    detail: Detail, families: dict[str, int]
) -> None:
    registry = BoundedRegistry(SeriesLimits(detail))
    Telemetry(registry).record("ns", "m", EVALUATED, canary="v2")
    assert series(registry) == families
    assert exported(registry) == sum(families.values())


@pytest.mark.parametrize(
    ("detail", "families"),
    [
        (
            Detail.ALL,
            {
                "modelloop_rollout_canary_weight": 1,
                "modelloop_rollout_phase": 5,
                "modelloop_canary_analyses_total": 1,
                "modelloop_trainings_started_total": 1,
                "modelloop_trainings_finished_total": 1,
                "modelloop_training_duration_seconds_bucket": 10,
                "modelloop_training_duration_seconds_sum": 1,
                "modelloop_training_duration_seconds_count": 1,
                "modelloop_candidates_judged_total": 1,
            },
        ),
        (
            Detail.VERDICTS,
            {
                "modelloop_rollout_canary_weight": 1,
                "modelloop_rollout_phase": 5,
                "modelloop_canary_analyses_total": 1,
                "modelloop_trainings_started_total": 1,
                "modelloop_trainings_finished_total": 1,
                "modelloop_candidates_judged_total": 1,
            },
        ),
        (Detail.PROBLEMS, {"modelloop_rollout_canary_weight": 1, "modelloop_rollout_phase": 5}),
    ],
)
def test_a_detail_level_bounds_the_rollout_and_training_series(
    detail: Detail, families: dict[str, int]
) -> None:
    registry = BoundedRegistry(SeriesLimits(detail))
    rollouts, trainings = RolloutTelemetry(registry), TrainingTelemetry(registry)
    rollouts.record("ns", "m", CanaryStatus(version="v2", weight=10), "pass")
    trainings.started.labels("ns", "m", "schedule").inc()
    trainings.judged.labels("ns", "m", "Validated").inc()
    trainings.record_finished("ns", "m", training(minutes=12))
    assert series(registry) == families
    assert exported(registry) == sum(families.values())


def training(minutes: float) -> TrainingRecord:
    return TrainingRecord(
        sequence=1,
        job="m-train-1",
        trigger=TrainingTrigger(kind=TriggerKind.BREACH),
        started=T0,
        finished=T0 + timedelta(minutes=minutes),
        outcome="Succeeded",
    )


def test_durations_fall_into_cumulative_buckets() -> None:
    registry = BoundedRegistry()
    TrainingTelemetry(registry).record_finished("ns", "m", training(minutes=12))
    labels = {"namespace": "ns", "model": "m", "outcome": "Succeeded"}
    bucket = "modelloop_training_duration_seconds_bucket"
    assert registry.get_sample_value(bucket, labels | {"le": "300.0"}) == 0
    assert registry.get_sample_value(bucket, labels | {"le": "900.0"}) == 1
    assert registry.get_sample_value(bucket, labels | {"le": "+Inf"}) == 1


def test_the_series_of_a_retired_version_go() -> None:
    registry = BoundedRegistry()
    telemetry = Telemetry(registry)
    telemetry.record("ns", "m", [check("v1"), check("v2")], canary="v2")
    telemetry.record("ns", "m", [check("v2")])  # v2 promoted, v1 retired: no longer evaluated
    versions = {
        s.labels["version"]
        for family in registry.collect()
        for s in family.samples
        if "version" in s.labels
    }
    assert versions == {"v2"}
    assert exported(registry) == 7


def test_the_gauges_of_a_finished_canary_go_and_its_budget_returns() -> None:
    registry = BoundedRegistry(SeriesLimits(Detail.PROBLEMS))  # no analyses counter
    rollouts = RolloutTelemetry(registry)
    rollouts.record("ns", "m", CanaryStatus(version="v2", weight=10), "pass")
    rollouts.record("ns", "m", CanaryStatus(version="v2", weight=50, phase="Paused"), None)
    assert registry.get_sample_value(
        "modelloop_rollout_phase", {"namespace": "ns", "model": "m", "phase": "Paused"}
    )
    assert exported(registry) == 6
    rollouts.record("ns", "m", None, None)  # promoted
    assert series(registry) == {}
    assert exported(registry) == 0


def test_a_deleted_model_leaves_no_series_in_any_family() -> None:
    registry = BoundedRegistry()
    telemetry = Telemetry(registry)
    rollouts, trainings = RolloutTelemetry(registry), TrainingTelemetry(registry)
    for model in ("m", "other"):
        telemetry.record("ns", model, [check("v1"), check("v2")], canary="v2")
        rollouts.record("ns", model, CanaryStatus(version="v2"), "pass")
        trainings.record_finished("ns", model, training(minutes=12))
    kept = series(registry, "other")
    assert series(registry, "m") == kept
    telemetry.forget("ns", "m")
    assert series(registry, "m") == {}
    assert series(registry) == kept
    assert exported(registry) == sum(kept.values())


def test_the_evaluator_forgets_a_deleted_model_and_one_it_cannot_evaluate() -> None:
    registry = BoundedRegistry()
    telemetry = Telemetry(registry)
    evaluator = Evaluator(Kube(client.ApiClient()), {}, telemetry)
    invalid = {"metadata": {"namespace": "ns", "name": "bad", "generation": 2}, "spec": []}
    cache = WatchCache()
    cache.models[("ns", "bad")] = invalid
    for model in ("bad", "gone"):
        telemetry.record("ns", model, [check("v1")])
    RolloutTelemetry(registry).record("ns", "gone", CanaryStatus(version="v2"), "pass")
    evaluator.due[("ns", "gone")] = 0.0  # evaluated before it was deleted
    evaluator.states[("ns", "gone")] = {}
    evaluator.new_data[("ns", "gone")] = 3.0
    evaluator.tick(cache)
    assert series(registry) == {}
    assert exported(registry) == 0
    assert ("ns", "gone") not in evaluator.states
    assert ("ns", "gone") not in evaluator.new_data
    assert list(evaluator.due) == [("ns", "bad")]


def test_beyond_the_cap_new_series_are_not_exported_and_counted_once() -> None:
    registry = BoundedRegistry(SeriesLimits(max_series=14))
    telemetry = Telemetry(registry)
    telemetry.record("ns", "a", [check("v1"), check("v2")])
    telemetry.record("ns", "b", [check("v1")])
    assert (exported(registry), dropped(registry)) == (14, 7)
    assert series(registry, "b") == {}
    telemetry.record("ns", "b", [check("v1")])  # still refused: not counted again
    telemetry.record("ns", "a", [check("v1"), check("v2"), check("v3")])  # kept, v3 refused
    assert (exported(registry), dropped(registry)) == (14, 14)
    assert series(registry, "a")["modelloop_metric_value"] == 2
    telemetry.forget("ns", "a")
    telemetry.record("ns", "b", [check("v1")])  # room again
    assert (exported(registry), dropped(registry)) == (7, 14)


def test_the_cap_is_shared_by_every_family_of_the_registry() -> None:
    registry = BoundedRegistry(SeriesLimits(max_series=8))
    telemetry, rollouts = Telemetry(registry), RolloutTelemetry(registry)
    trainings = TrainingTelemetry(registry)
    telemetry.record("ns", "m", [check("v1")])  # 7
    rollouts.record("ns", "m", CanaryStatus(version="v2"), "pass")  # its analysis fits, not it
    rollouts.record("ns", "m", CanaryStatus(version="v2"), "pass")  # the counter counts on
    trainings.record_finished("ns", "m", training(minutes=12))  # 1 + 12 refused
    trainings.record_finished("ns", "m", training(minutes=12))  # not counted again
    assert (exported(registry), dropped(registry)) == (8, 19)
    assert (
        registry.get_sample_value(
            "modelloop_canary_analyses_total", {"namespace": "ns", "model": "m", "outcome": "pass"}
        )
        == 2
    )
