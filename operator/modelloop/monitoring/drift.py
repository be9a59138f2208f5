"""Drift statistics on Prometheus histograms, with numpy. Pure.

Prometheus histograms are cumulative bucket counters keyed by their upper bound
``le``; ``increase()`` over a window gives the observations in that window.
Two histograms can have different layouts (the exporter changed its buckets
between the reference and now); they are compared on the bounds they share,
merging buckets. Merging is exact: the cumulative count at a shared bound is known
in both. Splitting a bucket would mean inventing how observations fall inside it.
"""

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from ..api.vocabulary import VerdictName

Test = Literal["psi", "ks", "js"]
# Proportion standing in for an empty bucket in PSI (whose log would be infinite).
PSI_EPSILON = 1e-4


class EmptyHistogram(ValueError):
    """A histogram with no observations has no distribution to compare."""


@dataclass(frozen=True)
class Histogram:
    upper_bounds: tuple[float, ...]  # strictly increasing; the last may be +Inf
    counts: tuple[float, ...]  # observations per bucket (not cumulative)

    def __post_init__(self) -> None:
        if len(self.upper_bounds) != len(self.counts):
            raise ValueError("a histogram needs one count per upper bound")
        bounds = self.upper_bounds
        if any(map(math.isnan, bounds)) or not all(b < c for b, c in pairwise(bounds)):
            raise ValueError(f"upper bounds not strictly increasing: {self.upper_bounds}")
        if not all(math.isfinite(c) and c >= 0 for c in self.counts):
            raise ValueError(f"bucket counts must be finite and >= 0: {self.counts}")

    @property
    def total(self) -> float:
        return math.fsum(self.counts)


def parse_le(text: str) -> float:
    """A Prometheus ``le`` label ("0.5", "1e3", "+Inf") as a float."""
    value = float(text)  # float() reads "+Inf" too
    if math.isnan(value):
        raise ValueError(f"a bucket bound cannot be NaN: {text!r}")
    return value


def from_cumulative(buckets: Mapping[float, float]) -> Histogram:
    """Per-bucket counts from cumulative ``le`` values.

    A NaN value counts as 0. A bucket that seems to lose observations (counter resets,
    extrapolation noise in ``increase()``) gets 0 rather than a negative count: the
    cumulative values are replaced by their running maximum before differencing, the
    envelope Prometheus' ``histogram_quantile`` uses too. Clamping the differences
    alone would count the dip twice and make the total exceed the +Inf bucket's.
    """
    bounds = sorted(buckets)
    cumulative = np.array([buckets[b] for b in bounds], dtype=np.float64)
    # Non-finite values (NaN; +-Inf, which no counter produces) carry no observations.
    cumulative[~np.isfinite(cumulative)] = 0.0
    envelope = np.maximum.accumulate(np.concatenate(([0.0], cumulative)))
    return Histogram(tuple(bounds), tuple(float(c) for c in np.diff(envelope)))


def rebin(h: Histogram, upper_bounds: Sequence[float]) -> Histogram:
    """Merge ``h``'s buckets into ``upper_bounds``.

    Every target bound but the last must be one of ``h``'s, and the last must be at
    least ``h``'s largest, so each bucket falls whole into one target bucket: nothing
    is split and nothing is lost.
    """
    target = sorted(upper_bounds)
    if h.upper_bounds:
        if not target or target[-1] < h.upper_bounds[-1]:
            raise ValueError(f"{target} does not reach {h.upper_bounds[-1]}")
        missing = set(target[:-1]) - set(h.upper_bounds)
        if missing:
            raise ValueError(f"rebinning at {sorted(missing)} would split buckets")
    # Each bucket goes to the first target bound at or above its own.
    index = np.searchsorted(np.array(target, dtype=np.float64), h.upper_bounds, side="left")
    counts = np.bincount(index, weights=h.counts, minlength=len(target))
    return Histogram(tuple(target), tuple(float(c) for c in counts))


