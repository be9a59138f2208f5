"""Canary against stable, per metric and slice, with false alarms under control. Pure.

Each pair is judged by its metric's ``canary.test``:

- ``proportion``: the value is a proportion of its sample count (accuracy =
  correct / predictions). The canary fails only when it is worse than stable by
  more than the allowance *and* the regression is significant: a one-sided
  two-proportion z-test (with Yates' continuity correction), the normal CDF from
  ``math.erf``.
- ``threshold``: no test; any regression beyond the allowance (absolute, or
  relative to stable, in the direction of ``higherIsBetter``) fails. Meant for
  metrics with no sample model (latency) and an allowance chosen on purpose.
- ``auto`` (the default): ``proportion`` when both values lie in [0, 1] and both
  have sample counts; else ``threshold`` when an allowance is set; else the pair
  is inconclusive (``Untestable``) — a raw difference of two noisy numbers with
  no allowance would roll back an identical canary almost surely.

Many pairs are tested each interval, so the p-values are corrected with Holm's
step-down method, and many analyses are made in one rollout (on overlapping
windows), so the level is spent over them: the k-th analysis that tests anything
runs at alpha * 6 / (pi^2 k^2), a series summing to alpha. An identical canary is
thus rolled back with probability at most 1 - confidence over its whole rollout,
however many analyses it takes — not once per pair or per analysis. Too few
samples is inconclusive, never a failure.

Late labels: a pair of a metric with ``labels`` waits (outcome ``waiting``, counted
toward nothing) while the traffic it judges is younger than ``labels.delay``, or while
either side's label coverage is below ``labels.minCoverage`` (or unknown).

Every judgement carries a reason code (``PairReason``) and its numbers;
``describe`` renders the words.
"""

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from ..api.durations import spoken
from ..api.reasons import PairReason
from ..api.vocabulary import PairOutcome
from ..monitoring.verdicts import label_share
from ..stats import holm, worse_by, worse_by_more_than

CanaryTest = Literal["auto", "proportion", "threshold"]


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
    test: CanaryTest = "auto"
    absolute: float = 0.0  # allowed regression
    relative: float = 0.0  # allowed regression, as a fraction of stable's value
    min_samples: float = 0.0  # fewer samples on either side is inconclusive
    early: bool = False  # an early signal (canary.early), read while labels wait
    label_delay: timedelta | None = None  # labels.delay; None: labels come with predictions
    traffic_age: timedelta | None = None  # how old the traffic judged is (since the step began)
    min_coverage: float = 0.0
    stable_coverage: float | None = None
    canary_coverage: float | None = None
    # A drift check's canary against stable: ``canary`` is this statistic (psi, ks, js)
    # of its distribution against stable's; ``absolute`` the threshold.
    statistic: str | None = None


@dataclass(frozen=True)
class Judged:
    pair: Pair
    outcome: PairOutcome
    code: PairReason
    p_value: float | None = None
    alpha: float | None = None  # the Holm threshold the p-value was held to
    tests: int = 0  # pairs tested together in this analysis

    @property
    def reason(self) -> str:
        return describe(self)


def allowance(pair: Pair) -> float:
    assert pair.stable is not None
    return max(pair.absolute, pair.relative * abs(pair.stable))


def regression(pair: Pair) -> float:
    """How much worse the canary is (negative when it is better)."""
    assert pair.stable is not None
    assert pair.canary is not None
    return worse_by(pair.canary, pair.stable, pair.higher_is_better)


def two_proportion_p_value(pair: Pair) -> float:
    """P(a regression at least this large beyond the allowance | the canary is exactly
    at the allowance): small means the canary is truly worse."""
    assert pair.stable is not None
    assert pair.canary is not None
    return worse_by_more_than(
        pair.stable,
        float(pair.stable_samples or 0),
        pair.canary,
        float(pair.canary_samples or 0),
        regression(pair),
        allowance(pair),
    )


def _is_proportion(value: float, samples: float | None) -> bool:
    return 0.0 <= value <= 1.0 and samples is not None and samples > 0


def label_wait(pair: Pair) -> PairReason | None:
    """Why the pair must wait for its labels, or None when they have matured."""
    if pair.label_delay is None:
        return None
    if pair.traffic_age is not None and pair.traffic_age < pair.label_delay:
        return PairReason.LABELS_IMMATURE
    if pair.min_coverage > 0:
        for coverage in (pair.stable_coverage, pair.canary_coverage):
            if coverage is None or not math.isfinite(coverage) or coverage < pair.min_coverage:
                return PairReason.LABELS_INCOMPLETE
    return None


def _unjudgeable(pair: Pair) -> PairReason | None:
    # Samples first: the evaluation drops the value of a series under minSamples, and
    # "too few samples" says why where "no value" would not.
    for samples in (pair.stable_samples, pair.canary_samples):
        if samples is not None and samples < max(pair.min_samples, 1):
            return PairReason.TOO_FEW_SAMPLES
    if pair.stable is None or pair.canary is None:
        return PairReason.NO_VALUE
    if not (math.isfinite(pair.stable) and math.isfinite(pair.canary)):
        return PairReason.NOT_FINITE
    if pair.test == "proportion":
        if pair.stable_samples is None or pair.canary_samples is None:
            return PairReason.NO_SAMPLE_COUNT
        if not (
            _is_proportion(pair.stable, pair.stable_samples)
            and _is_proportion(pair.canary, pair.canary_samples)
        ):
            return PairReason.NOT_A_PROPORTION
    return None


