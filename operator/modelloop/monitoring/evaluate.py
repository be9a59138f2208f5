"""One Model's readings become verdicts. Pure: breach states go in and come out."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter

from ..api.model import BreachRule, ModelSpec
from ..api.vocabulary import VerdictName
from .drift import drift_verdict
from .plan import SeriesKey
from .readings import Readings
from .verdicts import BreachState, Level, advance, judge


@dataclass(frozen=True)
class Evaluated:
    """The live verdict of one series, with the numbers behind it."""

    series: SeriesKey
    verdict: VerdictName
    value: float | None
    samples: float | None
    reason: str | None = None
    unavailable: bool = False  # inconclusive because the data could not be read at all
    coverage: float | None = None  # the share of its predictions labelled, when asked
    # What the breach rule remembers after this evaluation (status keeps it).
    state: BreachState = field(default_factory=BreachState)


def evaluate_model(
    spec: ModelSpec,
    readings: Readings,
    states: Mapping[SeriesKey, BreachState],
    now: datetime,
    validated: Mapping[tuple[str, str, str], float] | None = None,
) -> tuple[list[Evaluated], dict[SeriesKey, BreachState]]:
    """``validated``: (metric, slice, version) -> the version's offline value, for
    ``maxDrop`` objectives."""
    metrics = {m.name: m for m in spec.metrics}
    drifts = {d.name: d for d in spec.drift}
    evaluated: list[Evaluated] = []
    new_states: dict[SeriesKey, BreachState] = {}
    for key, observation in sorted(readings.metrics.items(), key=_series):
        metric = metrics.get(key.name)
        if metric is None:
            continue
        state = states.get(key, BreachState())
        drops = metric.objective is not None and metric.objective.max_drop is not None
        reference = (validated or {}).get((key.name, key.slice, key.version)) if drops else None
        level = (
            Level(reference, metric.higher_is_better, state.failing)
            if reference is not None
            else None
        )
        judgement = judge(observation, metric.objective, metric.min_samples, level, metric.labels)
        verdict, new_states[key] = advance(state, judgement.outcome, metric.breach, now, drops)
        reason = judgement.reason
        if verdict == "pass" and judgement.outcome == "failing":
            reason = f"{reason}; {_pending(metric.breach)}"
        evaluated.append(
            Evaluated(
                key,
                verdict,
                observation.value,
                observation.samples,
                reason,
                unavailable=observation.error is not None and judgement.outcome != "waiting",
                coverage=observation.coverage,
                state=new_states[key],
            )
        )
    for key, reading in sorted(readings.drift.items(), key=_series):
        drift = drifts.get(key.name)
        if drift is None:
            continue
        if reading.error is not None:
            evaluated.append(
                Evaluated(key, VerdictName.INCONCLUSIVE, None, None, reading.error, True)
            )
            continue
        result = drift_verdict(
            drift.test, drift.threshold, drift.min_samples, reading.current, reading.reference
        )
        reason = result.reason
        if result.verdict is VerdictName.BREACH and result.statistic is not None:
            reason = f"{drift.test} above threshold {drift.threshold:g}"
        evaluated.append(Evaluated(key, result.verdict, result.statistic, result.samples, reason))
    return evaluated, new_states


def _pending(rule: BreachRule | None) -> str:
    """Why a failing value is not a breach yet (stable text: no live numbers)."""
    if rule is not None and rule.of_last is not None:
        return (
            f"a breach at {rule.of_last.failures} failing of the last "
            f"{rule.of_last.evaluations} evaluations"
        )
    return f"a breach once it lasts {rule.for_ if rule else ''}"


_series = itemgetter(0)  # an item's SeriesKey: a tuple, ordered by kind, name, slice, version
