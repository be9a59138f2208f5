"""The feedback service's /metrics: the series' totals (outcomes.Totals) and the
service's own counts, rendered at each scrape by one collector (docs/feedback.md lists
every name)."""

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector

from .outcomes import (
    CONFUSIONS,
    DELAY_BOUNDS,
    SCORE_BOUNDS,
    Confusion,
    SeriesTotals,
    Task,
    Totals,
)
from .store import Pending

PREFIX = "modelloop_feedback_"
RESERVED_LABELS = frozenset({"model", "version", "outcome", "label", "le", "kind", "reason"})


@dataclass
class ServiceCounts:
    """What the service counts besides the series: keyed by (kind, reason), kind,
    attribute."""

    refused: Counter[tuple[str, str]] = field(default_factory=Counter)
    bad_requests: Counter[tuple[str, str]] = field(default_factory=Counter)
    abandoned: Counter[str] = field(default_factory=Counter)
    expired: Counter[str] = field(default_factory=Counter)
    other_values: Counter[str] = field(default_factory=Counter)


def _buckets(bounds: tuple[float, ...], counts: list[int]) -> list[tuple[str, float]]:
    cumulative, running = [], 0
    for bound, count in zip((*map(str, bounds), "+Inf"), counts, strict=True):
        running += count
        cumulative.append((bound, float(running)))
    return cumulative


class FeedbackCollector(Collector):
    def __init__(
        self,
        attributes: tuple[str, ...],
        totals: Totals,
        counts: ServiceCounts,
        pending: Callable[[], Pending],
    ) -> None:
        self.labels = ["model", "version", *attributes]
        self.totals = totals
        self.counts = counts
        self.pending = pending

    def collect(self) -> Iterator[Metric]:
        yield from self._series()
        yield from self._service()

    def _series(self) -> Iterator[Metric]:
        labels = self.labels
        predictions = CounterMetricFamily(
            PREFIX + "predictions", "Predictions received (each id once).", labels=labels
        )
        joined = CounterMetricFamily(
            PREFIX + "labels",
            "Labels joined to their prediction and scored, by the prediction's series.",
            labels=labels,
        )
        skewed = CounterMetricFamily(
            PREFIX + "skewed",
            "Labels dated before their prediction (their delay counts as 0).",
            labels=labels,
        )
        # Summaries without quantiles: _sum (the errors) and _count (the labels scored).
        abs_error = SummaryMetricFamily(
            PREFIX + "abs_error", "Absolute errors of labelled predictions.", labels=labels
        )
        squared_error = SummaryMetricFamily(
            PREFIX + "squared_error", "Squared errors of labelled predictions.", labels=labels
        )
        delay = HistogramMetricFamily(
            PREFIX + "label_delay_seconds",
            "Seconds from a prediction to its label (by their own times).",
            labels=labels,
        )
        classification = _Classification.of(labels)
        for key, series in self.totals.series.items():
            values = list(key)
            predictions.add_metric(values, series.predictions)
            joined.add_metric(values, series.labels)
            skewed.add_metric(values, series.skewed)
            delay.add_metric(values, _buckets(DELAY_BOUNDS, series.delay_buckets), series.delay_sum)
            if series.task is Task.REGRESSION:
                abs_error.add_metric(values, series.labels, series.abs_error)
                squared_error.add_metric(values, series.labels, series.squared_error)
            else:
                classification.add(values, series)
        yield from (predictions, joined, skewed, *classification)
        yield from (abs_error, squared_error, delay)

    def _service(self) -> Iterator[Metric]:
        pending = self.pending()
        gauge = GaugeMetricFamily(
            PREFIX + "pending", "Records waiting for their other half.", labels=["kind"]
        )
        gauge.add_metric(["prediction"], pending.predictions)
        gauge.add_metric(["label"], pending.labels)
        yield gauge
        refused = CounterMetricFamily(
            PREFIX + "refused",
            "Records not counted: duplicate, capacity (the store is full), series_limit, "
            "not_numeric (a regression value).",
            labels=["kind", "reason"],
        )
        for (kind, reason), n in sorted(self.counts.refused.items()):
            refused.add_metric([kind, reason], n)
        yield refused
        bad = CounterMetricFamily(
            PREFIX + "bad_requests",
            "Requests refused whole: too_large, not_json, invalid.",
            labels=["kind", "reason"],
        )
        for (kind, reason), n in sorted(self.counts.bad_requests.items()):
            bad.add_metric([kind, reason], n)
        yield bad
        abandoned = CounterMetricFamily(
            PREFIX + "abandoned",
            "Requests whose sender hung up before their body arrived: nothing in them taken.",
            labels=["kind"],
        )
        for kind, n in sorted(self.counts.abandoned.items()):
            abandoned.add_metric([kind], n)
        yield abandoned
        expired = CounterMetricFamily(
            PREFIX + "expired",
            "Records dropped at the horizon without their other half.",
            labels=["kind"],
        )
        for kind in ("prediction", "label"):
            expired.add_metric([kind], self.counts.expired[kind])
        yield expired
        other = CounterMetricFamily(
            PREFIX + "other_values",
            "Predictions whose attribute value, beyond the attribute's cap, counts as other.",
            labels=["attribute"],
        )
        for attribute in self.labels[2:]:
            other.add_metric([attribute], self.counts.other_values[attribute])
        yield other