def method(pair: Pair) -> Literal["proportion", "threshold"] | None:
    """How a judgeable pair is judged; None: it cannot be (no test, no allowance)."""
    if pair.test != "auto":
        return pair.test
    assert pair.stable is not None
    assert pair.canary is not None
    if _is_proportion(pair.stable, pair.stable_samples) and _is_proportion(
        pair.canary, pair.canary_samples
    ):
        return "proportion"
    if pair.absolute > 0 or pair.relative > 0:
        return "threshold"
    return None


def spent_alpha(confidence: float, test_number: int) -> float:
    """The level of a rollout's ``test_number``-th testing analysis (1, 2, ...)."""
    return (1.0 - confidence) * 6.0 / (math.pi**2 * test_number**2)


def analyse(pairs: list[Pair], confidence: float, test_number: int = 1) -> list[Judged]:
    """Judge every pair; proportion pairs fail only when significant after Holm's
    correction, at the level this rollout's ``test_number``-th testing analysis may spend."""
    alpha = spent_alpha(confidence, test_number)
    judged: dict[int, Judged] = {}
    tested: list[tuple[float, int]] = []
    for index, pair in enumerate(pairs):
        waits = label_wait(pair)
        if waits is not None:
            judged[index] = Judged(pair, PairOutcome.WAITING, waits)
            continue
        why = _unjudgeable(pair)
        if why is not None:
            judged[index] = Judged(pair, PairOutcome.INCONCLUSIVE, why)
            continue
        how = method(pair)
        if how is None:
            judged[index] = Judged(pair, PairOutcome.INCONCLUSIVE, PairReason.UNTESTABLE)
        elif how == "threshold":
            beyond = regression(pair) - allowance(pair) > 0
            judged[index] = (
                Judged(pair, PairOutcome.FAIL, PairReason.BEYOND_ALLOWANCE)
                if beyond
                else Judged(pair, PairOutcome.PASS, PairReason.WITHIN_ALLOWANCE)
            )
        else:
            tested.append((two_proportion_p_value(pair), index))
    decisions = holm([p for p, _ in tested], alpha)
    for (p_value, index), (rejected, level) in zip(tested, decisions, strict=True):
        outcome = PairOutcome.FAIL if rejected else PairOutcome.PASS
        code = PairReason.SIGNIFICANT if rejected else PairReason.NOT_SIGNIFICANT
        judged[index] = Judged(pairs[index], outcome, code, p_value, level, len(tested))
    return [judged[i] for i in range(len(pairs))]


def describe(judged: Judged) -> str:
    """The words for one judged pair, from its reason code and numbers."""
    pair, code = judged.pair, judged.code
    if code == PairReason.LABELS_IMMATURE:
        assert pair.label_delay is not None
        assert pair.traffic_age is not None
        return (
            f"waiting for labels: they come {spoken(pair.label_delay)} late and the traffic "
            f"judged is {spoken(pair.traffic_age)} old"
        )
    if code == PairReason.LABELS_INCOMPLETE:
        return (
            f"waiting for labels: {label_share(pair.canary_coverage)} for the canary, "
            f"{label_share(pair.stable_coverage)} for stable (minimum {pair.min_coverage:.0%})"
        )
    if code == PairReason.TOO_FEW_SAMPLES:
        side, samples = (
            ("stable", pair.stable_samples)
            if pair.stable_samples is not None and pair.stable_samples < max(pair.min_samples, 1)
            else ("canary", pair.canary_samples)
        )
        return f"too few samples for {side} ({samples:g}, minimum {pair.min_samples:g})"
    if code == PairReason.NO_VALUE:
        return "no value for " + ("stable" if pair.stable is None else "the canary")
    if code == PairReason.NOT_FINITE:
        return "a value is NaN or infinite"
    if code == PairReason.NO_SAMPLE_COUNT:
        side = "stable" if pair.stable_samples is None else "the canary"
        return f"no sample count for {side}: a proportion needs its number of trials"
    if code == PairReason.NOT_A_PROPORTION:
        return (
            f"canary.test is proportion but the values ({pair.canary:.4g}, {pair.stable:.4g}) "
            "are not proportions of positive sample counts"
        )
    if code == PairReason.UNTESTABLE:
        return (
            f"canary {pair.canary:.4g} vs stable {pair.stable:.4g}: cannot be tested (not a "
            "proportion with sample counts) and no allowance is set; set canary.absolute or "
            "canary.relative, or canary.enabled: false"
        )
    if pair.statistic is not None and code in (
        PairReason.WITHIN_ALLOWANCE,
        PairReason.BEYOND_ALLOWANCE,
    ):
        return (
            f"the canary's distribution against stable's: {pair.statistic} "
            f"{pair.canary:.4g} (threshold {pair.absolute:g}, "
            f"{pair.canary_samples or 0:.0f} observations)"
        )
    text = (
        f"canary {pair.canary:.4g} vs stable {pair.stable:.4g}: "
        f"worse by {regression(pair):.4g} (allowed {allowance(pair):.4g})"
    )
    if judged.p_value is not None:
        text += f"; p = {judged.p_value:.3g} (Holm, {judged.tests} tests, level {judged.alpha:.3g})"
    return text


def overall(judged: list[Judged]) -> PairOutcome:
    """fail if any pair fails; else waiting if any waits for its labels (the analysis is
    not complete); else inconclusive if any is; else pass."""
    outcomes = {j.outcome for j in judged}
    for outcome in (PairOutcome.FAIL, PairOutcome.WAITING, PairOutcome.INCONCLUSIVE):
        if outcome in outcomes:
            return outcome
    return PairOutcome.PASS if judged else PairOutcome.INCONCLUSIVE
