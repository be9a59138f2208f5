"""The operator's own metrics (prometheus-client): live values and verdicts per
model, version, metric and slice, so dashboards and alerts reuse them, plus the
cost of evaluating (requests, errors, durations, status patches).

The per-Model series are bounded (series.py): the detail level and the series cap come
from ``MODELLOOP_METRICS_DETAIL`` and ``MODELLOOP_METRICS_MAX_SERIES``."""

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from threading import Lock
from typing import NamedTuple

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from ..api.vocabulary import VerdictName
from . import exposition
from .evaluate import Evaluated
from .series import BoundedRegistry, ModelKey, Parts, exported_parts, series_limits

VERDICTS = tuple(VerdictName)
SERIES_LABELS = ("namespace", "model", "version", "metric", "slice")
DRIFT_LABELS = ("namespace", "model", "version", "drift", "slice")
CheckKey = tuple[str, str, str, str]  # kind, version, name, slice


class Check(NamedTuple):
    """What one metric or drift check exports; None: not exported (no value, or the
    detail level leaves it out)."""

    kind: str
    version: str
    name: str
    slice: str
    verdict: str
    value: float | None
    samples: float | None
    coverage: float | None

    def series(self) -> int:
        numbers = (self.value is not None) + (self.samples is not None)
        return len(VERDICTS) + numbers + (self.coverage is not None)


@dataclass(frozen=True)
class _Held:
    checks: dict[CheckKey, Check] = field(default_factory=dict)
    series: int = 0
    refused: frozenset[CheckKey] = frozenset()


class EvaluationSeries:
    """The live values and verdicts of every Model's checks, exported at scrape time."""

    def __init__(self, registry: BoundedRegistry) -> None:
        self._registry = registry
        self._models: dict[ModelKey, _Held] = {}
        self._lock = Lock()
        registry.register(self)
        registry.on_forget(self.forget)

    def record(
        self, namespace: str, model: str, evaluated: Iterable[Evaluated], canary: str | None
    ) -> None:
        detail = self._registry.limits.detail
        checks: dict[CheckKey, Check] = {}
        for e in evaluated:
            s = e.series
            if s.kind == "shift":
                continue  # the canary against stable: in the rollout's analysis, not here
            parts = exported_parts(detail, e.verdict, s.version == canary)
            if parts is Parts.NONE:
                continue
            full, metric = parts is Parts.ALL, s.kind == "metric"
            checks[(s.kind, s.version, s.name, s.slice)] = Check(
                s.kind,
                s.version,
                s.name,
                s.slice,
                e.verdict,
                e.value if full else None,
                e.samples if full and metric else None,
                e.coverage if full and metric else None,
            )
        key, dropped = (namespace, model), 0
        with self._lock:
            before = self._models.get(key, _Held())
            # The checks exported already keep their series; new ones queue after them.
            new = checks.keys() - before.checks.keys()
            order = sorted(checks, key=new.__contains__) if new else list(checks)
            sizes = [checks[k].series() for k in order]
            admitted = self._registry.budget.refit(before.series, sizes)
            kept, refused, held = {}, set(), 0
            for k, size, fits in zip(order, sizes, admitted, strict=True):
                if fits:
                    kept[k], held = checks[k], held + size
                    continue
                refused.add(k)
                dropped += 0 if k in before.refused else size
            if kept or refused:
                self._models[key] = _Held(kept, held, frozenset(refused))
            else:
                self._models.pop(key, None)
        if dropped:
            self._registry.dropped.inc(dropped)

    def forget(self, namespace: str, model: str) -> None:
        with self._lock:
            held = self._models.pop((namespace, model), _Held())
            self._registry.budget.refit(held.series, [])

    def describe(self) -> Iterable[Metric]:
        return [_family(*spec) for spec in _FAMILIES.values()]

    def collect(self) -> Iterator[Metric]:
        """One family at a time, each filled when it is wanted (for ``get_sample_value``
        and any registry reader; /metrics renders ``text`` instead)."""
        checks = self._checks()
        for name, spec in _FAMILIES.items():
            family = _family(*spec)
            for (namespace, model), c in checks:
                labels = (namespace, model, c.version, c.name, c.slice)
                for suffix, number in _exported(name, c):
                    family.add_metric((*labels, *suffix), number)
            yield family

    def text(self) -> Iterator[str]:
        """The exposition of every family, a check's lines at a time, rendered from the
        checks held: no sample objects. At 1000 Models that is about 100 000 lines, and
        prometheus-client's rendering of them was the largest object of a scrape; each
        check's lines in a family are one ``str.format`` of a template made per scrape."""
        checks = self._checks()
        for name, (metric, documentation, names) in _FAMILIES.items():
            yield exposition.header(metric, documentation, "gauge")
            kind = _VERDICTS_OF.get(name)
            if kind is not None:
                hot = exposition.OneHot(metric, names, VERDICTS)
                for (namespace, model), c in checks:
                    if c.kind == kind:
                        yield hot.lines((namespace, model, c.version, c.name, c.slice), c.verdict)
                continue
            gauge = exposition.Gauge(metric, names)
            for (namespace, model), c in checks:
                number = _number(name, c)
                if number is not None:
                    yield gauge.line((namespace, model, c.version, c.name, c.slice), number)

    def _checks(self) -> list[tuple[ModelKey, Check]]:
        with self._lock:
            return [(k, c) for k, held in self._models.items() for c in held.checks.values()]