class _Classification(NamedTuple):
    """The families of classifiers' series: labelled outcomes, and the estimates made
    before the labels (outcomes.expect)."""

    correct: CounterMetricFamily
    confusion: CounterMetricFamily
    scores: HistogramMetricFamily
    prediction_scores: HistogramMetricFamily
    expected_correct: CounterMetricFamily
    expected_confusion: CounterMetricFamily
    expected_correct_labelled: CounterMetricFamily
    expected_confusion_labelled: CounterMetricFamily

    @classmethod
    def of(cls, labels: list[str]) -> "_Classification":
        outcome = [*labels, "outcome"]
        return cls(
            CounterMetricFamily(
                PREFIX + "correct", "Labels equal to the predicted class.", labels=labels
            ),
            CounterMetricFamily(
                PREFIX + "confusion",
                "Labelled outcomes at the threshold: tp, fp, tn, fn.",
                labels=outcome,
            ),
            HistogramMetricFamily(
                PREFIX + "score",
                "Scores of labelled predictions, by label (1: the positive class, 0: another).",
                labels=[*labels, "label"],
            ),
            HistogramMetricFamily(
                PREFIX + "prediction_score",
                "Scores of all predictions, counted when they arrive.",
                labels=labels,
            ),
            CounterMetricFamily(
                PREFIX + "expected_correct",
                "Predictions expected right at the threshold, from their scores: the sum "
                "of P(correct) = score if flagged positive, else 1 - score.",
                labels=labels,
            ),
            CounterMetricFamily(
                PREFIX + "expected_confusion",
                "Expected outcomes at the threshold, from the scores: flagged positive, "
                "tp += score, fp += 1 - score; else fn += score, tn += 1 - score.",
                labels=outcome,
            ),
            CounterMetricFamily(
                PREFIX + "expected_correct_labelled",
                "expected_correct of the predictions whose label joined, counted then.",
                labels=labels,
            ),
            CounterMetricFamily(
                PREFIX + "expected_confusion_labelled",
                "expected_confusion of the predictions whose label joined, counted then.",
                labels=outcome,
            ),
        )

    def add(self, values: list[str], series: SeriesTotals) -> None:
        self.correct.add_metric(values, series.correct)
        expected, labelled = series.expected, series.expected_labelled
        self.expected_correct.add_metric(values, expected[Confusion.TP] + expected[Confusion.TN])
        self.expected_correct_labelled.add_metric(
            values, labelled[Confusion.TP] + labelled[Confusion.TN]
        )
        for outcome in CONFUSIONS:
            at = [*values, outcome.value]
            self.confusion.add_metric(at, series.confusion[outcome])
            self.expected_confusion.add_metric(at, expected[outcome])
            self.expected_confusion_labelled.add_metric(at, labelled[outcome])
        for positive in (0, 1):
            self.scores.add_metric(
                [*values, str(positive)],
                _buckets(SCORE_BOUNDS, series.score_buckets[positive]),
                series.score_sums[positive],
            )
        self.prediction_scores.add_metric(
            values, _buckets(SCORE_BOUNDS, series.prediction_buckets), series.prediction_sum
        )


def registry(collector: FeedbackCollector) -> CollectorRegistry:
    """The service's registry: its collector and the process's (memory, CPU, files)."""
    made = CollectorRegistry()
    made.register(collector)
    ProcessCollector(registry=made)
    return made


def render(made: CollectorRegistry) -> bytes:
    return generate_latest(made)
