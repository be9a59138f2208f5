"""``status_inputs``: two evaluations with the same inputs make the same status from the
status the first made — the ground on which the evaluator skips the comparison when a
Model's status and its evaluation's inputs are what they were last cycle."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from modelloop.api.vocabulary import VerdictName
from modelloop.monitoring.evaluate import Evaluated
from modelloop.monitoring.plan import SeriesKey
from modelloop.monitoring.status import status_inputs, update_status
from modelloop.monitoring.verdicts import BreachState

T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
EU = SeriesKey("metric", "precision", "eu", "fd-v1")
US = SeriesKey("metric", "precision", "us", "fd-v1")
DRIFT = SeriesKey("drift", "score", "eu", "fd-v1")
SHIFT = SeriesKey("shift", "score", "eu", "fd-v2")
PASS, BREACH, INCONCLUSIVE = VerdictName.PASS, VerdictName.BREACH, VerdictName.INCONCLUSIVE

EVALUATIONS = {
    "all pass": [Evaluated(EU, PASS, 0.9, 500), Evaluated(US, PASS, 0.91, 400)],
    "a breach": [Evaluated(EU, BREACH, 0.6, 500), Evaluated(US, PASS, 0.91, 400)],
    "pending, its streak remembered": [
        Evaluated(EU, PASS, 0.7, 500, "below min 0.8; for 5m", state=BreachState(T0)),
        Evaluated(US, PASS, 0.91, 400),
    ],
    "of last, its outcomes remembered": [
        Evaluated(EU, PASS, 0.7, 500, state=BreachState(recent=(False, True, False)))
    ],
    "unreadable": [Evaluated(EU, INCONCLUSIVE, None, None, "query failed", unavailable=True)],
    "drift and a canary shift": [
        Evaluated(DRIFT, PASS, 0.05, 300),
        Evaluated(SHIFT, BREACH, 0.4, 300),
    ],
}


def other_numbers(evaluated: list[Evaluated]) -> list[Evaluated]:
    """The same verdicts a cycle later: every live number moved."""
    return [
        replace(e, value=None if e.value is None else e.value + 0.01, samples=(e.samples or 0) + 7)
        for e in evaluated
    ]


@pytest.mark.parametrize("evaluated", EVALUATIONS.values(), ids=EVALUATIONS.keys())
def test_the_same_inputs_on_the_status_they_made_make_it_again(
    evaluated: list[Evaluated],
) -> None:
    made = update_status([], [], evaluated, T0, 3)
    later = other_numbers(evaluated)
    assert status_inputs(later) == status_inputs(evaluated)
    again = update_status(made.verdicts, made.conditions, later, T0 + timedelta(minutes=5), 3)
    assert (again.verdicts, again.conditions, again.events) == (
        made.verdicts,
        made.conditions,
        [],
    )


BASE = Evaluated(EU, PASS, 0.9, 500)


@pytest.mark.parametrize(
    "changed",
    [
        replace(BASE, verdict=BREACH),
        replace(BASE, reason="below min 0.8; for 5m"),
        replace(BASE, state=BreachState(T0)),
        replace(BASE, state=BreachState(recent=(True,))),
        replace(BASE, unavailable=True),
        replace(BASE, series=US),
    ],
    ids=["verdict", "reason", "breach clock", "recent outcomes", "readability", "series"],
)
def test_what_the_status_shows_changes_the_inputs(changed: Evaluated) -> None:
    assert status_inputs([changed]) != status_inputs([BASE])


def test_a_canary_shift_is_no_input() -> None:
    """It is the rollout's evidence, never a verdict in status."""
    evaluated = EVALUATIONS["drift and a canary shift"]
    assert status_inputs(evaluated) == status_inputs(evaluated[:1])