# name -> (metric name, help, labels): the families of the per-Model series.
_FAMILIES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "value": ("modelloop_metric_value", "Live value of a model metric", SERIES_LABELS),
    "samples": ("modelloop_metric_samples", "Samples behind a metric value", SERIES_LABELS),
    "coverage": (
        "modelloop_metric_label_coverage",
        "Share of the window's predictions with their label (metrics with labels.minCoverage)",
        SERIES_LABELS,
    ),
    "verdict": (
        "modelloop_metric_verdict",
        "1 for the current verdict (pass, breach, inconclusive, waiting) of a metric",
        (*SERIES_LABELS, "verdict"),
    ),
    "drift": (
        "modelloop_drift_statistic",
        "Live drift statistic (PSI, KS D or JS divergence)",
        DRIFT_LABELS,
    ),
    "drift_verdict": (
        "modelloop_drift_verdict",
        "1 for the current verdict of a drift check",
        (*DRIFT_LABELS, "verdict"),
    ),
}


def _family(name: str, documentation: str, labels: tuple[str, ...]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=labels)


# The number family -> (the kind of check it is exported for, the Check field it shows).
_NUMBERS = {
    "value": ("metric", "value"),
    "samples": ("metric", "samples"),
    "coverage": ("metric", "coverage"),
    "drift": ("drift", "value"),
}


# The verdict family -> the kind of check it is exported for (one line per verdict).
_VERDICTS_OF = {"verdict": "metric", "drift_verdict": "drift"}


def _number(family: str, c: Check) -> float | None:
    """A check's number in a number family; None: the family is not the check's kind's,
    or the check exports no such number."""
    kind, field_name = _NUMBERS[family]
    number: float | None = getattr(c, field_name) if c.kind == kind else None
    return number


def _exported(family: str, c: Check) -> list[tuple[tuple[str, ...], float]]:
    """A check's samples in one family: (labels after the check's own, value)."""
    kind = _VERDICTS_OF.get(family)
    if kind is not None:
        return [((v,), 1.0 if c.verdict == v else 0.0) for v in VERDICTS] if c.kind == kind else []
    number = _number(family, c)
    return [] if number is None else [((), number)]


# From a change to its reconcile: milliseconds at rest, tens of seconds in a burst.
QUEUE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
# A write's stamp is to the second: finer bounds would tell nothing.
DELAY_BUCKETS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)


class QueueTelemetry:
    """The reconcile work queue's: how many Models wait, how long each waited from the
    change that asked for it (a watch event, an evaluation, the resync) to its reconcile,
    and how long a reconcile took."""

    def __init__(self, r: BoundedRegistry) -> None:
        self.depth = Gauge(
            "modelloop_workqueue_depth", "Models waiting for a reconcile", registry=r
        )
        self.service_turns_waiting = Gauge(
            "modelloop_service_turns_waiting",
            "Models waiting for a turn to create their Service (the API server allocates "
            "ClusterIPs one at a time)",
            registry=r,
        )
        self.wait_seconds = Histogram(
            "modelloop_workqueue_wait_seconds",
            "From the change that asked for a Model's reconcile to its start, by lane "
            "(urgent: a spec edit, a verdict that turned, a canary's analysis)",
            ("lane",),
            buckets=QUEUE_BUCKETS,
            registry=r,
        )
        self.reconcile_seconds = Histogram(
            "modelloop_reconcile_duration_seconds",
            "Wall time of one reconcile of a Model (serving, then training)",
            buckets=QUEUE_BUCKETS,
            registry=r,
        )

    def waited(self, seconds: float, urgent: bool) -> None:
        self.wait_seconds.labels("urgent" if urgent else "normal").observe(seconds)

    def worked(self, seconds: float) -> None:
        self.reconcile_seconds.observe(seconds)


class Telemetry:
    def __init__(self, registry: BoundedRegistry | None = None) -> None:
        self.registry = registry or BoundedRegistry(series_limits(os.environ))
        r = self.registry
        self.evaluations = EvaluationSeries(r)
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
        self.api_requests = Counter(
            "modelloop_api_requests",
            "Requests to the Kubernetes API (watches aside) by verb and resource",
            ("verb", "resource"),
            registry=r,
        )
        self.watch_events = Counter(
            "modelloop_watch_events",
            "Watch events received, by resource (after the API server's label selectors)",
            ("resource",),
            registry=r,
        )
        self.watch_delay = Histogram(
            "modelloop_watch_delay_seconds",
            "From the write that made a watch event (its object's newest managedFields "
            "time, to the second) to the event reaching the operator, by resource",
            ("resource",),
            buckets=DELAY_BUCKETS,
            registry=r,
        )
        self.leading = Gauge(
            "modelloop_leader",
            "1 while this replica acts (it holds the Lease, or runs without election)",
            registry=r,
        )
        self.queue = QueueTelemetry(r)

    def record(
        self,
        namespace: str,
        model: str,
        evaluated: Iterable[Evaluated],
        canary: str | None = None,
    ) -> None:
        """The live series of one Model (``canary``: the version rolling out, if any);
        the series it no longer has go."""
        self.evaluations.record(namespace, model, evaluated, canary)

    def forget(self, namespace: str, model: str) -> None:
        """Every series of a Model, in every family of the registry: it is gone."""
        self.registry.forget(namespace, model)
