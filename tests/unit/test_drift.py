"""Drift statistics against independent references: scipy for KS and JS, a table
worked out by hand for PSI; bucket decoding and re-binning; empty histograms."""

import math
from collections.abc import Sequence

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import ks_2samp

from modelloop.monitoring.drift import (
    PSI_EPSILON,
    EmptyHistogram,
    Histogram,
    common_layout,
    drift_statistic,
    drift_verdict,
    from_cumulative,
    parse_le,
    rebin,
)

INF = math.inf


def hist(bounds: Sequence[float], counts: Sequence[float]) -> Histogram:
    return Histogram(tuple(bounds), tuple(counts))


@pytest.mark.parametrize(
    ("text", "value"), [("+Inf", INF), ("0.5", 0.5), ("1e3", 1000.0), ("10", 10.0)]
)
def test_parse_le(text: str, value: float) -> None:
    assert parse_le(text) == value


@pytest.mark.parametrize(
    ("cumulative", "bounds", "counts"),
    [
        ({0.1: 2, 0.5: 5, 1.0: 9, INF: 10}, (0.1, 0.5, 1.0, INF), (2, 3, 4, 1)),
        ({INF: 10, 0.5: 5, 0.1: 2}, (0.1, 0.5, INF), (2, 3, 5)),  # any order
        # increase() extrapolation can make a higher bucket a hair lower: clamp to 0.
        ({1.0: 5.2, 2.0: 5.1, INF: 6.0}, (1.0, 2.0, INF), (5.2, 0.0, 0.9)),
        ({1.0: math.nan, INF: 3.0}, (1.0, INF), (0.0, 3.0)),
        ({}, (), ()),
    ],
)
def test_from_cumulative(
    cumulative: dict[float, float], bounds: tuple[float, ...], counts: tuple[float, ...]
) -> None:
    h = from_cumulative(cumulative)
    assert h.upper_bounds == bounds
    assert h.counts == pytest.approx(counts)


def test_differing_layouts_merge_onto_shared_bounds() -> None:
    reference = hist([0.1, 0.5, 1, INF], [10, 20, 30, 40])
    current = hist([0.1, 0.25, 0.5, 1, 2, INF], [1, 2, 3, 4, 5, 6])
    a, b = common_layout(current, reference)
    assert a.upper_bounds == b.upper_bounds == (0.1, 0.5, 1, INF)
    assert a.counts == (1, 5, 4, 11)  # 0.25 merged into 0.5; 2 merged into +Inf
    assert b.counts == reference.counts
    assert a.total == current.total


def test_rebin_keeps_the_total() -> None:
    h = hist([1, 2, 3, 4], [1, 1, 1, 1])
    assert rebin(h, [2, 4]).counts == (2, 2)


# PSI = sum (p - q) ln(p / q), worked out by hand.
PSI_TABLE = [
    # p = (0.5, 0.5), q = (0.25, 0.75)
    ([50, 50], [25, 75], 0.25 * math.log(2) + (-0.25) * math.log(0.5 / 0.75)),
    # p = (0.1, 0.2, 0.7), q = (0.2, 0.2, 0.6)
    ([1, 2, 7], [2, 2, 6], -0.1 * math.log(0.5) + 0.1 * math.log(0.7 / 0.6)),
    ([3, 3], [30, 30], 0.0),
]


@pytest.mark.parametrize(("current", "reference", "expected"), PSI_TABLE)
def test_psi_matches_the_hand_computed_table(
    current: list[float], reference: list[float], expected: float
) -> None:
    bounds = [float(i) for i in range(len(current) - 1)] + [INF]
    value = drift_statistic("psi", hist(bounds, current), hist(bounds, reference))
    assert value == pytest.approx(expected, abs=1e-12)


