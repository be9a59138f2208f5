"""The rollout's own metrics: phase and weight of each Model's canary, and how its
analyses came out, so a dashboard shows a rollout and an alert fires on a rollback.

A canary's series exist while it is in flight, at every detail level; the analyses
counter is per Model (not exported at the ``problems`` detail level)."""

from collections.abc import Hashable, Iterable
from threading import Lock

from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from ..api.model import CanaryStatus
from ..api.vocabulary import CanaryPhase
from ..monitoring.series import BoundedRegistry, ModelCounter, ModelKey

PHASES = tuple(CanaryPhase)
CANARY_SERIES = 1 + len(PHASES)  # its weight, and a gauge per phase


class RolloutTelemetry:
    def __init__(self, registry: BoundedRegistry) -> None:
        self._registry = registry
        self.analyses = ModelCounter(
            "modelloop_canary_analyses",
            "Canary analyses by overall outcome (fail when any metric x slice fails)",
            ("outcome",),
            registry,
        )
        self._canaries: dict[ModelKey, tuple[str, int, CanaryPhase]] = {}
        self._refused: set[Hashable] = set()
        self._lock = Lock()
        registry.register(self)
        registry.on_forget(self._end)

    def record(
        self, namespace: str, model: str, canary: CanaryStatus | None, analysed: str | None
    ) -> None:
        """The state after one reconcile: the canary (None when no rollout runs) and the
        outcome of an analysis made in it."""
        if analysed is not None:
            self.analyses.labels(namespace, model, analysed).inc()
        if canary is None:
            self._end(namespace, model)
            return
        key, now = (namespace, model), (canary.version, canary.weight, canary.phase)
        with self._lock:
            if key in self._canaries or self._registry.admit(CANARY_SERIES, key, self._refused):
                self._canaries[key] = now

    def forget(self, namespace: str, model: str) -> None:
        """The Model is gone, or no longer this operator's."""
        self._end(namespace, model)
        self.analyses.forget(namespace, model)

    def _end(self, namespace: str, model: str) -> None:
        with self._lock:
            self._refused.discard((namespace, model))
            if self._canaries.pop((namespace, model), None) is not None:
                self._registry.budget.refit(CANARY_SERIES, [])

    def describe(self) -> Iterable[Metric]:
        return list(self._families())

    def collect(self) -> Iterable[Metric]:
        weight, phase = self._families()
        with self._lock:
            canaries = list(self._canaries.items())
        for (namespace, model), (version, percent, current) in canaries:
            weight.add_metric((namespace, model, version), percent)
            for p in PHASES:
                phase.add_metric((namespace, model, p), 1.0 if current == p else 0.0)
        return [weight, phase]

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                "modelloop_rollout_canary_weight",
                "Percent of traffic the canary's step asks for (the route may round it)",
                labels=("namespace", "model", "version"),
            ),
            GaugeMetricFamily(
                "modelloop_rollout_phase",
                "1 for the current phase of a Model's rollout; no series when none runs",
                labels=("namespace", "model", "phase"),
            ),
        )
