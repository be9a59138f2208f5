"""From one observation to a verdict: the objective, the minimum-sample rule and
the breach rule. Pure: the caller keeps each series' ``BreachState`` between cycles, and
each verdict entry in status keeps it across a restart or a failover.

Reasons never carry live numbers (the value and sample count travel beside them),
so a reason changes only when the cause does.

A ``maxDrop`` objective compares the value with the level the version was validated
at on the slice (its offline value), with hysteresis: a series that failed it passes
again only within half the drop, so a value hovering at the line does not flap.

Honest uncertainty: a failed query, no series, NaN or Inf, or too few samples is
``inconclusive`` — never ``breach`` — and it interrupts a failing streak, so a
breach always rests on consecutive conclusive evidence. A value that is not a
number is "no data" and never reaches status (the API server refuses NaN).

Late labels: a metric whose ``labels.minCoverage`` is not met (or whose coverage is
unknown) is ``waiting``, whatever its value: labels that are still arriving are a
biased sample (the quick ones). Waiting is no evidence either way and leaves the
breach rule's memory as it was: it neither extends nor interrupts a streak.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from ..api.model import BreachRule, Labels, Objective
from ..api.vocabulary import VerdictName
from ..conditions import stamp
from ..stats import worse_by

Outcome = Literal["ok", "failing", "inconclusive", "waiting"]


@dataclass(frozen=True)
class Observation:
    """One evaluation of one metric on one slice for one version."""

    value: float | None
    samples: float | None
    error: str | None = None  # why no value: the query failed, no series, ...
    coverage: float | None = None  # the share of predictions labelled, when asked


@dataclass(frozen=True)
class Judgement:
    outcome: Outcome
    reason: str | None = None


@dataclass(frozen=True)
class Level:
    """The level a version was validated at on a slice, for a ``maxDrop`` objective."""

    validated: float
    higher_is_better: bool = True
    was_failing: bool = False  # the last conclusive outcome: hysteresis


def judge(
    observation: Observation,
    objective: Objective | None,
    min_samples: int,
    level: Level | None = None,
    labels: Labels | None = None,
) -> Judgement:
    """Is this single observation within the objective, outside it, unknowable, or
    waiting for its labels?"""
    immature = label_wait(observation.coverage, labels)
    if immature is not None:
        return Judgement("waiting", immature)
    if observation.error is not None:
        return Judgement("inconclusive", observation.error)
    value = observation.value
    if value is None or not math.isfinite(value):
        return Judgement("inconclusive", no_data("query", value))
    if min_samples > 0:
        samples = observation.samples
        if samples is None or not math.isfinite(samples):
            return Judgement("inconclusive", no_data("sample-count query", samples))
        if samples < min_samples:
            return Judgement("inconclusive", f"fewer samples than minSamples {min_samples}")
    if objective is None:
        return Judgement("ok")
    if objective.min is not None and value < objective.min:
        return Judgement("failing", f"below min {objective.min:g}")
    if objective.max is not None and value > objective.max:
        return Judgement("failing", f"above max {objective.max:g}")
    if objective.max_drop is not None and level is not None:
        return _judge_drop(value, objective.max_drop, level)
    return Judgement("ok")


def label_wait(coverage: float | None, labels: Labels | None) -> str | None:
    """Why a value must wait for its labels, or None when they are mature enough.
    Stable text: the coverage itself travels beside the reason."""
    if labels is None or labels.min_coverage <= 0:
        return None
    if coverage is None or not math.isfinite(coverage):
        return "waiting for labels: the coverage query returned no value"
    if coverage < labels.min_coverage:
        return f"waiting for labels: coverage below minCoverage {labels.min_coverage:.0%}"
    return None


def label_share(coverage: float | None) -> str:
    """A label coverage in words: "42% complete". A coverage query divides the labels that
    arrived in the window by the predictions made ``delay`` earlier, so labels of older
    predictions, or traffic that grew, can take it above one: that is said as complete,
    not as "148% complete"."""
    if coverage is None or not math.isfinite(coverage):
        return "unknown"
    if coverage > 1:
        return f"complete ({coverage:.0%} of the window's predictions)"
    return f"{coverage:.0%} complete"


def _judge_drop(value: float, max_drop: float, level: Level) -> Judgement:
    drop = worse_by(value, level.validated, level.higher_is_better)
    drop -= 1e-12  # 0.88 - 0.85 is 0.030000000000000027: a drop of exactly maxDrop passes
    if drop > max_drop:
        return Judgement(
            "failing", f"more than maxDrop {max_drop:g} below its validated {level.validated:.4g}"
        )
    if level.was_failing and drop > max_drop / 2:
        return Judgement(
            "failing",
            f"not back within maxDrop/2 ({max_drop / 2:g}) of its validated {level.validated:.4g}",
        )
    return Judgement("ok")


def no_data(query: str, value: float | None) -> str:
    """Why a value that is not a number is no evidence: a slice without traffic divides
    0 by 0. Stable text: the same cause gives the same reason every cycle."""
    if value is None:
        return f"no data: the {query} returned no value"
    if math.isnan(value):
        return f"no data: the {query} returned NaN (no traffic on this slice?)"
    return f"no data: the {query} returned {value:+} (a division by zero?)"


@dataclass(frozen=True)
class BreachState:
    """What the breach rule remembers about one series between evaluations: only what its
    rule reads, so a verdict entry in status can carry it across a restart or a failover
    (``remembered`` and ``recalled``)."""

    failing_since: datetime | None = None  # a 'for' rule: when the failing streak began
    # An 'ofLast' rule: the last conclusive outcomes, newest last; True = failing.
    recent: tuple[bool, ...] = ()

    @property
    def failing(self) -> bool:
        """The last conclusive outcome failed, as far as the state remembers it."""
        return self.recent[-1] if self.recent else self.failing_since is not None


def advance(
    state: BreachState,
    outcome: Outcome,
    rule: BreachRule | None,
    now: datetime,
    remember_last: bool = False,
) -> tuple[VerdictName, BreachState]:
    """Fold one outcome into the breach rule; return the verdict and the new state.

    ``remember_last``: keep at least the last conclusive outcome (``recent``), for an
    objective with hysteresis."""
    lasting = rule.for_.delta if rule is not None and rule.for_ is not None else None
    of_last = rule.of_last if rule is not None else None
    kept = of_last.evaluations if of_last is not None else (1 if remember_last else 0)
    recent = state.recent[-kept:] if kept else ()
    if outcome == "waiting":
        return VerdictName.WAITING, state
    if outcome == "inconclusive":
        return VerdictName.INCONCLUSIVE, BreachState(None, recent)
    failing = outcome == "failing"
    since = None
    if failing and lasting is not None:
        # Whole seconds: the state in memory is the one its verdict entry gives back.
        since = state.failing_since or now.replace(microsecond=0)
    if kept:
        recent = (*recent, failing)[-kept:]
    state = BreachState(since, recent)
    if not failing:
        return VerdictName.PASS, state
    if of_last is not None:
        held = sum(recent) >= of_last.failures
    elif lasting is not None and since is not None:
        held = now - since >= lasting
    else:
        held = True
    return (VerdictName.BREACH if held else VerdictName.PASS), state


FAILING, OK = "x", "."
REMEMBERED = ("failingSince", "recent")  # the fields of a verdict entry that hold a BreachState


def remembered(state: BreachState) -> dict[str, str]:
    """The fields of a verdict entry that keep ``state``: ``failingSince`` while a 'for'
    rule's streak lasts, ``recent`` (e.g. ``"..x.x"``) for an 'ofLast' rule. Both stay the
    same between evaluations that change nothing, so they cost no status write."""
    fields = {}
    if state.failing_since is not None:
        fields["failingSince"] = stamp(state.failing_since)
    if state.recent:
        fields["recent"] = "".join(FAILING if failing else OK for failing in state.recent)
    return fields


def recalled(entry: Mapping[str, Any]) -> BreachState:
    """The state a verdict entry keeps; what does not parse is forgotten (a fresh streak)."""
    since = None
    raw = entry.get("failingSince")
    if isinstance(raw, str):
        try:
            since = datetime.fromisoformat(raw)
        except ValueError:
            since = None
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
    recent = entry.get("recent")
    outcomes: tuple[bool, ...] = ()
    if isinstance(recent, str) and set(recent) <= {FAILING, OK}:
        outcomes = tuple(c == FAILING for c in recent)
    return BreachState(since, outcomes)
