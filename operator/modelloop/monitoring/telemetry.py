"""The operator's own metrics (prometheus-client): live values and verdicts per
model, version, metric and slice, so dashboards and alerts reuse them, plus the
cost of evaluating (requests, errors, durations, status patches)."""

import contextlib
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ..api.vocabulary import VerdictName
from .evaluate import Evaluated

VERDICTS = tuple(VerdictName)
SERIES_LABELS = ("namespace", "model", "version", "metric", "slice")


class Telemetry:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.value = Gauge(
            "modelloop_metric_value", "Live value of a model metric", SERIES_LABELS, registry=r
        )
        self.samples = Gauge(
            "modelloop_metric_samples", "Samples behind a metric value", SERIES_LABELS, registry=r
        )
        self.coverage = Gauge(
            "modelloop_metric_label_coverage",
            "Share of the window's predictions with their label (metrics with labels.minCoverage)",
            SERIES_LABELS,
            registry=r,
        )
        self.verdict = Gauge(
            "modelloop_metric_verdict",
            "1 for the current verdict (pass, breach, inconclusive, waiting) of a metric",
            (*SERIES_LABELS, "verdict"),
            registry=r,
        )
        self.drift = Gauge(
            "modelloop_drift_statistic",
            "Live drift statistic (PSI, KS D or JS divergence)",
            ("namespace", "model", "version", "drift", "slice"),
            registry=r,
        )
        self.drift_verdict = Gauge(
            "modelloop_drift_verdict",
            "1 for the current verdict of a drift check",
            ("namespace", "model", "version", "drift", "slice", "verdict"),
            registry=r,
        )
        self.cycle_seconds = Histogram(
            "modelloop_evaluation_duration_seconds", "Wall time of an evaluation cycle", registry=r
        )
        self.models = Gauge(
            "modelloop_evaluation_models", "Models evaluated in the last cycle", registry=r
        )
        self.requests = Counter(
            "modelloop_prometheus_requests",
            "Prometheus queries sent, by outcome",
            ("provider", "outcome"),
            registry=r,
        )
        self.errors = Counter(
            "modelloop_prometheus_errors",
            "Failed Prometheus queries by kind (timeout, tls, connection, http, response, other)",
            ("provider", "kind"),
            registry=r,
        )
        self.request_seconds = Histogram(
            "modelloop_prometheus_request_duration_seconds",
            "Latency of Prometheus queries",
            ("provider",),
            registry=r,
        )
        self.patches = Counter(
            "modelloop_status_patches", "Model status patches made by the evaluation", registry=r
        )
        self.leading = Gauge(
            "modelloop_leader",
            "1 while this replica acts (it holds the Lease, or runs without election)",
            registry=r,
        )
        self._series: dict[tuple[str, str], set[tuple[str, ...]]] = {}
        self._children: dict[tuple[int, tuple[str, ...]], tuple[Gauge, float]] = {}

    def record(self, namespace: str, model: str, evaluated: Iterable[Evaluated]) -> None:
        """Set the live gauges of one Model, removing series it no longer has."""
        seen: set[tuple[str, ...]] = set()
        for e in evaluated:
            labels = (namespace, model, e.series.version, e.series.name, e.series.slice)
            kind = e.series.kind
            if kind == "shift":
                continue  # the canary against stable: in the rollout's analysis, not here
            seen.add((kind, *labels))
            if kind == "metric":
                self._set(self.value, labels, e.value)
                self._set(self.samples, labels, e.samples)
                self._set(self.coverage, labels, e.coverage)
                verdict_gauge = self.verdict
            else:
                self._set(self.drift, labels, e.value)
                verdict_gauge = self.drift_verdict
            for name in VERDICTS:
                self._set(verdict_gauge, (*labels, name), 1.0 if e.verdict == name else 0.0)
        for gone in self._series.get((namespace, model), set()) - seen:
            self._remove(gone)
        self._series[(namespace, model)] = seen

    def forget(self, namespace: str, model: str) -> None:
        for gone in self._series.pop((namespace, model), set()):
            self._remove(gone)

    def _remove(self, key: tuple[str, ...]) -> None:
        kind, labels = key[0], key[1:]
        gauges = (self.value, self.samples, self.coverage) if kind == "metric" else (self.drift,)
        for gauge in gauges:
            self._discard(gauge, labels)
        verdict_gauge = self.verdict if kind == "metric" else self.drift_verdict
        for name in VERDICTS:
            self._discard(verdict_gauge, (*labels, name))

    def _set(self, gauge: Gauge, labels: tuple[str, ...], value: float | None) -> None:
        """Children are cached with the value they hold: prometheus-client validates labels
        on every ``labels()`` and locks on every ``set()``, which would dominate a cycle of
        1000 Models x 50 series, most of whose values did not change."""
        if value is None:
            self._discard(gauge, labels)
            return
        key = (id(gauge), labels)
        known = self._children.get(key)
        if known is not None and known[1] == value:
            return
        child = known[0] if known is not None else gauge.labels(*labels)
        child.set(value)
        self._children[key] = (child, value)

    def _discard(self, gauge: Gauge, labels: tuple[str, ...]) -> None:
        if self._children.pop((id(gauge), labels), None) is not None:
            with contextlib.suppress(KeyError):
                gauge.remove(*labels)
