"""The retraining's own metrics: trainings started (by trigger) and finished (by
outcome) with their durations, and candidates judged by the offline gates (by result)."""

from prometheus_client import CollectorRegistry, Counter, Histogram

from ..api.model import TrainingRecord
from .cost import duration_seconds

# From a minute to a day: a training's duration, reservation to result.
DURATION_BUCKETS = (60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400)


class TrainingTelemetry:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.started = Counter(
            "modelloop_trainings_started",
            "Training Jobs started, by trigger kind",
            ("namespace", "model", "trigger"),
            registry=registry,
        )
        self.finished = Counter(
            "modelloop_trainings_finished",
            "Trainings finished: Succeeded made a ModelVersion, Failed did not",
            ("namespace", "model", "outcome"),
            registry=registry,
        )
        self.duration = Histogram(
            "modelloop_training_duration_seconds",
            "Trainings' durations, from the reservation of their sequence number to their result",
            ("namespace", "model", "outcome"),
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.judged = Counter(
            "modelloop_candidates_judged",
            "Candidate versions judged by the offline gates: Validated or Rejected",
            ("namespace", "model", "result"),
            registry=registry,
        )

    def record_finished(self, namespace: str, model: str, finished: TrainingRecord) -> None:
        outcome = finished.outcome or "Failed"
        self.finished.labels(namespace, model, outcome).inc()
        self.duration.labels(namespace, model, outcome).observe(duration_seconds(finished))
