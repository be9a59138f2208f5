"""The offline validation gate: is a candidate truly better, overall and per slice?

Pure. Each gate of ``spec.validation`` is checked on every slice it names, in the
spirit of TFMA's value and change thresholds: absolute bounds on the candidate's
value, and a tolerated regression against the champion measured on the same
held-out data (the trainer reports both). Which direction is a regression comes
from the metric's ``higherIsBetter``. A missing value fails its check unless
``requireAllSlices`` is off — a gate that cannot be checked proves nothing.
"""

import math
from dataclasses import dataclass

from ..api.model import Gate, ModelSpec
from ..api.modelversion import OfflineMetric, OfflineMetrics


@dataclass(frozen=True)
class Check:
    """One gate on one slice."""

    metric: str
    slice: str
    candidate: float | None
    champion: float | None
    passed: bool
    reason: str


@dataclass(frozen=True)
class GateResult:
    checks: tuple[Check, ...]

    @property
    def validated(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.passed)

    def summary(self) -> str:
        """One sentence for the Event and the phase message, naming the failing slices."""
        if self.validated:
            return f"all {len(self.checks)} gate checks pass"
        shown = "; ".join(f"{c.metric} on slice {c.slice}: {c.reason}" for c in self.failed[:5])
        more = len(self.failed) - 5
        return shown + (f"; and {more} more" if more > 0 else "")


def _index(metrics: list[OfflineMetric]) -> dict[tuple[str, str], float]:
    return {(m.metric, m.slice): m.value for m in metrics}


def validate(spec: ModelSpec, metrics: OfflineMetrics) -> GateResult:
    candidate, champion = _index(metrics.candidate), _index(metrics.champion)
    higher_is_better = {m.name: m.higher_is_better for m in spec.metrics}
    checks = []
    for gate in spec.validation.gates:
        for slice_ in gate.slices or spec.slice_names():
            checks.append(
                _check(
                    gate,
                    slice_,
                    candidate.get((gate.metric, slice_)),
                    champion.get((gate.metric, slice_)),
                    higher_is_better.get(gate.metric, True),
                    spec.validation.require_all_slices,
                )
            )
    return GateResult(tuple(checks))


def _check(
    gate: Gate,
    slice_: str,
    value: float | None,
    champion: float | None,
    higher_is_better: bool,
    required: bool,
) -> Check:
    def result(passed: bool, reason: str) -> Check:
        return Check(gate.metric, slice_, value, champion, passed, reason)

    if value is None or math.isnan(value):
        return result(not required, "the result has no candidate value")
    if gate.min is not None and value < gate.min:
        return result(False, f"{value:.4g} < min {gate.min:g}")
    if gate.max is not None and value > gate.max:
        return result(False, f"{value:.4g} > max {gate.max:g}")
    if gate.not_worse_than is None:
        return result(True, f"{value:.4g} within bounds")
    if champion is None or math.isnan(champion):
        return result(not required, "the result has no champion value on the same held-out data")
    regression = (champion - value) if higher_is_better else (value - champion)
    limits = []
    tolerance = gate.not_worse_than
    if tolerance.absolute is not None:
        limits.append((tolerance.absolute, f"{tolerance.absolute:g}"))
    if tolerance.relative is not None:
        limits.append((tolerance.relative * abs(champion), f"{tolerance.relative:.0%} of champion"))
    if not limits:
        limits.append((0.0, "0 (no regression tolerated)"))
    for limit, described in limits:
        if regression > limit + 1e-12:
            return result(
                False,
                f"{value:.4g} vs champion {champion:.4g}: worse by {regression:.4g} > {described}",
            )
    return result(True, f"{value:.4g} vs champion {champion:.4g}")
