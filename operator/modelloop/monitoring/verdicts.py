"""From one observation to a verdict: the objective, the minimum-sample rule and
the breach rule. Pure: the caller keeps each series' ``BreachState`` between cycles.

Reasons never carry live numbers (the value and sample count travel beside them),
so a reason changes only when the cause does.

Honest uncertainty: a failed query, no series, NaN or Inf, or too few samples is
``inconclusive`` — never ``breach`` — and it interrupts a failing streak, so a
breach always rests on consecutive conclusive evidence.
"""

import math
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from ..api.durations import parse_duration
from ..api.model import BreachRule, Objective

VerdictName = Literal["pass", "breach", "inconclusive"]
Outcome = Literal["ok", "failing", "inconclusive"]


@dataclass(frozen=True)
class Observation:
    """One evaluation of one metric on one slice for one version."""

    value: float | None
    samples: float | None
    error: str | None = None  # why no value: the query failed, no series, ...


@dataclass(frozen=True)
class Judgement:
    outcome: Outcome
    reason: str | None = None


def judge(observation: Observation, objective: Objective | None, min_samples: int) -> Judgement:
    """Is this single observation within the objective, outside it, or unknowable?"""
    if observation.error is not None:
        return Judgement("inconclusive", observation.error)
    value = observation.value
    if value is None or math.isnan(value) or math.isinf(value):
        return Judgement("inconclusive", f"the query returned {value}")  # NaN, Inf: stable text
    if min_samples > 0:
        samples = observation.samples
        if samples is None or math.isnan(samples):
            return Judgement("inconclusive", "the sample-count query returned no value")
        if samples < min_samples:
            return Judgement("inconclusive", f"fewer samples than minSamples {min_samples}")
    if objective is None:
        return Judgement("ok")
    if objective.min is not None and value < objective.min:
        return Judgement("failing", f"below min {objective.min:g}")
    if objective.max is not None and value > objective.max:
        return Judgement("failing", f"above max {objective.max:g}")
    return Judgement("ok")


@dataclass(frozen=True)
class BreachState:
    """What the breach rule remembers about one series between evaluations."""

    failing_since: datetime | None = None
    recent: tuple[bool, ...] = ()  # conclusive outcomes, newest last: True = failing


def advance(
    state: BreachState, outcome: Outcome, rule: BreachRule | None, now: datetime
) -> tuple[VerdictName, BreachState]:
    """Fold one outcome into the breach rule; return the verdict and the new state."""
    if outcome == "inconclusive":
        return "inconclusive", replace(state, failing_since=None)
    failing = outcome == "failing"
    keep = rule.of_last.evaluations if rule and rule.of_last else 1
    state = BreachState(
        failing_since=(state.failing_since or now) if failing else None,
        recent=(*state.recent, failing)[-keep:],
    )
    if not failing:
        return "pass", state
    if rule is None or (rule.for_ is None and rule.of_last is None):
        return "breach", state
    if rule.of_last is not None:
        held = sum(state.recent) >= rule.of_last.failures
    else:
        assert rule.for_ is not None
        assert state.failing_since is not None
        held = now - state.failing_since >= parse_duration(rule.for_)
    return ("breach" if held else "pass"), state
