"""From joined pairs to the counts the feedback service exposes, per model, version and
slice attributes. Pure: no I/O, no clock.

Classification: a pair is ``correct`` when the predicted class is the label's; its
confusion outcome (TP/FP/TN/FN) compares the label with the positive class, and the
prediction's score with the threshold (``score >= threshold`` is positive) or, without
a score, its class with the positive class. Scores are counted in buckets of 0.05 per
label value (1: the positive class, 0: any other) — the ROC curve, hence the AUC, and
the calibration come from them. Regression: absolute and squared errors add up.
Classes compare as text; a number is written without a trailing ``.0`` (``1.0`` and
``"1"`` are one class).

Before the labels (classification, scored predictions): each prediction's score is
counted when it arrives, and so is its expected confusion outcome, exactly (no buckets),
as confidence-based performance estimation (NannyML's CBPE) has it for a calibrated
score ``s``: flagged positive (``s >= threshold``), a tp with probability ``s`` and an fp
otherwise; flagged negative, an fn with probability ``s`` and a tn otherwise. The same
is added again when a label joins, so the estimate can be checked against the labels.
"""

import math
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

from .records import Joined, Outcome

# The score buckets' upper bounds (cumulative, ``le``): 0.05, 0.10, ..., 1.0.
SCORE_BOUNDS: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(1, 21))
# The label delay buckets' upper bounds, in seconds: 1 s to 30 days.
DELAY_BOUNDS: tuple[float, ...] = (
    *(1.0, 10.0, 30.0, 60.0, 300.0, 600.0, 1800.0),
    *(3600.0, 2 * 3600.0, 6 * 3600.0, 12 * 3600.0),
    *(86400.0, 2 * 86400.0, 7 * 86400.0, 14 * 86400.0, 30 * 86400.0),
)
OTHER = "other"  # the value of an attribute beyond its cap


class Task(StrEnum):
    CLASSIFICATION = "classification"
    REGRESSION = "regression"


class Confusion(StrEnum):
    TP = "tp"
    FP = "fp"
    TN = "tn"
    FN = "fn"


CONFUSIONS = tuple(Confusion)
FLAGGED = frozenset({Confusion.TP, Confusion.FP})  # predicted positive
# The members as plain names: an enum's attribute is slow to look up, per prediction.
_TP, _FP, _TN, _FN = CONFUSIONS


class Unscorable(StrEnum):
    """Why a joined pair counts nowhere."""

    NOT_NUMERIC = "not_numeric"  # regression: a value that is not a finite number
    SERIES_LIMIT = "series_limit"  # its series would pass the service's limit


@dataclass(frozen=True)
class Scoring:
    """How one model's pairs are scored."""

    task: Task = Task.CLASSIFICATION
    threshold: float = 0.5
    positive_class: str = "1"


def class_of(value: Outcome) -> str:
    if isinstance(value, str):
        return value
    return str(int(value)) if value.is_integer() else repr(value)


def _number(value: Outcome) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


class Scored(NamedTuple):
    """What one joined pair adds to its series (a tuple: made once per pair, quickly)."""

    delay: float
    skewed: bool  # the label is dated before its prediction (delay counted as 0)
    correct: bool = False
    confusion: Confusion | None = None
    positive: bool = False  # the label is the positive class
    score: float | None = None
    abs_error: float = 0.0
    squared_error: float = 0.0


def expect(into: dict[Confusion, float], score: float, flagged: bool) -> None:
    """Adds a prediction's expected confusion outcome, from its calibrated score. Its
    probability of being right is the tp (flagged) or tn (not flagged) it adds."""
    if flagged:
        into[_TP] += score
        into[_FP] += 1.0 - score
    else:
        into[_FN] += score
        into[_TN] += 1.0 - score


def score(pair: Joined, scoring: Scoring) -> Scored | Unscorable:
    prediction, label = pair.prediction, pair.label
    delay, skewed = pair.delay, label.time < prediction.time
    if scoring.task is Task.REGRESSION:
        predicted, actual = _number(prediction.predicted), _number(label.label)
        if predicted is None or actual is None:
            return Unscorable.NOT_NUMERIC
        error = predicted - actual
        return Scored(delay, skewed, abs_error=abs(error), squared_error=error * error)
    predicted_class, actual_class = class_of(prediction.predicted), class_of(label.label)
    positive = actual_class == scoring.positive_class
    if prediction.score is not None:
        flagged = prediction.score >= scoring.threshold
    else:
        flagged = predicted_class == scoring.positive_class
    confusion = (
        (Confusion.TP if positive else Confusion.FP)
        if flagged
        else (Confusion.FN if positive else Confusion.TN)
    )
    return Scored(
        delay,
        skewed,
        correct=predicted_class == actual_class,
        confusion=confusion,
        positive=positive,
        score=prediction.score,
    )


