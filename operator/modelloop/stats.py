"""The statistics ModelLoop's decisions share: one-sided tests of "worse by more than a
margin" for two independent proportions (two-proportion z-test) and for paired
proportions on the same examples (McNemar's exact test, the score test of Nam and
Tango), and Holm's step-down correction. Pure; the normal CDF from ``math.erf``."""

import math
from collections.abc import Sequence


def worse_by(value: float, reference: float, higher_is_better: bool) -> float:
    """How much worse ``value`` is than ``reference`` (negative when it is better)."""
    return reference - value if higher_is_better else value - reference


def normal_cdf(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def worse_by_more_than(
    reference: float,
    n_reference: float,
    other: float,
    n_other: float,
    regression: float,
    margin: float,
) -> float:
    """p-value of "``other`` is worse than ``reference`` by more than ``margin``", given the
    observed ``regression`` (how much worse ``other`` is, in the metric's direction), for
    two proportions of ``n_reference`` and ``n_other`` trials.

    Pooled variance and Yates' continuity correction: counts are whole numbers, and
    without the correction the normal approximation rejects equal proportions slightly
    more often than its level.
    """
    pooled = (reference * n_reference + other * n_other) / (n_reference + n_other)
    variance = pooled * (1.0 - pooled) * (1.0 / n_reference + 1.0 / n_other)
    excess = regression - margin - 0.5 * (1.0 / n_reference + 1.0 / n_other)
    if variance <= 0.0:
        return 0.0 if excess > 0 else 1.0
    return 1.0 - normal_cdf(excess / math.sqrt(variance))


def binomial_half_pmf(k: int, m: int) -> float:
    """P(X = k) for X ~ Binomial(m, 1/2)."""
    if not 0 <= k <= m:
        return 0.0
    return math.exp(
        math.lgamma(m + 1) - math.lgamma(k + 1) - math.lgamma(m - k + 1) - m * math.log(2.0)
    )


def binomial_tail_half(k: int, m: int) -> float:
    """P(X >= k) for X ~ Binomial(m, 1/2), exactly: summed from the tail's far side of the
    mode, where the terms shrink, so it takes a few hundred terms even for large m."""
    if k <= 0:
        return 1.0
    if k > m:
        return 0.0
    if 2 * k <= m:  # P(X >= k) = 1 - P(X <= k - 1) = 1 - P(X >= m - k + 1), by symmetry
        return 1.0 - binomial_tail_half(m - k + 1, m)
    term, total = binomial_half_pmf(k, m), 0.0
    for i in range(k, m + 1):
        total += term
        if term < 1e-17 * total:
            break
        term *= (m - i) / (i + 1)
    return min(total, 1.0)


def paired_worse_by_more_than(worse: int, better: int, n: int, margin: float) -> float:
    """p-value of "the candidate is worse than the reference by more than ``margin``" on
    the same ``n`` examples, from the discordant pairs: ``worse`` examples count for the
    reference only (a regression), ``better`` for the candidate only.

    The regression is d = (worse - better) / n. At margin 0 it is McNemar's test in its
    mid-p form: under "no regression" each discordant pair is a regression with
    probability 1/2 at most, so P(X > worse) + P(X = worse) / 2 for X ~ Binomial(worse +
    better, 1/2). The exact P(X >= worse) is needlessly conservative; the mid-p test kept
    its level in all 9595 scenarios of Fagerland, Lydersen and Laake (BMC Med. Res.
    Methodol. 13:91, 2013), with almost the power of the asymptotic test. Above 0 it is the
    score test of Nam (Biometrics 53:1422, 1997) and Tango (Stat. Med. 17:891, 1998): the
    variance of d is taken at the restricted maximum-likelihood estimate under
    d = margin rather than from the observed counts (the Wald variance, which rejects
    too often). With few discordant pairs it still rejects up to twice as often as its
    level, so d is reduced by one example (1/n), as Edwards' correction does for
    McNemar's statistic: the exact size then stays within 1.1 times the level for n from
    50 to 3000, margins from 0.005 to 0.2 and discordant rates from 0 to 0.2 (enumerated).
    """
    if margin <= 0.0:
        discordant = worse + better
        return binomial_tail_half(worse, discordant) - 0.5 * binomial_half_pmf(worse, discordant)
    if margin >= 1.0:
        return 1.0
    # Restricted MLE of p_better given p_worse = p_better + margin: the positive root of
    # 2n p^2 - (w + b + (w - b - 2n) margin) p - b margin (1 - margin) = 0.
    a = 2.0 * n
    b = -(worse + better + (worse - better - 2.0 * n) * margin)
    c = -better * margin * (1.0 - margin)
    p_better = (-b + math.sqrt(b * b - 4.0 * a * c)) / (2.0 * a)
    variance = (2.0 * p_better + margin - margin * margin) / n
    z = ((worse - better - 1) / n - margin) / math.sqrt(variance)
    return 1.0 - normal_cdf(z)


def holm(p_values: Sequence[float], alpha: float) -> list[tuple[bool, float]]:
    """Holm's step-down method: for each p-value (in the given order), whether it is
    rejected and the level it was held to."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    m = len(p_values)
    result: list[tuple[bool, float]] = [(False, alpha)] * m
    rejecting = True
    for rank, index in enumerate(order):
        level = alpha / (m - rank)
        rejecting = rejecting and p_values[index] <= level
        result[index] = (rejecting, level)
    return result
