"""What trainings cost: a finished training added to a Model's totals. Pure."""

from ..api.model import TrainingRecord, TrainingTotals


def duration_seconds(record: TrainingRecord) -> float:
    """From the reservation of its sequence number to its recorded result."""
    if record.finished is None:
        return 0.0
    return max((record.finished - record.started).total_seconds(), 0.0)


def counted(totals: TrainingTotals | None, finished: TrainingRecord) -> TrainingTotals:
    before = totals or TrainingTotals()
    return TrainingTotals(
        trainings=before.trainings + 1,
        failed=before.failed + (finished.outcome != "Succeeded"),
        seconds=before.seconds + duration_seconds(finished),
        since=before.since or finished.finished,
    )
