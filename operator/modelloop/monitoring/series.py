"""The per-Model series of the operator's /metrics, bounded.

Series labelled by Model (and version, metric, slice) are most of the operator's memory
and of every scrape at thousands of Models. They are held here as plain numbers, not as
one prometheus-client child each (about 1 KB apiece), exported by collectors at scrape
time, and bounded three ways:

- a *detail* level (``MODELLOOP_METRICS_DETAIL``): ``all``; ``verdicts`` (no values,
  samples, coverage, drift statistics or durations); ``problems`` (only checks that do
  not pass, canary versions and rollouts in flight; no per-Model counters);
- a *cap* (``MODELLOOP_METRICS_MAX_SERIES``) on the per-Model series of one registry:
  beyond it new series are not exported, and ``modelloop_metrics_series_dropped_total``
  counts each one refused;
- *forgetting*: a Model's series go with it (``BoundedRegistry.forget``).

docs/metrics.md lists every series and what each costs.
"""

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from threading import Lock

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from ..api.vocabulary import VerdictName

ModelKey = tuple[str, str]  # namespace, name
DEFAULT_MAX_SERIES = 200_000
DETAIL_ENV = "MODELLOOP_METRICS_DETAIL"
MAX_SERIES_ENV = "MODELLOOP_METRICS_MAX_SERIES"


class Detail(StrEnum):
    ALL = "all"
    VERDICTS = "verdicts"
    PROBLEMS = "problems"


COUNTS = frozenset({Detail.ALL, Detail.VERDICTS})  # where per-Model counters are exported


class Parts(StrEnum):
    """What is exported of one metric or drift check."""

    NONE = "none"
    VERDICT = "verdict"  # its verdict gauges
    ALL = "all"  # its verdict gauges, value, samples and coverage


def exported_parts(detail: Detail, verdict: str, canary: bool) -> Parts:
    """``canary``: the check is of the version a rollout is moving traffic to."""
    if detail is Detail.ALL:
        return Parts.ALL
    if detail is Detail.VERDICTS:
        return Parts.VERDICT
    return Parts.ALL if canary or verdict != VerdictName.PASS else Parts.NONE


@dataclass(frozen=True)
class SeriesLimits:
    detail: Detail = Detail.ALL
    max_series: int = DEFAULT_MAX_SERIES


def series_limits(env: Mapping[str, str]) -> SeriesLimits:
    """The limits the environment sets; ValueError names a bad setting."""
    detail = env.get(DETAIL_ENV) or Detail.ALL
    if detail not in tuple(Detail):
        raise ValueError(f"{DETAIL_ENV}={detail!r}: expected one of {', '.join(Detail)}")
    raw = env.get(MAX_SERIES_ENV) or str(DEFAULT_MAX_SERIES)
    if not raw.isdigit():
        raise ValueError(f"{MAX_SERIES_ENV}={raw!r}: expected a whole number of series")
    return SeriesLimits(Detail(detail), int(raw))


