"""The retraining's own metrics: trainings started (by trigger) and finished (by
outcome), and candidates judged by the offline gates (by result)."""

from prometheus_client import CollectorRegistry, Counter


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
        self.judged = Counter(
            "modelloop_candidates_judged",
            "Candidate versions judged by the offline gates: Validated or Rejected",
            ("namespace", "model", "result"),
            registry=registry,
        )
