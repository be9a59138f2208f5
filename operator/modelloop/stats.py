"""The statistics ModelLoop's decisions share: a one-sided two-proportion z-test and
Holm's step-down correction. Pure; the normal CDF from ``math.erf``."""

import math
from collections.abc import Sequence


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
