"""A Model's training totals and the duration metric."""

from datetime import UTC, datetime, timedelta

from modelloop.api.model import TrainingRecord, TrainingTotals, TrainingTrigger
from modelloop.api.vocabulary import TriggerKind
from modelloop.monitoring.series import BoundedRegistry
from modelloop.retraining.cost import counted, duration_seconds
from modelloop.retraining.telemetry import TrainingTelemetry

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def finished(sequence: int, minutes: float, outcome: str) -> TrainingRecord:
    return TrainingRecord(
        sequence=sequence,
        job=f"m-train-{sequence}",
        trigger=TrainingTrigger(kind=TriggerKind.BREACH),
        started=T0 + timedelta(hours=sequence),
        finished=T0 + timedelta(hours=sequence, minutes=minutes),
        outcome=outcome,
    )


def test_totals_add_each_finished_training_and_its_duration() -> None:
    totals = None
    for record in [finished(1, 12, "Succeeded"), finished(2, 3, "Failed")]:
        totals = counted(totals, record)
    assert totals == TrainingTotals(
        trainings=2, failed=1, seconds=15 * 60, since=T0 + timedelta(hours=1, minutes=12)
    )


def test_a_running_training_has_no_duration_yet() -> None:
    running = finished(1, 5, "Succeeded").model_copy(update={"finished": None})
    assert duration_seconds(running) == 0


def test_the_duration_metric_observes_each_finished_training() -> None:
    registry = BoundedRegistry()
    telemetry = TrainingTelemetry(registry)
    telemetry.record_finished("ns", "m", finished(1, 12, "Succeeded"))
    telemetry.record_finished("ns", "m", finished(2, 3, "Failed"))
    labels = {"namespace": "ns", "model": "m"}
    value = registry.get_sample_value
    assert (
        value("modelloop_training_duration_seconds_sum", labels | {"outcome": "Succeeded"}) == 720
    )
    assert value("modelloop_training_duration_seconds_count", labels | {"outcome": "Failed"}) == 1
    assert value("modelloop_trainings_finished_total", labels | {"outcome": "Failed"}) == 1
