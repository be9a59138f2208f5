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
    Test,
    common_layout,
    drift_statistic,
    drift_verdict,
    from_cumulative,
    parse_le,
    rebin,
)

INF = math.inf
NAN = math.nan
EPS = PSI_EPSILON
TESTS: list[Test] = ["psi", "ks", "js"]


def hist(bounds: Sequence[float], counts: Sequence[float]) -> Histogram:
    return Histogram(tuple(bounds), tuple(counts))


def cumulative_at(h: Histogram, bound: float) -> float:
    return sum(c for b, c in zip(h.upper_bounds, h.counts, strict=True) if b <= bound)


@pytest.mark.parametrize(
    ("text", "value"),
    [("+Inf", INF), ("0.5", 0.5), ("1e3", 1000.0), ("10", 10.0), ("-0.25", -0.25)],
)
def test_parse_le(text: str, value: float) -> None:
    assert parse_le(text) == value


@pytest.mark.parametrize("text", ["NaN", "fast", ""])
def test_parse_le_rejects_what_is_no_bound(text: str) -> None:
    with pytest.raises(ValueError, match=r"NaN|could not convert"):
        parse_le(text)


@pytest.mark.parametrize(
    ("cumulative", "bounds", "counts"),
    [
        pytest.param(
            {0.1: 2, 0.5: 5, 1.0: 9, INF: 10}, (0.1, 0.5, 1.0, INF), (2, 3, 4, 1), id="with-inf"
        ),
        pytest.param({INF: 10, 0.5: 5, 0.1: 2}, (0.1, 0.5, INF), (2, 3, 5), id="unsorted"),
        # increase() extrapolation can make a higher bucket a hair lower: that bucket
        # gets 0 and the next one counts from the envelope 5.2, not from 5.1.
        pytest.param(
            {1.0: 5.2, 2.0: 5.1, INF: 6.0}, (1.0, 2.0, INF), (5.2, 0.0, 0.8), id="noise-dip"
        ),
        # A reset lower bucket: (4, 1, 7) has the envelope (4, 4, 7).
        pytest.param({0.5: 4, 1.0: 1, INF: 7}, (0.5, 1.0, INF), (4, 0, 3), id="reset"),
        pytest.param({1.0: NAN, INF: 3.0}, (1.0, INF), (0.0, 3.0), id="nan-first"),
        # NaN as 0 inside: (5, 0, 6) has the envelope (5, 5, 6); the total stays 6.
        pytest.param({1.0: 5, 2.0: NAN, INF: 6}, (1.0, 2.0, INF), (5, 0, 1), id="nan-inside"),
        pytest.param({1.0: NAN, INF: NAN}, (1.0, INF), (0, 0), id="all-nan"),
        pytest.param({}, (), (), id="empty"),
    ],
)
def test_from_cumulative(
    cumulative: dict[float, float], bounds: tuple[float, ...], counts: tuple[float, ...]
) -> None:
    h = from_cumulative(cumulative)
    assert h.upper_bounds == bounds
    assert h.counts == pytest.approx(counts, abs=1e-12)
    # The total is the largest cumulative value, which is the +Inf bucket's when sane.
    finite = [v for v in cumulative.values() if math.isfinite(v)]
    assert h.total == pytest.approx(max(finite, default=0.0))


