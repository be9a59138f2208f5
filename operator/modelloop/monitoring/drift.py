"""Drift statistics on Prometheus histograms, with numpy. Pure.

Prometheus histograms are cumulative bucket counters keyed by their upper bound
``le``; ``increase()`` over a window gives the observations in that window.
Two histograms can have different layouts (the exporter changed its buckets
between the reference and now); they are compared on the bounds they share,
merging buckets — exact for cumulative counts, where splitting a bucket would
mean inventing how observations fall inside it.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

Test = Literal["psi", "ks", "js"]
# Proportion standing in for an empty bucket in PSI (whose log would be infinite).
PSI_EPSILON = 1e-4


class EmptyHistogram(ValueError):
    pass


@dataclass(frozen=True)
class Histogram:
    upper_bounds: tuple[float, ...]  # strictly increasing; the last may be +Inf
    counts: tuple[float, ...]  # observations per bucket (not cumulative)

    @property
    def total(self) -> float:
        return float(sum(self.counts))


def parse_le(text: str) -> float:
    """A Prometheus ``le`` label ("0.5", "1e3", "+Inf") as a float."""
    return math.inf if text in ("+Inf", "Inf", "inf") else float(text)


def from_cumulative(buckets: Mapping[float, float]) -> Histogram:
    """Per-bucket counts from cumulative ``le`` values. NaN counts as 0; a bucket that
    seems to lose observations (counter resets and extrapolation noise in
    ``increase()``) is clamped to 0 rather than made negative."""
    bounds = sorted(buckets)
    cumulative = np.array(
        [0.0 if math.isnan(buckets[b]) else buckets[b] for b in bounds], dtype=np.float64
    )
    counts = np.clip(np.diff(cumulative, prepend=0.0), 0.0, None)
    return Histogram(tuple(bounds), tuple(float(c) for c in counts))


def rebin(h: Histogram, upper_bounds: Sequence[float]) -> Histogram:
    """Merge ``h``'s buckets into ``upper_bounds``, which must be a subset of its bounds
    (plus the largest, so nothing is lost)."""
    target = sorted(upper_bounds)
    counts = [0.0] * len(target)
    index = 0
    for bound, count in zip(h.upper_bounds, h.counts, strict=True):
        while index < len(target) - 1 and bound > target[index]:
            index += 1
        counts[index] += count
    return Histogram(tuple(target), tuple(counts))


def common_layout(a: Histogram, b: Histogram) -> tuple[Histogram, Histogram]:
    if a.upper_bounds == b.upper_bounds:
        return a, b
    shared = set(a.upper_bounds) & set(b.upper_bounds)
    top = max([*a.upper_bounds, *b.upper_bounds], default=math.inf)
    shared.add(top)
    bounds = sorted(shared)
    return rebin(a, bounds), rebin(b, bounds)


def _proportions(h: Histogram) -> NDArray[np.float64]:
    counts = np.array(h.counts, dtype=np.float64)
    proportions: NDArray[np.float64] = counts / counts.sum()
    return proportions


def psi(current: Histogram, reference: Histogram) -> float:
    """Population stability index: sum (p - q) ln(p / q), empty buckets set to
    PSI_EPSILON and the proportions renormalised."""
    p, q = _proportions(current), _proportions(reference)
    p = np.where(p == 0, PSI_EPSILON, p)
    q = np.where(q == 0, PSI_EPSILON, q)
    p, q = p / p.sum(), q / q.sum()
    return float(np.sum((p - q) * np.log(p / q)))


def ks(current: Histogram, reference: Histogram) -> float:
    """Kolmogorov-Smirnov D: the largest gap between the CDFs at the bucket bounds. At
    Prometheus sample sizes the p-value is always ~0, so D itself is thresholded."""
    return float(
        np.max(np.abs(np.cumsum(_proportions(current)) - np.cumsum(_proportions(reference))))
    )


def js(current: Histogram, reference: Histogram) -> float:
    """Jensen-Shannon divergence in base 2, in [0, 1] (scipy's jensenshannon is its root)."""
    p, q = _proportions(current), _proportions(reference)
    m = (p + q) / 2

    def kl(a: NDArray[np.float64]) -> float:
        mask = a > 0
        return float(np.sum(a[mask] * np.log2(a[mask] / m[mask])))

    return max(0.0, (kl(p) + kl(q)) / 2)


STATISTICS = {"psi": psi, "ks": ks, "js": js}


def drift_statistic(test: Test, current: Histogram, reference: Histogram) -> float:
    if current.total <= 0 or reference.total <= 0:
        raise EmptyHistogram("a histogram with no observations has no distribution")
    a, b = common_layout(current, reference)
    return STATISTICS[test](a, b)


@dataclass(frozen=True)
class DriftResult:
    verdict: Literal["pass", "breach", "inconclusive"]
    statistic: float | None
    samples: float
    reason: str | None = None


def drift_verdict(
    test: Test,
    threshold: float,
    min_samples: int,
    current: Histogram | None,
    reference: Histogram | None,
) -> DriftResult:
    samples = current.total if current is not None else 0.0
    for name, h in (("current", current), ("reference", reference)):
        if h is None or h.total <= 0:
            return DriftResult("inconclusive", None, samples, f"the {name} window has no data")
        if h.total < min_samples:
            return DriftResult(
                "inconclusive",
                None,
                samples,
                f"fewer observations in the {name} window than minSamples {min_samples}",
            )
    assert current is not None
    assert reference is not None
    statistic = drift_statistic(test, current, reference)
    verdict: Literal["pass", "breach"] = "breach" if statistic > threshold else "pass"
    return DriftResult(verdict, statistic, samples)
