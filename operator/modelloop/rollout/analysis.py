"""Canary against stable, per metric and slice, with false alarms under control. Pure.

Each pair is judged on its allowed regression (absolute, or relative to stable, in
the direction of ``higherIsBetter``). For a rate metric — a proportion with its
number of trials, such as precision over flagged transactions — the regression
must also be significant: a one-sided two-proportion z-test (with Yates'
continuity correction) of "the canary is worse than stable by more than the
allowance", the normal CDF from ``math.erf``.
Many pairs are tested each interval, so the p-values are corrected with Holm's
step-down method, and many analyses are made in one rollout (on overlapping
windows), so the level is spent over them: the k-th analysis that tests anything
runs at alpha * 6 / (pi^2 k^2), a series summing to alpha. An identical canary is
thus rolled back with probability at most 1 - confidence over its whole rollout,
however many analyses it takes — not once per pair or per analysis. Too few
samples is inconclusive, never a failure.
"""

import math
from dataclasses import dataclass
from typing import Literal

Outcome = Literal["pass", "fail", "inconclusive"]


@dataclass(frozen=True)
class Pair:
    """One metric on one slice, as measured for stable and for the canary."""

    metric: str
    slice: str
    higher_is_better: bool
    stable: float | None
    canary: float | None
    stable_samples: float | None = None
    canary_samples: float | None = None
    rate: bool = False  # a proportion: values in [0, 1], samples are its trials
    absolute: float = 0.0  # allowed regression
    relative: float = 0.0  # allowed regression, as a fraction of stable's value
    min_samples: float = 0.0  # fewer samples on either side is inconclusive


@dataclass(frozen=True)
class Judged:
    pair: Pair
    outcome: Outcome
    p_value: float | None
    reason: str


def normal_cdf(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def allowance(pair: Pair) -> float:
    assert pair.stable is not None
    return max(pair.absolute, pair.relative * abs(pair.stable))


def regression(pair: Pair) -> float:
    """How much worse the canary is (negative when it is better)."""
    assert pair.stable is not None
    assert pair.canary is not None
    difference = pair.canary - pair.stable
    return -difference if pair.higher_is_better else difference


def two_proportion_p_value(pair: Pair) -> float:
    """P(a regression at least this large beyond the allowance | the canary is exactly
    at the allowance): small means the canary is truly worse."""
    assert pair.stable is not None
    assert pair.canary is not None
    n_s, n_c = float(pair.stable_samples or 0), float(pair.canary_samples or 0)
    pooled = (pair.stable * n_s + pair.canary * n_c) / (n_s + n_c)
    variance = pooled * (1.0 - pooled) * (1.0 / n_s + 1.0 / n_c)
    # Yates' continuity correction: counts are whole numbers; without it the normal
    # approximation rolls back identical canaries slightly more often than alpha.
    excess = regression(pair) - allowance(pair) - 0.5 * (1.0 / n_s + 1.0 / n_c)
    if variance <= 0.0:
        return 0.0 if excess > 0 else 1.0
    return 1.0 - normal_cdf(excess / math.sqrt(variance))


def _inconclusive(pair: Pair) -> str | None:
    # Samples first: the evaluation drops the value of a series under minSamples, and
    # "too few samples" says why where "no value" would not.
    for who, samples in (("stable", pair.stable_samples), ("canary", pair.canary_samples)):
        if samples is not None and samples < max(pair.min_samples, 1):
            return f"too few samples for {who} ({samples:g}, minimum {pair.min_samples:g})"
    if pair.stable is None or pair.canary is None:
        return "no value for " + ("stable" if pair.stable is None else "the canary")
    if any(math.isnan(v) or math.isinf(v) for v in (pair.stable, pair.canary)):
        return "a value is NaN or infinite"
    # A rate needs its trials; other metrics are held to minSamples only when counted.
    for who, samples in (("stable", pair.stable_samples), ("canary", pair.canary_samples)):
        if samples is None and pair.rate:
            return f"no sample count for {who}: a proportion needs its number of trials"
    return None


def spent_alpha(confidence: float, test_number: int) -> float:
    """The level of a rollout's ``test_number``-th testing analysis (1, 2, ...)."""
    return (1.0 - confidence) * 6.0 / (math.pi**2 * test_number**2)


def analyse(pairs: list[Pair], confidence: float, test_number: int = 1) -> list[Judged]:
    """Judge every pair; rate pairs fail only when significant after Holm's correction,
    at the level this rollout's ``test_number``-th testing analysis may spend."""
    alpha = spent_alpha(confidence, test_number)
    judged: dict[int, Judged] = {}
    tested: list[tuple[float, int]] = []
    for index, pair in enumerate(pairs):
        why = _inconclusive(pair)
        if why is not None:
            judged[index] = Judged(pair, "inconclusive", None, why)
            continue
        excess = regression(pair) - allowance(pair)
        if not pair.rate:
            outcome: Outcome = "fail" if excess > 0 else "pass"
            judged[index] = Judged(pair, outcome, None, _describe(pair))
            continue
        tested.append((two_proportion_p_value(pair), index))
    m = len(tested)
    rejecting = True
    for rank, (p_value, index) in enumerate(sorted(tested)):
        rejecting = rejecting and p_value <= alpha / (m - rank)
        pair = pairs[index]
        text = f"{_describe(pair)}; p = {p_value:.3g} (Holm, {m} tests, alpha {alpha:.3g})"
        judged[index] = Judged(pair, "fail" if rejecting else "pass", p_value, text)
    return [judged[i] for i in range(len(pairs))]


def _describe(pair: Pair) -> str:
    assert pair.stable is not None
    assert pair.canary is not None
    return (
        f"canary {pair.canary:.4g} vs stable {pair.stable:.4g}: "
        f"worse by {regression(pair):.4g} (allowed {allowance(pair):.4g})"
    )


def overall(judged: list[Judged]) -> Outcome:
    """fail if any pair fails; else inconclusive if any is; else pass."""
    outcomes = {j.outcome for j in judged}
    if "fail" in outcomes:
        return "fail"
    return "inconclusive" if "inconclusive" in outcomes or not judged else "pass"