class SeriesBudget:
    """How many per-Model series are exported, against the most allowed (thread-safe)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._lock = Lock()

    def refit(self, held: int, sizes: Sequence[int]) -> list[bool]:
        """Give back ``held`` series, then take each of ``sizes`` in order if it fits."""
        with self._lock:
            self.used -= held
            total = sum(sizes)
            if self.used + total <= self.limit:  # all of them fit: each in turn would
                self.used += total
                return [True] * len(sizes)
            admitted = []
            for size in sizes:
                fits = self.used + size <= self.limit
                if fits:
                    self.used += size
                admitted.append(fits)
            return admitted


class BoundedRegistry(CollectorRegistry):
    """A registry whose per-Model series share one budget and one detail level, and are
    forgotten together when their Model goes."""

    def __init__(self, limits: SeriesLimits | None = None) -> None:
        super().__init__()
        self._collectors: list[Collector] = []  # in the order they collect
        self.limits = limits or SeriesLimits()
        self.budget = SeriesBudget(self.limits.max_series)
        self.dropped = Counter(
            "modelloop_metrics_series_dropped",
            "Per-Model series not exported because the series cap was reached",
            registry=self,
        )
        Gauge(
            "modelloop_metrics_series",
            "Per-Model series exported (under the cap, at the detail level)",
            registry=self,
        ).set_function(lambda: self.budget.used)
        Gauge(
            "modelloop_metrics_series_limit",
            "The most per-Model series exported (MODELLOOP_METRICS_MAX_SERIES)",
            registry=self,
        ).set(self.limits.max_series)
        self._forgetters: list[Callable[[str, str], None]] = []

    def register(self, collector: Collector) -> None:
        super().register(collector)
        self._collectors.append(collector)

    def unregister(self, collector: Collector) -> None:
        super().unregister(collector)
        self._collectors.remove(collector)

    def collectors(self) -> list[Collector]:
        """Every collector, in the order ``collect`` visits them (for /metrics, streamed)."""
        return list(self._collectors)

    def admit(self, size: int, key: Hashable, refused: set[Hashable]) -> bool:
        """Take ``size`` series for a new ``key``. When they do not fit, ``key`` joins
        ``refused`` and its series are counted dropped, once."""
        if self.budget.refit(0, [size])[0]:
            refused.discard(key)
            return True
        if key not in refused:
            refused.add(key)
            self.dropped.inc(size)
        return False

    def on_forget(self, forget: Callable[[str, str], None]) -> None:
        self._forgetters.append(forget)

    def forget(self, namespace: str, model: str) -> None:
        """Remove every series of a Model (deleted, or no longer this operator's)."""
        for forget in self._forgetters:
            forget(namespace, model)


class _PerModel:
    """Children of one family, per Model and label values, each ``size`` series."""

    def __init__(self, registry: BoundedRegistry, size: int, exported: bool) -> None:
        self._registry = registry
        self._size = size
        self._exported = exported
        self._children: dict[ModelKey, dict[tuple[str, ...], list[float]]] = {}
        self._refused: dict[ModelKey, set[Hashable]] = {}  # label values not admitted
        self._lock = Lock()
        registry.on_forget(self.forget)

    def _child(self, key: ModelKey, values: tuple[str, ...], new: int) -> list[float] | None:
        """The child's numbers (``new`` zeros when it is admitted now); None when it is not
        exported. Called under the lock."""
        if not self._exported:
            return None
        children = self._children.get(key)
        child = children.get(values) if children is not None else None
        if child is not None:
            return child
        refused = self._refused.get(key, set())
        if not self._registry.admit(self._size, values, refused):
            self._refused[key] = refused
            return None
        child = [0.0] * new
        self._children.setdefault(key, {})[values] = child
        return child

    def forget(self, namespace: str, model: str) -> None:
        with self._lock:
            children = self._children.pop((namespace, model), {})
            self._refused.pop((namespace, model), None)
        self._registry.budget.refit(self._size * len(children), [])

    def _rows(self) -> list[tuple[ModelKey, tuple[str, ...], tuple[float, ...]]]:
        with self._lock:
            return [
                (key, values, tuple(child))
                for key, children in self._children.items()
                for values, child in children.items()
            ]


class _Increment:
    def __init__(self, counter: "ModelCounter", key: ModelKey, values: tuple[str, ...]) -> None:
        self._counter, self._key, self._values = counter, key, values

    def inc(self, amount: float = 1.0) -> None:
        self._counter.inc(self._key, self._values, amount)


class ModelCounter(_PerModel):
    """A counter labelled ``namespace``, ``model`` and ``labels``; used as prometheus-client's
    (``counter.labels(namespace, model, *values).inc()``)."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labels: tuple[str, ...],
        registry: BoundedRegistry,
        details: frozenset[Detail] = COUNTS,
    ) -> None:
        super().__init__(registry, 1, registry.limits.detail in details)
        self.name, self.documentation = name, documentation
        self.labelnames = ("namespace", "model", *labels)
        registry.register(self)

    def labels(self, namespace: str, model: str, *values: str) -> _Increment:
        return _Increment(self, (namespace, model), values)

    def inc(self, key: ModelKey, values: tuple[str, ...], amount: float = 1.0) -> None:
        with self._lock:
            child = self._child(key, values, 1)
            if child is not None:
                child[0] += amount

    def describe(self) -> Iterable[Metric]:
        return [CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)]

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for key, values, (count,) in self._rows():
            family.add_metric((*key, *values), count)
        return [family]


class ModelHistogram(_PerModel):
    """A histogram labelled ``namespace``, ``model`` and ``labels``."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labels: tuple[str, ...],
        buckets: tuple[float, ...],
        registry: BoundedRegistry,
        details: frozenset[Detail] = frozenset({Detail.ALL}),
    ) -> None:
        # A bucket per bound, +Inf, the sum and the count.
        super().__init__(registry, len(buckets) + 3, registry.limits.detail in details)
        self.name, self.documentation = name, documentation
        self.labelnames = ("namespace", "model", *labels)
        self.bounds = tuple(sorted(buckets))
        registry.register(self)

    def observe(self, namespace: str, model: str, values: tuple[str, ...], value: float) -> None:
        """Non-cumulative counts per bound, then +Inf's, then the sum."""
        with self._lock:
            child = self._child((namespace, model), values, len(self.bounds) + 2)
            if child is None:
                return
            index = next((i for i, b in enumerate(self.bounds) if value <= b), len(self.bounds))
            child[index] += 1
            child[-1] += value

    def describe(self) -> Iterable[Metric]:
        return [HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)]

    def collect(self) -> Iterable[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        edges = [*(str(float(b)) for b in self.bounds), "+Inf"]
        for key, values, child in self._rows():
            cumulative, buckets = 0.0, []
            for edge, count in zip(edges, child[:-1], strict=True):
                cumulative += count
                buckets.append((edge, cumulative))
            family.add_metric([*key, *values], buckets, child[-1])
        return [family]
