"""Scoring joined pairs (classification, regression), the series' buckets, the slice
attributes' cap and the series limit: tables of cases."""

from typing import Any

import pytest

from modelloop.feedback.outcomes import (
    DELAY_BOUNDS,
    OTHER,
    SCORE_BOUNDS,
    Confusion,
    Scored,
    Scoring,
    SeriesTotals,
    SliceAttribute,
    Slicer,
    Task,
    Totals,
    Unscorable,
    class_of,
    score,
)
from modelloop.feedback.records import Joined, Label, Prediction

T0 = 1_700_000_000.0
TP, FP, TN, FN = Confusion.TP, Confusion.FP, Confusion.TN, Confusion.FN


def pair(
    predicted: float | str,
    label: float | str,
    score_: float | None = None,
    delay: float = 60.0,
) -> Joined:
    prediction = Prediction(
        id="a", model="m", version="v1", time=T0, predicted=predicted, score=score_
    )
    return Joined(prediction, Label(id="a", label=label, time=T0 + delay))


@pytest.mark.parametrize(
    ("predicted", "score_", "label", "scoring", "correct", "confusion", "positive"),
    [
        ("1", 0.8, "1", Scoring(), True, TP, True),
        ("1", 0.8, "0", Scoring(), False, FP, False),
        ("0", 0.3, "0", Scoring(), True, TN, False),
        ("0", 0.3, "1", Scoring(), False, FN, True),
        # The score decides the confusion outcome, the class decides "correct".
        ("1", 0.2, "1", Scoring(), True, FN, True),
        ("0", 0.5, "0", Scoring(), True, FP, False),  # score >= threshold is positive
        ("0", 0.49, "1", Scoring(), False, FN, True),
        ("0", 0.3, "1", Scoring(threshold=0.25), False, TP, True),
        # Without a score, the class against the positive class.
        ("1", None, "1", Scoring(), True, TP, True),
        ("0", None, "1", Scoring(), False, FN, True),
        ("0", None, "0", Scoring(), True, TN, False),
        # Numbers are classes written without a trailing .0.
        (1.0, None, "1", Scoring(), True, TP, True),
        ("0", None, 0.0, Scoring(), True, TN, False),
        # A positive class of one's own; any other class is negative.
        ("fraud", 0.9, "ok", Scoring(positive_class="fraud"), False, FP, False),
        ("ok", 0.1, "fraud", Scoring(positive_class="fraud"), False, FN, True),
        ("cat", None, "dog", Scoring(), False, TN, False),
        ("cat", None, "cat", Scoring(), True, TN, False),
    ],
)
def test_classification(
    predicted: float | str,
    score_: float | None,
    label: float | str,
    scoring: Scoring,
    correct: bool,
    confusion: Confusion,
    positive: bool,
) -> None:
    assert score(pair(predicted, label, score_), scoring) == Scored(
        delay=60.0,
        skewed=False,
        correct=correct,
        confusion=confusion,
        positive=positive,
        score=score_,
    )


REGRESSION = Scoring(task=Task.REGRESSION)


@pytest.mark.parametrize(
    ("predicted", "label", "expected"),
    [
        (3.5, 2.0, (1.5, 2.25)),
        (2.0, 3.5, (1.5, 2.25)),
        (-1.0, -1.0, (0.0, 0.0)),
        ("3.5", 2.0, (1.5, 2.25)),  # numbers sent as text are numbers
        (3.5, "2", (1.5, 2.25)),
        ("high", 2.0, Unscorable.NOT_NUMERIC),
        (2.0, "nan", Unscorable.NOT_NUMERIC),
        ("inf", 2.0, Unscorable.NOT_NUMERIC),
    ],
)
def test_regression(
    predicted: float | str, label: float | str, expected: tuple[float, float] | Unscorable
) -> None:
    scored = score(pair(predicted, label), REGRESSION)
    if isinstance(expected, Unscorable):
        assert scored is expected
    else:
        assert isinstance(scored, Scored)
        assert (scored.abs_error, scored.squared_error) == expected


