"""The offline gate's error rates, measured on seeded simulated held-out sets.

Each trial draws, per slice of 300 held-out examples, how many the champion and the
candidate get right — both scored on the same examples — from the slice's truth: the
champion's accuracy and how often the candidate is right where the champion is wrong
(``gain``) and the reverse (``loss``); the candidate's accuracy is champion + gain -
loss. The gate judges every trial twice: with the paired counts (``paired`` test) and
with the sample counts only (``twoProportion``), at the default confidence 0.95,
Holm-corrected across the three slices.

How much two models disagree decides what a paired test can see. Two churn models of
examples/trainer retrained a week apart disagree on 0.2 to 3 % of examples each way; an
independent model as good as the champion (both right 85 % of the time) on 12.75 %.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from modelloop.api.model import ModelSpec
from modelloop.api.modelversion import OfflineMetric, OfflineMetrics, PairedCounts
from modelloop.validation.gates import validate

N = 300
SLICES = ("a", "b", "c")
ALPHA = 0.05  # 1 - validation.confidence
SLACK = 0.02  # about three standard errors of a 5 % rate over 1000 trials


@dataclass(frozen=True)
class Truth:
    """One slice: the champion's accuracy; P(only the candidate is right), P(only the
    champion is right)."""

    champion: float
    gain: float
    loss: float


SAME = Truth(0.85, 0.0, 0.0)  # the candidate is the champion
RETRAINED = Truth(0.85, 0.02, 0.02)  # as good, disagreeing on 4 % of examples
INDEPENDENT = Truth(0.85, 0.85 * 0.15, 0.85 * 0.15)  # as good, errors independent


def spec(gates: list[dict[str, Any]]) -> ModelSpec:
    return ModelSpec.model_validate(
        {
            "serving": {"template": {"spec": {"containers": [{"name": "s", "image": "x"}]}}},
            "slices": [{"name": s, "matchLabels": {"region": s}} for s in SLICES],
            "metrics": [{"name": "accuracy", "query": "x"}],
            "validation": {"gates": gates},
        }
    )


def row(slice_: str, value: float, pairs: PairedCounts | None = None) -> OfflineMetric:
    return OfflineMetric.model_construct(
        metric="accuracy", slice=slice_, value=value, samples=N, pairs=pairs
    )


def rejected(
    truths: tuple[Truth, Truth, Truth],
    *,
    seed: int,
    trials: int = 1000,
    gates: list[dict[str, Any]] | None = None,
) -> tuple[float, float]:
    """The share of trials the gate rejects: (with paired counts, with sample counts only)."""
    rng = np.random.default_rng(seed)
    # Per trial and slice: (both right, only the champion, only the candidate, neither).
    counts = np.stack(
        [
            rng.multinomial(
                N, [t.champion - t.loss, t.loss, t.gain, 1 - t.champion - t.gain], size=trials
            )
            for t in truths
        ],
        axis=1,
    )
    judged = spec(gates or [])
    rejections = [0, 0]
    for trial in counts:
        for k, paired in enumerate((True, False)):
            candidate, champion = [], []
            for name, (both, champion_only, candidate_only, _) in zip(SLICES, trial, strict=True):
                pairs = PairedCounts.model_construct(
                    candidate_only=int(candidate_only), champion_only=int(champion_only)
                )
                champion.append(row(name, (both + champion_only) / N))
                candidate.append(row(name, (both + candidate_only) / N, pairs if paired else None))
            # Built without validation: the rows are valid, and this keeps 2000 judgements fast.
            metrics = OfflineMetrics.model_construct(candidate=candidate, champion=champion)
            rejections[k] += not validate(judged, metrics).validated
    return rejections[0] / trials, rejections[1] / trials


@pytest.mark.parametrize(
    ("truth", "seed", "trials"),
    [(SAME, 1, 100), (RETRAINED, 2, 1000), (INDEPENDENT, 3, 1000)],
    ids=["same", "retrained", "independent"],
)
def test_a_candidate_as_good_as_the_champion_passes_at_the_stated_rate(
    truth: Truth, seed: int, trials: int
) -> None:
    paired, two_proportion = rejected((truth, truth, truth), seed=seed, trials=trials)
    assert paired <= ALPHA + SLACK
    assert two_proportion <= ALPHA + SLACK
    if truth == SAME:
        assert paired == two_proportion == 0.0


@pytest.mark.parametrize(
    ("gain", "trials", "paired_at_least", "two_proportion_at_most"),
    [
        # The candidate lost a sub-population: right on 0.5 % of examples the champion
        # misses, wrong on 5.5 % the champion gets right. Measured: 0.96 vs 0.09.
        (0.005, 1000, 0.95, 0.15),
        # The more the two disagree, the less a paired test sees.
        (0.01, 500, 0.88, 0.15),  # measured 0.92 vs 0.08
        (0.02, 500, 0.75, 0.2),  # measured 0.78 vs 0.10
        (0.05, 500, 0.45, 0.25),  # measured 0.52 vs 0.18
    ],
)
def test_a_five_point_regression_on_one_slice_of_300_is_caught(
    gain: float, trials: int, paired_at_least: float, two_proportion_at_most: float
) -> None:
    """0.85 -> 0.80 on slice a; b and c as good as the champion (RETRAINED)."""
    worse = Truth(0.85, gain, gain + 0.05)
    paired, two_proportion = rejected((worse, RETRAINED, RETRAINED), seed=11, trials=trials)
    assert paired >= paired_at_least
    assert two_proportion <= two_proportion_at_most


def test_a_candidate_that_repairs_a_broken_slice_passes_despite_noise_elsewhere() -> None:
    """Slice a: champion 0.27, candidate 0.87; b and c as good as the champion, each
    varying by a point or more from trial to trial."""
    repaired = Truth(0.27, 0.62, 0.02)
    paired, two_proportion = rejected((repaired, RETRAINED, RETRAINED), seed=21)
    assert paired <= ALPHA
    assert two_proportion <= ALPHA


TOLERANCE = [{"metric": "accuracy", "notWorseThan": {"absolute": 0.02}}]


@pytest.mark.parametrize("gain", [0.0, 0.01, 0.1])
def test_a_regression_exactly_at_the_tolerance_is_rejected_at_most_at_the_stated_rate(
    gain: float,
) -> None:
    """2 points worse on every slice with a tolerance of 0.02: the boundary of the null."""
    at_limit = Truth(0.85, gain, gain + 0.02)
    paired, two_proportion = rejected(
        (at_limit, at_limit, at_limit), seed=31, gates=TOLERANCE, trials=500
    )
    assert paired <= ALPHA + SLACK
    assert two_proportion <= ALPHA + SLACK


def test_a_regression_well_beyond_the_tolerance_is_caught() -> None:
    """7 points worse on slice a with a tolerance of 0.02. Measured: 0.90 vs 0.10."""
    beyond = Truth(0.85, 0.005, 0.075)
    paired, two_proportion = rejected(
        (beyond, RETRAINED, RETRAINED), seed=41, gates=TOLERANCE, trials=500
    )
    assert paired >= 0.85
    assert two_proportion <= 0.15
