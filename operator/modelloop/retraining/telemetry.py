"""The retraining's own metrics: trainings started (by trigger) and finished (by
outcome) with their durations, and candidates judged by the offline gates (by result).

Per Model, bounded (monitoring/series.py): the counters are not exported at the
``problems`` detail level, the durations only at ``all``."""

from ..api.model import TrainingRecord
from ..monitoring.series import BoundedRegistry, ModelCounter, ModelHistogram
from .cost import duration_seconds

# From a minute to a day: a training's duration, reservation to result.
DURATION_BUCKETS = (60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400)


class TrainingTelemetry:
    def __init__(self, registry: BoundedRegistry) -> None:
        self.started = ModelCounter(
            "modelloop_trainings_started",
            "Training Jobs started, by trigger kind",
            ("trigger",),
            registry,
        )
        self.finished = ModelCounter(
            "modelloop_trainings_finished",
            "Trainings finished: Succeeded made a ModelVersion, Failed did not",
            ("outcome",),
            registry,
        )
        self.duration = ModelHistogram(
            "modelloop_training_duration_seconds",
            "Trainings' durations, from the reservation of their sequence number to their result",
            ("outcome",),
            DURATION_BUCKETS,
            registry,
        )
        self.judged = ModelCounter(
            "modelloop_candidates_judged",
            "Candidate versions judged by the offline gates: Validated or Rejected",
            ("result",),
            registry,
        )

    def record_finished(self, namespace: str, model: str, finished: TrainingRecord) -> None:
        outcome = finished.outcome or "Failed"
        self.finished.labels(namespace, model, outcome).inc()
        self.duration.observe(namespace, model, (outcome,), duration_seconds(finished))
