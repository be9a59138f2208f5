"""The offline validation gate: is a candidate truly better, overall and per slice?

Pure. Each gate of ``spec.validation`` is checked on every slice it names, in the
spirit of TFMA's value and change thresholds: absolute bounds on the candidate's
value, and a tolerated regression against the champion measured on the same
held-out data (the trainer reports both, with their sample counts). Which
direction is a regression comes from the metric's ``higherIsBetter``. A missing
value fails its check unless ``requireAllSlices`` is off — a gate that cannot be
checked proves nothing.

Noise: when both values are proportions with sample counts, a regression beyond
the tolerance rejects only when it is significant at ``validation.confidence``,
Holm-corrected across the comparisons of one candidate, so three examples out of
300 neither reject a good candidate nor (with enough data) pass a bad one. Which
test (``NoiseTest``):

- ``paired``, when the candidate's row reports its paired counts (the examples only
  it gets right, and only the champion): both were scored on the same examples, so
  only those where they disagree tell them apart. McNemar's mid-p test at tolerance
  0, the score test of Nam and Tango above (``stats.paired_worse_by_more_than``).
  Counts that do not give the reported values fail the check (``InconsistentPairs``).
- ``twoProportion``, with sample counts only: a two-proportion z-test, which treats
  the two as independent samples. On the same held-out data they are positively
  correlated, so it is conservative — and weak: a 5-point regression on one slice
  of 300 examples (of three) is caught in 8 to 27 % of trials, where the paired test
  catches 96 % when the two models disagree on few other examples
  (tests/unit/validation/test_gate_statistics.py).
- ``none``: without counts, or for values that are not proportions, a regression
  beyond the tolerance rejects as it is.

Default: a Model with no gates gets one per metric, "no slice worse than the
champion beyond noise" (tolerance 0), on every metric and slice the result reports
for both; the checks say which gate they come from (``default`` or ``gates[i]``).

Repair: a candidate trained for a breach must do better than the champion on each
metric and slice that breached (its lineage's ``trigger.failing``; gate ``repair``):
not worse elsewhere is not enough where the training was meant to help — such a
candidate would become the new level of a ``maxDrop`` objective and the breach would
never be seen again. "Better" is strict, not noise-tested: a real repair of a broken
slice is large, and a small one still moves the slice the right way.

Every check carries a reason code (``GateReason``) and its numbers; ``describe``
renders the words.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from ..api.base import MetricSlice
from ..api.model import Gate, Metric, ModelSpec, NotWorseThan
from ..api.modelversion import OfflineMetric, OfflineMetrics, PairedCounts
from ..api.reasons import GateReason
from ..api.vocabulary import LABEL_ROLE, NoiseTest
from ..stats import holm, paired_worse_by_more_than, worse_by, worse_by_more_than

DEFAULT_GATE = "default"
REPAIR_GATE = "repair"  # the breach the training was started for


@dataclass(frozen=True)
class Check:
    """One gate on one slice."""

    gate: str  # "default", or "gates[i]" for spec.validation.gates[i]
    metric: str
    slice: str
    candidate: float | None
    champion: float | None
    passed: bool
    code: GateReason
    limit: float | None = None  # the bound, or the tolerated regression
    limit_text: str = ""  # how the limit was given: "0.01", "2% of champion", ...
    candidate_samples: int | None = None
    champion_samples: int | None = None
    pairs: PairedCounts | None = None  # where the two disagree on the same examples
    test: NoiseTest | None = None  # how a comparison with the champion was judged
    p_value: float | None = None
    level: float | None = None  # the Holm level the p-value was held to
    regression: float | None = None  # how much worse than the champion (negative: better)

    @property
    def reason(self) -> str:
        return describe(self)

    def to_status(self) -> dict[str, Any]:
        """The check as one entry of ``ModelVersion.status.gates``."""
        entry: dict[str, Any] = {
            "gate": self.gate,
            "metric": self.metric,
            "slice": self.slice,
            "candidate": self.candidate,
            "champion": self.champion,
            "candidateSamples": self.candidate_samples,
            "championSamples": self.champion_samples,
            "pairs": self.pairs.to_wire() if self.pairs else None,
            "limit": self.limit,
            "regression": self.regression,
            "test": self.test.value if self.test else None,
            "pValue": self.p_value,
            "level": self.level,
            "passed": self.passed,
            "code": self.code.value,
            "reason": self.reason[:512],
        }
        return {k: v for k, v in entry.items() if v is not None}


@dataclass(frozen=True)
class GateResult:
    checks: tuple[Check, ...]
    policy: Literal["spec", "default"]

    @property
    def validated(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.passed)

    def summary(self) -> str:
        """One sentence for the Event and the phase message, naming the failing slices."""
        if self.validated:
            gates = "default gate (no slice worse beyond noise)" if self.policy == "default" else ""
            return f"all {len(self.checks)} gate checks pass" + (
                f" of the {gates}" if gates else ""
            )
        shown = "; ".join(f"{c.metric} on slice {c.slice}: {c.reason}" for c in self.failed[:5])
        more = len(self.failed) - 5
        return shown + (f"; and {more} more" if more > 0 else "")


def awaiting_judgement(versions: list[dict[str, Any]], stable: str | None) -> list[dict[str, Any]]:
    """The ModelVersions the gates must judge now: new ones (no phase, or Pending) of a Model
    that serves. The bootstrap version is no candidate — there is no champion — and a
    version that serves or rolls out (a role label) was judged or chosen already."""
    if not stable:
        return []
    return [
        v
        for v in versions
        if v["metadata"]["name"] != stable
        and not (v["metadata"].get("labels") or {}).get(LABEL_ROLE)
        and (v.get("status") or {}).get("phase") in (None, "Pending")
    ]


def _index(metrics: list[OfflineMetric]) -> dict[tuple[str, str], OfflineMetric]:
    return {(m.metric, m.slice): m for m in metrics}


def default_gates(spec: ModelSpec) -> list[Gate]:
    """No slice worse than the champion beyond noise, for every metric."""
    return [
        Gate(metric=m.name, slices=m.slices, not_worse_than=NotWorseThan()) for m in spec.metrics
    ]


def validate(
    spec: ModelSpec, metrics: OfflineMetrics, failing: Sequence[MetricSlice] = ()
) -> GateResult:
    """``failing``: the metrics and slices whose breach started the training (its
    lineage); the candidate must do better than the champion on each — one not worse
    but no better would replace the champion and leave the breach as it was."""
    candidate, champion = _index(metrics.candidate), _index(metrics.champion)
    by_name: dict[str, Metric] = {m.name: m for m in spec.metrics}
    policy: Literal["spec", "default"] = "spec" if spec.validation.gates else "default"
    named = (
        [(f"gates[{i}]", g) for i, g in enumerate(spec.validation.gates)]
        if policy == "spec"
        else [(DEFAULT_GATE, g) for g in default_gates(spec)]
    )
    checks: list[Check] = []
    for name, gate in named:
        metric = by_name.get(gate.metric)
        for slice_ in gate.slices or spec.slice_names():
            key = (gate.metric, slice_)
            if policy == "default" and (key not in candidate or key not in champion):
                continue  # the default gate compares what the result reports for both
            checks.append(
                _check(
                    name,
                    gate,
                    slice_,
                    candidate.get(key),
                    champion.get(key),
                    metric.higher_is_better if metric else True,
                    spec.validation.require_all_slices,
                )
            )
    for repair in failing:
        metric = by_name.get(repair.metric)
        if metric is not None:
            key = (repair.metric, repair.slice)
            checks.append(
                _repair(repair, candidate.get(key), champion.get(key), metric.higher_is_better)
            )
    if policy == "default" and not checks and spec.metrics:
        checks.append(
            Check(DEFAULT_GATE, "*", "*", None, None, False, GateReason.NO_CHAMPION_VALUE)
        )
    return GateResult(_noise_tested(checks, 1.0 - spec.validation.confidence), policy)


def _value(m: OfflineMetric | None) -> float | None:
    return None if m is None or math.isnan(m.value) else m.value


def _check(
    name: str,
    gate: Gate,
    slice_: str,
    candidate: OfflineMetric | None,
    champion: OfflineMetric | None,
    higher_is_better: bool,
    required: bool,
) -> Check:
    value, reference = _value(candidate), _value(champion)
    base = Check(
        name,
        gate.metric,
        slice_,
        value,
        reference,
        True,
        GateReason.WITHIN_BOUNDS,
        candidate_samples=candidate.samples if candidate else None,
        champion_samples=champion.samples if champion else None,
        pairs=candidate.pairs if candidate else None,
    )
    if value is None:
        return replace(base, passed=not required, code=GateReason.NO_CANDIDATE_VALUE)
    if gate.min is not None and value < gate.min:
        return replace(base, passed=False, code=GateReason.BELOW_MIN, limit=gate.min)
    if gate.max is not None and value > gate.max:
        return replace(base, passed=False, code=GateReason.ABOVE_MAX, limit=gate.max)
    if gate.not_worse_than is None:
        return base
    if reference is None:
        return replace(base, passed=not required, code=GateReason.NO_CHAMPION_VALUE)
    regression = worse_by(value, reference, higher_is_better)
    limit, limit_text = _tolerance(gate.not_worse_than, reference)
    beyond = regression > limit + 1e-12
    values = (value, reference)
    compared = replace(
        base,
        passed=not beyond,
        code=GateReason.BEYOND_TOLERANCE if beyond else GateReason.WITHIN_TOLERANCE,
        limit=limit,
        limit_text=limit_text,
        regression=regression,
        test=_noise_test(values, base),
    )
    if compared.test is NoiseTest.PAIRED:
        if not _pairs_agree(values, base):
            return replace(compared, passed=False, code=GateReason.INCONSISTENT_PAIRS)
        return replace(compared, p_value=_paired_p_value(compared, higher_is_better))
    if compared.test is NoiseTest.TWO_PROPORTION:
        return replace(
            compared,
            p_value=worse_by_more_than(
                reference,
                float(base.champion_samples or 0),
                value,
                float(base.candidate_samples or 0),
                regression,
                limit,
            ),
        )
    return compared


def _repair(
    repair: MetricSlice,
    candidate: OfflineMetric | None,
    champion: OfflineMetric | None,
    higher_is_better: bool,
) -> Check:
    value, reference = _value(candidate), _value(champion)
    base = Check(
        REPAIR_GATE,
        repair.metric,
        repair.slice,
        value,
        reference,
        False,
        GateReason.NOT_REPAIRED,
        candidate_samples=candidate.samples if candidate else None,
        champion_samples=champion.samples if champion else None,
    )
    if value is None:
        return replace(base, code=GateReason.NO_CANDIDATE_VALUE)
    if reference is None:
        return replace(base, code=GateReason.NO_CHAMPION_VALUE)
    regression = worse_by(value, reference, higher_is_better)
    repaired = regression < 0
    return replace(
        base,
        passed=repaired,
        code=GateReason.REPAIRED if repaired else GateReason.NOT_REPAIRED,
        regression=regression,
    )


def _proportions(values: tuple[float, float]) -> bool:
    return all(0.0 <= v <= 1.0 for v in values)


def _noise_test(values: tuple[float, float], check: Check) -> NoiseTest:
    """Paired counts make a paired test (of any values: counts that do not fit fail);
    proportions with both sample counts, a two-proportion test; anything else, none."""
    if check.pairs is not None:
        return NoiseTest.PAIRED
    if _proportions(values) and check.candidate_samples and check.champion_samples:
        return NoiseTest.TWO_PROPORTION
    return NoiseTest.NONE


def _pairs_agree(values: tuple[float, float], check: Check) -> bool:
    """Paired counts describe proportions over the same examples: the same sample count
    on both rows (or none on the champion's), and a difference of the values that is
    (candidateOnly - championOnly) / samples up to one example (rounding)."""
    n, pairs = check.candidate_samples, check.pairs
    if pairs is None or not n or check.champion_samples not in (None, n):
        return False
    if not _proportions(values):
        return False
    counted = (pairs.candidate_only - pairs.champion_only) / n
    return abs((values[0] - values[1]) - counted) <= 1.0 / n + 1e-12


def _paired_p_value(check: Check, higher_is_better: bool) -> float:
    assert check.pairs is not None
    assert check.candidate_samples is not None
    assert check.limit is not None
    gained, lost = check.pairs.candidate_only, check.pairs.champion_only
    worse, better = (lost, gained) if higher_is_better else (gained, lost)
    return paired_worse_by_more_than(worse, better, check.candidate_samples, check.limit)


def _tolerance(tolerance: NotWorseThan, champion: float) -> tuple[float, str]:
    """The smallest of the tolerances given (each must hold), 0 when none is."""
    limits = []
    if tolerance.absolute is not None:
        limits.append((tolerance.absolute, f"{tolerance.absolute:g}"))
    if tolerance.relative is not None:
        limits.append((tolerance.relative * abs(champion), f"{tolerance.relative:.0%} of champion"))
    return min(limits, default=(0.0, "0 (no regression tolerated)"))


def _noise_tested(checks: list[Check], alpha: float) -> tuple[Check, ...]:
    """Regressions beyond the tolerance that were tested reject only when significant,
    Holm-corrected across this candidate's tests. Every comparison tested is counted,
    including those within tolerance."""
    tested = [i for i, c in enumerate(checks) if c.p_value is not None]
    p_values = [checks[i].p_value or 0.0 for i in tested]
    result = list(checks)
    for i, (rejected, level) in zip(tested, holm(p_values, alpha), strict=True):
        c = checks[i]
        if c.code == GateReason.BEYOND_TOLERANCE:
            code = GateReason.SIGNIFICANT if rejected else GateReason.NOT_SIGNIFICANT
            result[i] = replace(c, passed=not rejected, code=code, level=level)
        else:
            result[i] = replace(c, level=level)
    return tuple(result)


def describe(check: Check) -> str:
    """The words for one check, from its reason code and numbers."""
    code, value, champion = check.code, check.candidate, check.champion
    if code == GateReason.NO_CANDIDATE_VALUE:
        return "the result has no candidate value"
    if code == GateReason.NO_CHAMPION_VALUE:
        if check.metric == "*":
            return (
                "the result reports no metric for both the candidate and the champion: the "
                "default gate cannot compare them"
            )
        return "the result has no champion value on the same held-out data"
    assert value is not None
    if code == GateReason.BELOW_MIN:
        return f"{value:.4g} < min {check.limit:g}"
    if code == GateReason.ABOVE_MAX:
        return f"{value:.4g} > max {check.limit:g}"
    if code == GateReason.WITHIN_BOUNDS:
        return f"{value:.4g} within bounds"
    assert champion is not None
    text = f"{value:.4g} vs champion {champion:.4g}"
    if code in (GateReason.REPAIRED, GateReason.NOT_REPAIRED):
        done = "better" if code == GateReason.REPAIRED else "no better"
        return text + f": {done} where the breach that started the training was"
    if code == GateReason.INCONSISTENT_PAIRS:
        return text + f": {_counts(check)} do not give these values"
    if code in (GateReason.BEYOND_TOLERANCE, GateReason.SIGNIFICANT, GateReason.NOT_SIGNIFICANT):
        text += f": worse by {check.regression:.4g} > {check.limit_text}"
    if check.p_value is not None:
        verdict = {
            GateReason.SIGNIFICANT: "significant",
            GateReason.NOT_SIGNIFICANT: "within noise",
        }.get(code, "")
        text += f" ({_counts(check)}; p = {check.p_value:.3g}, Holm level {check.level:.3g}"
        text += f"; {verdict})" if verdict else ")"
    return text


def _counts(check: Check) -> str:
    """The examples a test was given, named by the test."""
    if check.pairs is not None:
        return (
            f"paired: {check.pairs.candidate_only} examples only the candidate counts, "
            f"{check.pairs.champion_only} only the champion, of {check.candidate_samples}"
        )
    return f"two-proportion: {check.candidate_samples} vs {check.champion_samples} examples"