def test_psi_with_an_empty_bucket_uses_the_epsilon() -> None:
    # p = (1, 0) becomes (1, eps) / (1 + eps); q = (0.5, 0.5).
    p = np.array([1.0, PSI_EPSILON]) / (1 + PSI_EPSILON)
    q = np.array([0.5, 0.5])
    expected = float(np.sum((p - q) * np.log(p / q)))
    value = drift_statistic("psi", hist([1, INF], [10, 0]), hist([1, INF], [5, 5]))
    assert value == pytest.approx(expected)
    assert math.isfinite(value)


CASES = [
    ([10, 20, 30, 40], [40, 30, 20, 10]),
    ([5, 0, 0, 5], [0, 5, 5, 0]),  # disjoint
    ([1, 1, 1, 1], [2, 2, 2, 2]),  # identical shape
    ([100, 0, 0, 0], [97, 1, 1, 1]),
    ([0, 0, 0, 9], [3, 3, 3, 0]),
]
BOUNDS = [1.0, 2.0, 3.0, 4.0]


def expand(counts: list[int]) -> list[float]:
    """Samples placed at their buckets' upper bounds: their empirical CDF is the binned one."""
    return [b for b, c in zip(BOUNDS, counts, strict=True) for _ in range(c)]


@pytest.mark.parametrize(("current", "reference"), CASES)
def test_ks_is_scipys_two_sample_statistic(current: list[int], reference: list[int]) -> None:
    expected = ks_2samp(expand(current), expand(reference)).statistic
    value = drift_statistic("ks", hist(BOUNDS, current), hist(BOUNDS, reference))
    assert value == pytest.approx(expected)


@pytest.mark.parametrize(("current", "reference"), CASES)
def test_js_is_the_square_of_scipys_distance_in_base_2(
    current: list[int], reference: list[int]
) -> None:
    expected = jensenshannon(current, reference, base=2) ** 2
    value = drift_statistic("js", hist(BOUNDS, current), hist(BOUNDS, reference))
    assert value == pytest.approx(expected, abs=1e-12)
    assert 0.0 <= value <= 1.0


def test_disjoint_distributions_are_maximal() -> None:
    a, b = hist(BOUNDS, [5, 5, 0, 0]), hist(BOUNDS, [0, 0, 5, 5])
    assert drift_statistic("ks", a, b) == 1.0
    assert drift_statistic("js", a, b) == pytest.approx(1.0)
    assert drift_statistic("psi", a, b) > 10


def test_an_empty_histogram_has_no_statistic() -> None:
    with pytest.raises(EmptyHistogram):
        drift_statistic("psi", hist(BOUNDS, [0, 0, 0, 0]), hist(BOUNDS, [1, 1, 1, 1]))


@pytest.mark.parametrize(
    ("current", "reference", "verdict", "reason"),
    [
        (hist(BOUNDS, [50, 50, 0, 0]), hist(BOUNDS, [50, 50, 0, 0]), "pass", None),
        (hist(BOUNDS, [90, 10, 0, 0]), hist(BOUNDS, [10, 90, 0, 0]), "breach", None),
        (None, hist(BOUNDS, [50, 50, 0, 0]), "inconclusive", "the current window has no data"),
        (
            hist(BOUNDS, [50, 50, 0, 0]),
            hist(BOUNDS, [0, 0, 0, 0]),
            "inconclusive",
            "the reference window has no data",
        ),
        (
            hist(BOUNDS, [5, 5, 0, 0]),
            hist(BOUNDS, [50, 50, 0, 0]),
            "inconclusive",
            "fewer observations in the current window than minSamples 20",
        ),
    ],
)
def test_drift_verdicts(
    current: Histogram | None, reference: Histogram | None, verdict: str, reason: str | None
) -> None:
    result = drift_verdict("psi", 0.2, 20, current, reference)
    assert (result.verdict, result.reason) == (verdict, reason)
    if verdict != "inconclusive":
        assert result.statistic is not None
        assert result.samples == 100
    else:
        assert result.statistic is None