def common_layout(a: Histogram, b: Histogram) -> tuple[Histogram, Histogram]:
    """Both histograms on the bounds they share, plus the largest bound of either
    (+Inf when either has it), so that no observation falls outside."""
    if a.upper_bounds == b.upper_bounds:
        return a, b
    shared = set(a.upper_bounds) & set(b.upper_bounds)
    shared.add(max([*a.upper_bounds, *b.upper_bounds], default=math.inf))
    bounds = sorted(shared)
    return rebin(a, bounds), rebin(b, bounds)


def _proportions(h: Histogram) -> NDArray[np.float64]:
    counts = np.array(h.counts, dtype=np.float64)
    proportions: NDArray[np.float64] = counts / counts.sum()
    return proportions


def psi(current: Histogram, reference: Histogram) -> float:
    """Population stability index, sum (p - q) ln(p / q) over the buckets.

    p and q are the bucket proportions; a proportion of exactly 0 becomes PSI_EPSILON,
    then each distribution is divided by its new sum so that it adds up to 1 again.
    """
    p, q = _proportions(current), _proportions(reference)
    p = np.where(p == 0, PSI_EPSILON, p)
    q = np.where(q == 0, PSI_EPSILON, q)
    p, q = p / p.sum(), q / q.sum()
    return float(np.sum((p - q) * np.log(p / q)))


def ks(current: Histogram, reference: Histogram) -> float:
    """Kolmogorov-Smirnov D: the largest gap between the CDFs at the bucket bounds. At
    Prometheus sample sizes the p-value is always ~0, so D itself is thresholded."""
    gaps = np.cumsum(_proportions(current)) - np.cumsum(_proportions(reference))
    return float(np.max(np.abs(gaps)))


def js(current: Histogram, reference: Histogram) -> float:
    """Jensen-Shannon divergence in base 2, in [0, 1] (scipy's jensenshannon is its root)."""
    p, q = _proportions(current), _proportions(reference)
    m = (p + q) / 2

    def kl(a: NDArray[np.float64]) -> float:
        mask = a > 0  # 0 log 0 = 0; where a > 0, m > 0 too
        return float(np.sum(a[mask] * np.log2(a[mask] / m[mask])))

    return min(1.0, max(0.0, (kl(p) + kl(q)) / 2))  # clip rounding just outside [0, 1]


STATISTICS: dict[Test, Callable[[Histogram, Histogram], float]] = {
    "psi": psi,
    "ks": ks,
    "js": js,
}


def drift_statistic(test: Test, current: Histogram, reference: Histogram) -> float:
    """The statistic on the two histograms' common layout; EmptyHistogram when either
    has no observations (a caller's "inconclusive", never a silent 0 or NaN)."""
    for name, h in (("current", current), ("reference", reference)):
        if h.total <= 0:
            raise EmptyHistogram(f"the {name} histogram has no observations")
    a, b = common_layout(current, reference)
    return STATISTICS[test](a, b)


@dataclass(frozen=True)
class DriftResult:
    verdict: VerdictName
    statistic: float | None
    samples: float  # observations in the current window
    reason: str | None = None


def drift_verdict(
    test: Test,
    threshold: float,
    min_samples: int,
    current: Histogram | None,
    reference: Histogram | None,
) -> DriftResult:
    """Breach when the statistic exceeds ``threshold``; inconclusive without enough data
    in both windows, or when their layouts share no bound below the top one."""
    samples = current.total if current is not None else 0.0
    for name, h in (("current", current), ("reference", reference)):
        if h is None or h.total <= 0:
            return DriftResult(
                VerdictName.INCONCLUSIVE, None, samples, f"the {name} window has no data"
            )
        if h.total < min_samples:
            reason = f"fewer observations in the {name} window than minSamples {min_samples}"
            return DriftResult(VerdictName.INCONCLUSIVE, None, samples, reason)
    assert current is not None  # the loop returned otherwise
    assert reference is not None
    a, b = common_layout(current, reference)
    if len(a.upper_bounds) < 2:
        # One bucket holds everything: every statistic would be 0 whatever the data.
        reason = "the current and reference bucket layouts share no bound to compare at"
        return DriftResult(VerdictName.INCONCLUSIVE, None, samples, reason)
    statistic = drift_statistic(test, a, b)
    verdict = VerdictName.BREACH if statistic > threshold else VerdictName.PASS
    return DriftResult(verdict, statistic, samples)
