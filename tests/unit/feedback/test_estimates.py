"""Before the labels: each scored prediction's expected confusion outcome (CBPE, exact)
and its score, counted when it arrives; the same for labelled predictions when their label
joins. Tables of scores and thresholds against the sums they must give."""

import pytest

from modelloop.feedback.outcomes import (
    SCORE_BOUNDS,
    Confusion,
    Scored,
    Scoring,
    SeriesTotals,
    Task,
    expect,
    score,
)
from modelloop.feedback.records import Joined, Label, Prediction

TP, FP, TN, FN = Confusion.TP, Confusion.FP, Confusion.TN, Confusion.FN
T0 = 1_700_000_000.0


def zeros() -> dict[Confusion, float]:
    return dict.fromkeys((TP, FP, TN, FN), 0.0)


@pytest.mark.parametrize(
    ("score_", "threshold", "added"),
    [
        (0.9, 0.5, {TP: 0.9, FP: 0.1}),
        (0.5, 0.5, {TP: 0.5, FP: 0.5}),  # score >= threshold is flagged positive
        (0.49, 0.5, {FN: 0.49, TN: 0.51}),
        (0.3, 0.25, {TP: 0.3, FP: 0.7}),
        (0.3, 0.35, {FN: 0.3, TN: 0.7}),
        (1.0, 0.5, {TP: 1.0, FP: 0.0}),
        (0.0, 0.5, {FN: 0.0, TN: 1.0}),
        (0.0, 0.0, {TP: 0.0, FP: 1.0}),  # a threshold of 0 flags everything
    ],
)
def test_a_prediction_adds_its_expected_outcome(
    score_: float, threshold: float, added: dict[Confusion, float]
) -> None:
    series = SeriesTotals(Task.CLASSIFICATION)
    series.predicted(score_, threshold)
    assert series.predictions == 1
    assert series.expected == pytest.approx(zeros() | added, abs=1e-12)
    # P(correct): the tp of a flagged prediction, the tn of another.
    correct = series.expected[TP] + series.expected[TN]
    assert correct == pytest.approx(score_ if score_ >= threshold else 1 - score_, abs=1e-12)
    assert series.prediction_sum == score_
    assert sum(series.prediction_buckets) == 1


def test_the_expected_outcomes_add_up_over_predictions() -> None:
    scores = [0.95, 0.8, 0.62, 0.5, 0.41, 0.2, 0.05, 0.0]
    series = SeriesTotals(Task.CLASSIFICATION)
    for s in scores:
        series.predicted(s, 0.5)
    assert series.predictions == 8
    assert series.expected == pytest.approx({TP: 2.87, FP: 1.13, FN: 0.66, TN: 3.34}, abs=1e-12)
    # Expected accuracy, precision and recall of these 8 predictions.
    accuracy = (series.expected[TP] + series.expected[TN]) / series.predictions
    assert accuracy == pytest.approx(6.21 / 8, abs=1e-12)
    assert series.expected[TP] / (series.expected[TP] + series.expected[FP]) == pytest.approx(
        2.87 / 4
    )
    assert series.expected[TP] / (series.expected[TP] + series.expected[FN]) == pytest.approx(
        2.87 / 3.53
    )
    assert series.prediction_sum == pytest.approx(sum(scores))
    # The prediction histogram: buckets of 0.05, upper-inclusive (0.0 and 0.05 share one).
    expected = [0] * (len(SCORE_BOUNDS) + 1)
    for index in (18, 15, 12, 9, 8, 3, 0, 0):
        expected[index] += 1
    assert series.prediction_buckets == expected


@pytest.mark.parametrize(
    ("task", "score_"),
    [(Task.REGRESSION, 0.7), (Task.REGRESSION, None), (Task.CLASSIFICATION, None)],
)
def test_a_prediction_without_a_classifiers_score_is_only_counted(
    task: Task, score_: float | None
) -> None:
    series = SeriesTotals(task)
    series.predicted(score_, 0.5)
    assert series.predictions == 1
    assert series.expected == zeros()
    assert (sum(series.prediction_buckets), series.prediction_sum) == (0, 0.0)


def joined(predicted: str, label: str, score_: float | None) -> Joined:
    prediction = Prediction(
        id="a", model="m", version="v1", time=T0, predicted=predicted, score=score_
    )
    return Joined(prediction, Label(id="a", label=label, time=T0 + 60))


def test_a_label_adds_its_predictions_expected_outcome_when_it_joins() -> None:
    # (predicted, label, score): the label does not change what was expected.
    cases = [("1", "1", 0.9), ("1", "0", 0.7), ("0", "0", 0.2), ("0", "1", 0.45), ("1", "1", None)]
    series = SeriesTotals(Task.CLASSIFICATION)
    for predicted, label, score_ in cases:
        scored = score(joined(predicted, label, score_), Scoring(threshold=0.5))
        assert isinstance(scored, Scored)
        series.add(scored)
    assert series.expected_labelled == pytest.approx(
        {TP: 1.6, FP: 0.4, FN: 0.65, TN: 1.35}, abs=1e-12
    )
    # expected_correct_labelled: what the check compares with the labelled tp + tn.
    labelled = series.expected_labelled
    assert labelled[TP] + labelled[TN] == pytest.approx(2.95, abs=1e-12)
    assert series.expected == zeros()  # predictions count when they arrive, not here


def test_expect_is_the_tp_or_tn_a_prediction_adds() -> None:
    into = zeros()
    expect(into, 0.25, flagged=True)
    expect(into, 0.25, flagged=False)
    assert into == {TP: 0.25, FP: 0.75, FN: 0.25, TN: 0.75}
