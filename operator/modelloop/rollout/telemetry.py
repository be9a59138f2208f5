"""The rollout's own metrics: phase and weight of each Model's canary, and how its
analyses came out, so a dashboard shows a rollout and an alert fires on a rollback."""

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge

from ..api.model import CanaryStatus
from ..api.vocabulary import CanaryPhase

PHASES = tuple(CanaryPhase)


class RolloutTelemetry:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.weight = Gauge(
            "modelloop_rollout_canary_weight",
            "Percent of traffic the canary's step asks for (the route may round it)",
            ("namespace", "model", "version"),
            registry=registry,
        )
        self.phase = Gauge(
            "modelloop_rollout_phase",
            "1 for the current phase of a Model's rollout; no series when none runs",
            ("namespace", "model", "phase"),
            registry=registry,
        )
        self.analyses = Counter(
            "modelloop_canary_analyses",
            "Canary analyses by overall outcome (fail when any metric x slice fails)",
            ("namespace", "model", "outcome"),
            registry=registry,
        )
        self._canaries: dict[tuple[str, str], str] = {}

    def record(
        self, namespace: str, model: str, canary: CanaryStatus | None, analysed: str | None
    ) -> None:
        """The state after one reconcile: the canary (None when no rollout runs) and the
        outcome of an analysis made in it."""
        key = (namespace, model)
        if analysed is not None:
            self.analyses.labels(namespace, model, analysed).inc()
        previous = self._canaries.pop(key, None)
        if previous is not None and (canary is None or canary.version != previous):
            with contextlib.suppress(KeyError):
                self.weight.remove(namespace, model, previous)
        if canary is None:
            for phase in PHASES:
                with contextlib.suppress(KeyError):
                    self.phase.remove(namespace, model, phase)
            return
        self._canaries[key] = canary.version
        self.weight.labels(namespace, model, canary.version).set(canary.weight)
        for phase in PHASES:
            self.phase.labels(namespace, model, phase).set(1.0 if canary.phase == phase else 0.0)

    def forget(self, namespace: str, model: str) -> None:
        self.record(namespace, model, None, None)