@pytest.mark.parametrize(
    ("delay", "scored_delay", "skewed"), [(60.0, 60.0, False), (0.0, 0.0, False), (-5.0, 0.0, True)]
)
def test_delay_and_clock_skew(delay: float, scored_delay: float, skewed: bool) -> None:
    for scoring in (Scoring(), REGRESSION):
        scored = score(pair("1", "1", delay=delay), scoring)
        assert isinstance(scored, Scored)
        assert (scored.delay, scored.skewed) == (scored_delay, skewed)


@pytest.mark.parametrize(
    ("value", "name"), [("1", "1"), (1.0, "1"), (0.0, "0"), (2.5, "2.5"), ("1.0", "1.0")]
)
def test_class_names(value: float | str, name: str) -> None:
    assert class_of(value) == name


@pytest.mark.parametrize(
    ("value", "bucket"),
    [(0.0, 0), (0.05, 0), (0.0500001, 1), (0.1, 1), (0.5, 9), (0.999, 19), (1.0, 19)],
)
def test_score_buckets_are_upper_inclusive(value: float, bucket: int) -> None:
    series = SeriesTotals(Task.CLASSIFICATION)
    series.add(Scored(delay=1.0, skewed=False, positive=True, score=value))
    expected = [0] * (len(SCORE_BOUNDS) + 1)
    expected[bucket] = 1
    assert series.score_buckets == ([0] * len(expected), expected)
    assert series.score_sums == [0.0, value]


@pytest.mark.parametrize(
    ("delay", "bucket"),
    [(0.0, 0), (1.0, 0), (1.5, 1), (3600.0, 7), (30 * 86400.0, 15), (30 * 86400.0 + 1, 16)],
)
def test_delay_buckets(delay: float, bucket: int) -> None:
    series = SeriesTotals(Task.REGRESSION)
    series.add(Scored(delay=delay, skewed=False, abs_error=2.0, squared_error=4.0))
    assert series.delay_buckets.index(1) == bucket
    assert len(series.delay_buckets) == len(DELAY_BOUNDS) + 1
    assert (series.labels, series.delay_sum, series.abs_error, series.squared_error) == (
        1,
        delay,
        2.0,
        4.0,
    )


def test_a_series_adds_up_its_pairs() -> None:
    series = SeriesTotals(Task.CLASSIFICATION)
    cases: list[tuple[Any, Any, Any]] = [
        ("1", "1", 0.9),
        ("1", "0", 0.7),
        ("0", "0", 0.1),
        ("0", "1", None),
        ("1", "1", 0.6),
    ]
    for predicted, label, score_ in cases:
        scored = score(pair(predicted, label, score_, delay=-1.0), Scoring())
        assert isinstance(scored, Scored)
        series.add(scored)
    assert (series.labels, series.correct, series.skewed) == (5, 3, 5)
    assert series.confusion == {TP: 2, FP: 1, TN: 1, FN: 1}
    assert (sum(series.score_buckets[0]), sum(series.score_buckets[1])) == (2, 2)
    assert series.score_sums == pytest.approx([0.8, 1.5])


def test_attribute_values_beyond_the_cap_are_other() -> None:
    slicer = Slicer([SliceAttribute("region", 2), SliceAttribute("device", 1)])
    assert slicer.names == ("region", "device")
    table = [
        ({"region": "eu", "device": "web"}, ("eu", "web"), ()),
        ({"region": "us", "device": "ios"}, ("us", OTHER), ("device",)),
        ({"region": "ap"}, (OTHER, ""), ("region",)),  # missing: empty, never capped
        ({"region": "eu", "device": "web", "plan": "pro"}, ("eu", "web"), ()),
        ({"region": "ap", "device": "ios"}, (OTHER, OTHER), ("region", "device")),
        ({"region": "us", "device": ""}, ("us", ""), ()),
    ]
    for attributes, values, overflowed in table:
        assert slicer.values(attributes) == (values, overflowed), attributes


def test_series_beyond_the_limit_are_refused() -> None:
    totals = Totals(max_series=2)
    first = totals.get(("m", "v1"), Task.CLASSIFICATION)
    assert first is not None
    assert totals.get(("m", "v2"), Task.REGRESSION) is not None
    assert totals.get(("m", "v3"), Task.CLASSIFICATION) is None
    assert totals.get(("m", "v1"), Task.CLASSIFICATION) is first
    assert [s.task for s in totals.series.values()] == [Task.CLASSIFICATION, Task.REGRESSION]
