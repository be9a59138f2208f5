"""Single observations to verdicts: objectives, minimum samples, breach rules."""

import math
from datetime import UTC, datetime, timedelta

import pytest

from modelloop.api.model import BreachRule, Objective, OfLast
from modelloop.monitoring.verdicts import BreachState, Observation, Outcome, advance, judge

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
AT_LEAST_08 = Objective(min=0.8)
AT_MOST_025 = Objective(max=0.25)


@pytest.mark.parametrize(
    ("observation", "objective", "min_samples", "outcome", "reason"),
    [
        (Observation(0.9, 500), AT_LEAST_08, 200, "ok", None),
        (Observation(0.8, 500), AT_LEAST_08, 200, "ok", None),
        (Observation(0.71, 500), AT_LEAST_08, 200, "failing", "below min 0.8"),
        (Observation(0.3, None), AT_MOST_025, 0, "failing", "above max 0.25"),
        (Observation(0.2, None), AT_MOST_025, 0, "ok", None),
        (Observation(0.1, None), None, 0, "ok", None),
        # Too few labelled samples: never a breach, however bad the value.
        (
            Observation(0.1, 150),
            AT_LEAST_08,
            200,
            "inconclusive",
            "fewer samples than minSamples 200",
        ),
        (
            Observation(0.1, None),
            AT_LEAST_08,
            200,
            "inconclusive",
            "the sample-count query returned no value",
        ),
        (Observation(math.nan, 500), AT_LEAST_08, 0, "inconclusive", "the query returned nan"),
        (Observation(math.inf, 500), AT_MOST_025, 0, "inconclusive", "the query returned inf"),
        (
            Observation(None, None, "Prometheus default unreachable"),
            AT_LEAST_08,
            0,
            "inconclusive",
            "Prometheus default unreachable",
        ),
    ],
)
def test_judge(
    observation: Observation,
    objective: Objective | None,
    min_samples: int,
    outcome: Outcome,
    reason: str | None,
) -> None:
    judgement = judge(observation, objective, min_samples)
    assert (judgement.outcome, judgement.reason) == (outcome, reason)


def run(rule: BreachRule | None, outcomes: list[Outcome], step: timedelta) -> list[str]:
    state = BreachState()
    verdicts: list[str] = []
    for i, outcome in enumerate(outcomes):
        verdict, state = advance(state, outcome, rule, T0 + i * step)
        verdicts.append(verdict)
    return verdicts


MINUTE = timedelta(minutes=1)
FOR_3M = BreachRule.model_validate({"for": "3m"})
TWO_OF_THREE = BreachRule(of_last=OfLast(failures=2, evaluations=3))


@pytest.mark.parametrize(
    ("rule", "outcomes", "verdicts"),
    [
        (None, ["ok", "failing", "ok"], ["pass", "breach", "pass"]),
        # 'for': the failing streak must last the whole duration.
        (FOR_3M, ["failing", "failing", "failing", "failing"], ["pass", "pass", "pass", "breach"]),
        (
            FOR_3M,
            ["failing", "failing", "ok", "failing", "failing"],
            ["pass", "pass", "pass", "pass", "pass"],
        ),
        # A gap in the data restarts the streak: no decision rests on missing data.
        (
            FOR_3M,
            ["failing", "failing", "inconclusive", "failing", "failing", "failing", "failing"],
            ["pass", "pass", "inconclusive", "pass", "pass", "pass", "breach"],
        ),
        # M of the last N conclusive evaluations.
        (TWO_OF_THREE, ["failing", "ok", "failing"], ["pass", "pass", "breach"]),
        (TWO_OF_THREE, ["failing", "ok", "ok", "failing"], ["pass", "pass", "pass", "pass"]),
        (TWO_OF_THREE, ["failing", "inconclusive", "failing"], ["pass", "inconclusive", "breach"]),
        (TWO_OF_THREE, ["inconclusive", "inconclusive"], ["inconclusive", "inconclusive"]),
    ],
)
def test_breach_rules(
    rule: BreachRule | None, outcomes: list[Outcome], verdicts: list[str]
) -> None:
    assert run(rule, outcomes, MINUTE) == verdicts


def test_a_breach_shorter_than_for_does_not_count() -> None:
    assert run(FOR_3M, ["failing", "failing", "failing", "ok"], MINUTE) == ["pass"] * 4