@dataclass
class SeriesTotals:
    """The counts of one model x version x attribute values. Buckets hold the
    observations of each bucket alone (not cumulative), the last one above every bound."""

    task: Task
    predictions: int = 0
    labels: int = 0
    skewed: int = 0
    correct: int = 0
    confusion: dict[Confusion, int] = field(default_factory=lambda: dict.fromkeys(CONFUSIONS, 0))
    # per label value (index 0: negative, 1: positive)
    score_buckets: tuple[list[int], list[int]] = field(
        default_factory=lambda: ([0] * (len(SCORE_BOUNDS) + 1), [0] * (len(SCORE_BOUNDS) + 1))
    )
    score_sums: list[float] = field(default_factory=lambda: [0.0, 0.0])
    abs_error: float = 0.0
    squared_error: float = 0.0
    delay_buckets: list[int] = field(default_factory=lambda: [0] * (len(DELAY_BOUNDS) + 1))
    delay_sum: float = 0.0
    # Before the labels (classification): the scores of every prediction, its expected
    # confusion outcome (``expect``), and the same for the labelled ones as they join.
    prediction_buckets: list[int] = field(default_factory=lambda: [0] * (len(SCORE_BOUNDS) + 1))
    prediction_sum: float = 0.0
    expected: dict[Confusion, float] = field(default_factory=lambda: dict.fromkeys(CONFUSIONS, 0.0))
    expected_labelled: dict[Confusion, float] = field(
        default_factory=lambda: dict.fromkeys(CONFUSIONS, 0.0)
    )

    def predicted(self, score: float | None, threshold: float) -> None:
        """Counts a new prediction; a classifier's score also counts toward the estimates."""
        self.predictions += 1
        if score is None or self.task is Task.REGRESSION:
            return
        self.prediction_buckets[bisect_left(SCORE_BOUNDS, score)] += 1
        self.prediction_sum += score
        expect(self.expected, score, score >= threshold)

    def add(self, scored: Scored) -> None:
        self.labels += 1
        self.skewed += scored.skewed
        self.delay_buckets[bisect_left(DELAY_BOUNDS, scored.delay)] += 1
        self.delay_sum += scored.delay
        if self.task is Task.REGRESSION:
            self.abs_error += scored.abs_error
            self.squared_error += scored.squared_error
            return
        self.correct += scored.correct
        if scored.confusion is not None:
            self.confusion[scored.confusion] += 1
        if scored.score is not None:
            self.score_buckets[scored.positive][bisect_left(SCORE_BOUNDS, scored.score)] += 1
            self.score_sums[scored.positive] += scored.score
            expect(self.expected_labelled, scored.score, scored.confusion in FLAGGED)


SeriesKey = tuple[str, ...]  # model, version, then the value of each slice attribute


class Totals:
    """Every series' counts, at most ``max_series`` of them."""

    def __init__(self, max_series: int) -> None:
        self.max_series = max_series
        self.series: dict[SeriesKey, SeriesTotals] = {}

    def get(self, key: SeriesKey, task: Task) -> SeriesTotals | None:
        """The series of ``key``, new if there is room; None beyond the limit."""
        totals = self.series.get(key)
        if totals is None and len(self.series) < self.max_series:
            totals = self.series[key] = SeriesTotals(task)
        return totals


@dataclass(frozen=True)
class SliceAttribute:
    """A prediction attribute that becomes a metric label, with at most ``max_values``
    values of its own (the first seen); the others count as ``other``."""

    name: str
    max_values: int


class Slicer:
    """The slice attributes' values of predictions, capped. The values admitted are the
    first seen by this process (a restart admits anew)."""

    def __init__(self, attributes: Sequence[SliceAttribute]) -> None:
        self.attributes = tuple(attributes)
        self._admitted: dict[str, set[str]] = {a.name: set() for a in attributes}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.attributes)

    def values(self, attributes: Mapping[str, str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The label values of a prediction's attributes (a missing one is empty), and
        the names of the attributes whose value went to ``other``."""
        values: list[str] = []
        overflowed: list[str] = []
        for attribute in self.attributes:
            value = attributes.get(attribute.name, "")
            admitted = self._admitted[attribute.name]
            if value and value not in admitted:
                if len(admitted) < attribute.max_values:
                    admitted.add(value)
                else:
                    value = OTHER
                    overflowed.append(attribute.name)
            values.append(value)
        return tuple(values), tuple(overflowed)