@pytest.mark.parametrize(
    ("bounds", "counts", "problem"),
    [
        ((1.0, INF), (1.0,), "one count per upper bound"),
        ((2.0, 1.0), (1.0, 1.0), "strictly increasing"),
        ((1.0, 1.0), (1.0, 1.0), "strictly increasing"),
        ((NAN,), (1.0,), "strictly increasing"),
        ((1.0, INF), (1.0, -1.0), "finite and >= 0"),
        ((1.0, INF), (1.0, NAN), "finite and >= 0"),
    ],
)
def test_a_histogram_must_be_well_formed(
    bounds: tuple[float, ...], counts: tuple[float, ...], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        Histogram(bounds, counts)


REFERENCE = hist([0.1, 0.5, 1, INF], [10, 20, 30, 40])
CURRENT = hist([0.1, 0.25, 0.5, 1, 2, INF], [1, 2, 3, 4, 5, 6])


def test_differing_layouts_merge_onto_shared_bounds() -> None:
    a, b = common_layout(CURRENT, REFERENCE)
    assert a.upper_bounds == b.upper_bounds == (0.1, 0.5, 1, INF)
    # By hand: 0.25 merges into 0.5 (2 + 3), 2 into +Inf (5 + 6).
    assert a.counts == (1, 2 + 3, 4, 5 + 6)
    assert b.counts == REFERENCE.counts
    assert (a.total, b.total) == (CURRENT.total, REFERENCE.total) == (21, 100)
    # Merging is exact: the cumulative count at every shared bound is unchanged.
    for bound in a.upper_bounds:
        assert cumulative_at(a, bound) == cumulative_at(CURRENT, bound)
    assert common_layout(REFERENCE, CURRENT) == (b, a)


@pytest.mark.parametrize(
    ("a", "b", "bounds", "a_counts", "b_counts"),
    [
        # Neither has +Inf: the larger top closes the layout.
        (hist([1, 2], [3, 4]), hist([1, 3], [5, 6]), (1, 3), (3, 4), (5, 6)),
        # Only one has +Inf: it is kept, and takes the other's mass above 1.
        (hist([1, 2], [3, 4]), hist([1, 2.5, INF], [1, 1, 1]), (1, INF), (3, 4), (1, 2)),
        # Nothing shared below the top: one bucket each.
        (hist([1, INF], [3, 4]), hist([2, INF], [5, 6]), (INF,), (7,), (11,)),
        (hist([1, INF], [3, 4]), hist([1, INF], [5, 6]), (1, INF), (3, 4), (5, 6)),
    ],
)
def test_common_layout(
    a: Histogram,
    b: Histogram,
    bounds: tuple[float, ...],
    a_counts: tuple[float, ...],
    b_counts: tuple[float, ...],
) -> None:
    merged_a, merged_b = common_layout(a, b)
    assert merged_a == hist(bounds, a_counts)
    assert merged_b == hist(bounds, b_counts)


@pytest.mark.parametrize(
    ("target", "counts"),
    [
        ([2, 4], (1 + 2, 3 + 4)),
        ([4], (10,)),
        ([1, 2, 3, 4], (1, 2, 3, 4)),
        ([1, 3, INF], (1, 2 + 3, 4)),
        ([INF, 3, 1], (1, 2 + 3, 4)),  # any order
    ],
)
def test_rebin_merges_buckets_and_keeps_the_total(
    target: list[float], counts: tuple[float, ...]
) -> None:
    h = rebin(hist([1, 2, 3, 4], [1, 2, 3, 4]), target)
    assert h.upper_bounds == tuple(sorted(target))
    assert h.counts == counts
    assert h.total == 10


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        ([1.5, 4], "would split"),
        ([0.5, 4], "would split"),
        ([1, 2], "does not reach 4"),
        ([], "does not reach 4"),
    ],
)
def test_rebin_never_splits_or_drops_a_bucket(target: list[float], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        rebin(hist([1, 2, 3, 4], [1, 2, 3, 4]), target)


def _psi(p: Sequence[float], q: Sequence[float]) -> float:
    """The formula written out, on proportions already free of zeros."""
    return sum((pi - qi) * math.log(pi / qi) for pi, qi in zip(p, q, strict=True))


# PSI = sum (p - q) ln(p / q), worked out by hand. An empty bucket's proportion
# becomes EPS, then the proportions are divided by their new sum.
A = 0.5 / (1 + 2 * EPS)  # (0.5, 0.5, 0, 0) with EPS for the zeros, renormalised
B = EPS / (1 + 2 * EPS)
PSI_TABLE = [
    # p = (0.5, 0.5), q = (0.25, 0.75)
    pytest.param([50, 50], [25, 75], 0.25 * math.log(2) + (-0.25) * math.log(0.5 / 0.75), id="a"),
    # p = (0.1, 0.2, 0.7), q = (0.2, 0.2, 0.6)
    pytest.param(
        [1, 2, 7], [2, 2, 6], (-0.1) * math.log(0.5) + 0 + 0.1 * math.log(0.7 / 0.6), id="b"
    ),
    # p = (0.9, 0.1), q = (0.1, 0.9): two equal terms 0.8 ln 9
    pytest.param([9, 1], [1, 9], 2 * 0.8 * math.log(9), id="swapped"),
    pytest.param([3, 3], [30, 30], 0.0, id="same-shape"),
    # p = (1, 0) -> (1, EPS) / (1 + EPS); q = (0.5, 0.5)
    pytest.param(
        [10, 0],
        [5, 5],
        (1 / (1 + EPS) - 0.5) * math.log(2 / (1 + EPS))
        + (EPS / (1 + EPS) - 0.5) * math.log(2 * EPS / (1 + EPS)),
        id="empty-current-bucket",
    ),
    # An empty bucket in both gets EPS in both: its term is 0, the others shrink.
    # p = (0.5, 0.5, EPS) / (1 + EPS), q = (0.25, 0.75, EPS) / (1 + EPS)
    pytest.param(
        [50, 50, 0],
        [25, 75, 0],
        _psi([0.5 / (1 + EPS), 0.5 / (1 + EPS)], [0.25 / (1 + EPS), 0.75 / (1 + EPS)]),
        id="empty-in-both",
    ),
    # Disjoint: p = (A, A, B, B), q = (B, B, A, A): four terms (A - B) ln(A / B), ~17.0
    pytest.param([5, 5, 0, 0], [0, 0, 5, 5], 4 * (A - B) * math.log(A / B), id="disjoint"),
]


@pytest.mark.parametrize(("current", "reference", "expected"), PSI_TABLE)
def test_psi_matches_the_hand_computed_table(
    current: list[float], reference: list[float], expected: float
) -> None:
    bounds = [float(i) for i in range(len(current) - 1)] + [INF]
    value = drift_statistic("psi", hist(bounds, current), hist(bounds, reference))
    assert value == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert math.isfinite(value)


BOUNDS = [1.0, 2.0, 3.0, 4.0]
RNG = np.random.default_rng(20240611)
CASES = [
    pytest.param([10, 20, 30, 40], [40, 30, 20, 10], id="reversed"),
    pytest.param([5, 0, 0, 5], [0, 5, 5, 0], id="interleaved"),
    pytest.param([5, 5, 0, 0], [0, 0, 5, 5], id="disjoint"),
    pytest.param([1, 1, 1, 1], [2, 2, 2, 2], id="same-shape"),
    pytest.param([100, 0, 0, 0], [97, 1, 1, 1], id="nearly-one-bucket"),
    pytest.param([0, 0, 0, 9], [3, 3, 3, 0], id="one-bucket-vs-rest"),
    pytest.param([0, 7, 0, 0], [0, 0, 7, 0], id="one-bucket-each"),
    *(
        pytest.param(
            RNG.integers(0, 50, 4).tolist(), RNG.integers(1, 50, 4).tolist(), id=f"random-{i}"
        )
        for i in range(6)
    ),
]


def expand(counts: list[int]) -> list[float]:
    """Samples placed at their buckets' upper bounds: their empirical CDF is the binned one."""
    return [b for b, c in zip(BOUNDS, counts, strict=True) for _ in range(c)]


@pytest.mark.parametrize(("current", "reference"), CASES)
def test_ks_is_scipys_two_sample_statistic(current: list[int], reference: list[int]) -> None:
    expected = ks_2samp(expand(current), expand(reference)).statistic
    value = drift_statistic("ks", hist(BOUNDS, current), hist(BOUNDS, reference))
    assert value == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(("current", "reference"), CASES)
def test_js_is_the_square_of_scipys_distance_in_base_2(
    current: list[int], reference: list[int]
) -> None:
    expected = jensenshannon(current, reference, base=2) ** 2
    value = drift_statistic("js", hist(BOUNDS, current), hist(BOUNDS, reference))
    assert value == pytest.approx(expected, abs=1e-12)
    assert 0.0 <= value <= 1.0


@pytest.mark.parametrize("test", TESTS)
@pytest.mark.parametrize(
    ("current", "reference"),
    [
        pytest.param([10, 20, 30, 40], [10, 20, 30, 40], id="identical"),
        pytest.param([1, 2, 3, 4], [100, 200, 300, 400], id="same-shape"),
        pytest.param([0, 0, 8, 0], [0, 0, 3, 0], id="one-bucket"),
    ],
)
def test_the_same_distribution_has_no_drift(
    test: Test, current: list[int], reference: list[int]
) -> None:
    value = drift_statistic(test, hist(BOUNDS, current), hist(BOUNDS, reference))
    assert value == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(
    ("current", "reference"),
    [([5, 5, 0, 0], [0, 0, 5, 5]), ([0, 0, 0, 9], [3, 3, 3, 0]), ([0, 7, 0, 0], [0, 0, 7, 0])],
)
def test_disjoint_distributions_are_maximal(current: list[int], reference: list[int]) -> None:
    a, b = hist(BOUNDS, current), hist(BOUNDS, reference)
    assert drift_statistic("ks", a, b) == 1.0
    assert drift_statistic("js", a, b) == pytest.approx(1.0, abs=1e-12)
    assert drift_statistic("psi", a, b) > 10


@pytest.mark.parametrize("test", TESTS)
def test_the_statistics_compare_differing_layouts_on_the_shared_bounds(test: Test) -> None:
    by_hand = hist([0.1, 0.5, 1, INF], [1, 2 + 3, 4, 5 + 6])
    assert drift_statistic(test, CURRENT, REFERENCE) == drift_statistic(test, by_hand, REFERENCE)


@pytest.mark.parametrize("test", TESTS)
@pytest.mark.parametrize(
    ("current", "reference", "which"),
    [
        (hist(BOUNDS, [0, 0, 0, 0]), hist(BOUNDS, [1, 1, 1, 1]), "current"),
        (hist(BOUNDS, [1, 1, 1, 1]), hist(BOUNDS, [0, 0, 0, 0]), "reference"),
        (hist([], []), hist(BOUNDS, [1, 1, 1, 1]), "current"),
        (hist([], []), hist([], []), "current"),
    ],
)
def test_an_empty_histogram_has_no_statistic(
    test: Test, current: Histogram, reference: Histogram, which: str
) -> None:
    with pytest.raises(EmptyHistogram, match=f"the {which} histogram has no observations"):
        drift_statistic(test, current, reference)


EVEN = hist(BOUNDS, [50, 50, 0, 0])
# KS of (75, 25) against (25, 75) is |0.75 - 0.25| = 0.5 exactly.
LEFT, RIGHT = hist(BOUNDS, [75, 25, 0, 0]), hist(BOUNDS, [25, 75, 0, 0])


@pytest.mark.parametrize(
    ("threshold", "min_samples", "current", "reference", "verdict", "statistic", "reason"),
    [
        pytest.param(0.2, 20, EVEN, EVEN, "pass", 0.0, None, id="same"),
        pytest.param(0.49, 20, LEFT, RIGHT, "breach", 0.5, None, id="above"),
        pytest.param(0.5, 20, LEFT, RIGHT, "pass", 0.5, None, id="at-threshold"),
        pytest.param(0.2, 100, LEFT, RIGHT, "breach", 0.5, None, id="exactly-min-samples"),
        pytest.param(
            0.2, 20, None, EVEN, "inconclusive", None, "the current window has no data", id="none"
        ),
        pytest.param(
            0.2,
            20,
            EVEN,
            None,
            "inconclusive",
            None,
            "the reference window has no data",
            id="no-reference",
        ),
        pytest.param(
            0.2,
            0,
            hist(BOUNDS, [0, 0, 0, 0]),
            EVEN,
            "inconclusive",
            None,
            "the current window has no data",
            id="empty-current",
        ),
        pytest.param(
            0.2,
            0,
            EVEN,
            hist([], []),
            "inconclusive",
            None,
            "the reference window has no data",
            id="empty-reference",
        ),
        pytest.param(
            0.2,
            101,
            EVEN,
            hist(BOUNDS, [500, 500, 0, 0]),
            "inconclusive",
            None,
            "fewer observations in the current window than minSamples 101",
            id="few-current",
        ),
        pytest.param(
            0.2,
            20,
            EVEN,
            hist(BOUNDS, [5, 5, 0, 0]),
            "inconclusive",
            None,
            "fewer observations in the reference window than minSamples 20",
            id="few-reference",
        ),
        pytest.param(
            0.2,
            20,
            hist([1, INF], [100, 0]),
            hist([2, INF], [0, 100]),
            "inconclusive",
            None,
            "the current and reference bucket layouts share no bound to compare at",
            id="no-shared-bound",
        ),
    ],
)
def test_drift_verdicts(
    threshold: float,
    min_samples: int,
    current: Histogram | None,
    reference: Histogram | None,
    verdict: str,
    statistic: float | None,
    reason: str | None,
) -> None:
    result = drift_verdict("ks", threshold, min_samples, current, reference)
    assert (result.verdict, result.statistic, result.reason) == (verdict, statistic, reason)
    assert result.samples == (current.total if current is not None else 0.0)


@pytest.mark.parametrize(("test", "verdict"), [("psi", "breach"), ("js", "pass")])
def test_the_verdict_uses_the_chosen_statistic(test: Test, verdict: str) -> None:
    # PSI of (75, 25) against (25, 75) is 2 * 0.5 ln 3 = 1.0986; JS is well under 1.
    result = drift_verdict(test, 1.0, 20, LEFT, RIGHT)
    assert result.verdict == verdict
    assert result.statistic == drift_statistic(test, LEFT, RIGHT)
    assert result.samples == 100
