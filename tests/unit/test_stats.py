"""The shared statistics on textbook cases: Holm's step-down method, the binomial tail,
McNemar's mid-p and the paired score test, whose exact size is enumerated."""

import math

import pytest

from modelloop.stats import (
    binomial_half_pmf,
    binomial_tail_half,
    holm,
    paired_worse_by_more_than,
    worse_by,
    worse_by_more_than,
)


def test_holm_rejects_step_by_step_and_stops_at_the_first_acceptance() -> None:
    # m = 4, alpha 0.05: levels 0.0125, 0.0167, 0.025, 0.05 in the order of the p-values.
    decisions = holm([0.01, 0.04, 0.012, 0.03], 0.05)
    assert [rejected for rejected, _ in decisions] == [True, False, True, False]
    assert [level for _, level in decisions] == pytest.approx([0.0125, 0.05, 0.05 / 3, 0.025])


def test_holm_of_nothing_is_nothing() -> None:
    assert holm([], 0.05) == []


def test_an_equal_proportion_is_no_evidence_and_a_large_gap_is() -> None:
    assert worse_by_more_than(0.9, 1000, 0.9, 1000, 0.0, 0.0) > 0.5
    assert worse_by_more_than(0.9, 1000, 0.8, 1000, 0.1, 0.0) < 1e-9
    # Within the margin: no evidence either.
    assert worse_by_more_than(0.9, 1000, 0.85, 1000, 0.05, 0.05) > 0.5


@pytest.mark.parametrize(("k", "m"), [(0, 0), (3, 3), (7, 11), (2, 11), (30, 45), (600, 1000)])
def test_the_binomial_tail_is_exact(k: int, m: int) -> None:
    exact = sum(math.comb(m, i) for i in range(k, m + 1)) / 2**m
    assert binomial_tail_half(k, m) == pytest.approx(exact, rel=1e-12)
    assert binomial_half_pmf(k, m) == pytest.approx(math.comb(m, k) / 2**m, rel=1e-12)


@pytest.mark.parametrize(
    ("worse", "better", "p_value"),
    [
        (0, 0, 0.5),  # no discordant pair: no evidence either way
        (3, 0, 1 / 16),  # P(X = 3) / 2 of 3 pairs
        (8, 1, (1 / 512 + 9 / 512) - 9 / 1024),  # P(X >= 8) - P(X = 8) / 2 of 9
        (5, 5, 0.5),
    ],
)
def test_at_margin_zero_the_paired_test_is_mcnemars_mid_p(
    worse: int, better: int, p_value: float
) -> None:
    assert paired_worse_by_more_than(worse, better, 300, 0.0) == pytest.approx(p_value)


def _trinomial(n: int, r: int, g: int, p_r: float, p_g: float) -> float:
    if (p_r == 0 and r) or (p_g == 0 and g):
        return 0.0
    log = (
        math.lgamma(n + 1)
        - math.lgamma(r + 1)
        - math.lgamma(g + 1)
        - math.lgamma(n - r - g + 1)
        + (r * math.log(p_r) if r else 0.0)
        + (g * math.log(p_g) if g else 0.0)
        + (n - r - g) * math.log(1 - p_r - p_g)
    )
    return math.exp(log)


@pytest.mark.parametrize(
    ("n", "margin", "p_better", "alpha"),
    [
        # Where the uncorrected score test rejected 1.9 to 2.1 times as often as its level.
        (300, 0.02, 0.002, 0.01),
        (300, 0.02, 0.005, 0.05 / 3),
        (100, 0.1, 0.005, 0.01),
        (300, 0.01, 0.0, 0.05),
        (300, 0.05, 0.1, 0.05),
    ],
)
def test_with_a_margin_the_paired_test_holds_its_level_at_the_boundary(
    n: int, margin: float, p_better: float, alpha: float
) -> None:
    """The exact size, enumerated: the candidate worse by exactly the margin."""
    p_worse = p_better + margin
    size = sum(
        _trinomial(n, r, g, p_worse, p_better)
        for r in range(int(n * p_worse + 8 * math.sqrt(n * p_worse + 1)) + 20)
        for g in range(min(n - r, int(n * p_better + 8 * math.sqrt(n * p_better + 1)) + 20) + 1)
        if paired_worse_by_more_than(r, g, n, margin) <= alpha
    )
    assert size <= 1.1 * alpha


def test_the_paired_score_test_finds_what_the_counts_show() -> None:
    # 30 worse, none better on 300: 10 points worse, 8 beyond a margin of 0.02.
    assert paired_worse_by_more_than(30, 0, 300, 0.02) < 1e-5
    # 9 worse, none better: a point beyond the margin, within noise.
    assert paired_worse_by_more_than(9, 0, 300, 0.02) > 0.1
    # Better than the champion: no evidence of a regression at all.
    assert paired_worse_by_more_than(0, 30, 300, 0.02) > 0.999
    assert paired_worse_by_more_than(300, 0, 300, 1.0) == 1.0


@pytest.mark.parametrize(
    ("value", "reference", "higher_is_better", "worse"),
    [
        (0.8, 0.9, True, 0.1),
        (0.9, 0.8, True, -0.1),
        (0.3, 0.1, False, 0.2),
        (0.1, 0.3, False, -0.2),
    ],
)
def test_worse_by_follows_the_direction(
    value: float, reference: float, higher_is_better: bool, worse: float
) -> None:
    assert worse_by(value, reference, higher_is_better) == pytest.approx(worse)
