"""Single observations to verdicts: objectives, minimum samples, breach rules."""

import math
from datetime import UTC, datetime, timedelta

import pytest

from modelloop.api.model import BreachRule, Labels, Objective, OfLast
from modelloop.monitoring.verdicts import (
    BreachState,
    Level,
    Observation,
    Outcome,
    advance,
    judge,
    label_share,
    recalled,
    remembered,
)

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
            "no data: the sample-count query returned no value",
        ),
        # A slice without traffic divides 0 by 0: no data, never a value in status.
        (
            Observation(math.nan, 0),
            AT_LEAST_08,
            0,
            "inconclusive",
            "no data: the query returned NaN (no traffic on this slice?)",
        ),
        (
            Observation(0.9, math.nan),
            AT_LEAST_08,
            20,
            "inconclusive",
            "no data: the sample-count query returned NaN (no traffic on this slice?)",
        ),
        (
            Observation(math.inf, 500),
            AT_MOST_025,
            0,
            "inconclusive",
            "no data: the query returned +inf (a division by zero?)",
        ),
        (
            Observation(-math.inf, 500),
            AT_MOST_025,
            0,
            "inconclusive",
            "no data: the query returned -inf (a division by zero?)",
        ),
        (Observation(0.9, math.nan), AT_LEAST_08, 0, "ok", None),  # samples not asked for
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
        # Waiting for labels is no evidence: it neither extends nor interrupts a streak.
        (
            FOR_3M,
            ["failing", "waiting", "failing", "failing", "failing"],
            ["pass", "waiting", "pass", "breach", "breach"],
        ),
        (
            TWO_OF_THREE,
            ["failing", "waiting", "waiting", "failing"],
            ["pass", "waiting", "waiting", "breach"],
        ),
    ],
)
def test_breach_rules(
    rule: BreachRule | None, outcomes: list[Outcome], verdicts: list[str]
) -> None:
    assert run(rule, outcomes, MINUTE) == verdicts


def test_a_breach_shorter_than_for_does_not_count() -> None:
    assert run(FOR_3M, ["failing", "failing", "failing", "ok"], MINUTE) == ["pass"] * 4


@pytest.mark.parametrize(
    ("rule", "outcomes", "state"),
    [
        # Each rule remembers only what it reads: status carries no more than that.
        (None, ["failing", "failing"], BreachState()),
        (FOR_3M, ["ok", "failing", "failing"], BreachState(T0 + MINUTE)),
        (FOR_3M, ["failing", "inconclusive"], BreachState()),
        (FOR_3M, ["failing", "ok"], BreachState()),
        (TWO_OF_THREE, ["failing", "ok"], BreachState(None, (True, False))),
        (TWO_OF_THREE, ["failing", "ok", "ok", "failing"], BreachState(None, (False, False, True))),
        (TWO_OF_THREE, ["failing", "inconclusive"], BreachState(None, (True,))),
    ],
)
def test_the_state_holds_what_the_rule_reads(
    rule: BreachRule | None, outcomes: list[Outcome], state: BreachState
) -> None:
    current = BreachState()
    for i, outcome in enumerate(outcomes):
        _, current = advance(current, outcome, rule, T0 + i * MINUTE)
    assert current == state


def test_a_streak_starts_on_a_whole_second() -> None:
    _, state = advance(BreachState(), "failing", FOR_3M, T0 + timedelta(microseconds=700_000))
    assert state.failing_since == T0


@pytest.mark.parametrize(
    ("state", "fields"),
    [
        (BreachState(), {}),
        (BreachState(T0), {"failingSince": "2026-11-25T12:00:00Z"}),
        (BreachState(None, (False, True, False, True)), {"recent": ".x.x"}),
        (BreachState(None, (False, False)), {"recent": ".."}),
    ],
)
def test_a_state_is_remembered_in_a_verdict_entry_and_recalled(
    state: BreachState, fields: dict[str, str]
) -> None:
    assert remembered(state) == fields
    assert recalled(fields | {"verdict": "pass"}) == state


@pytest.mark.parametrize(
    ("entry", "state"),
    [
        ({"failingSince": "2026-11-25T12:00:00"}, BreachState(T0)),  # no zone: UTC
        ({"failingSince": "2026-11-25T13:00:00+01:00"}, BreachState(T0)),
        ({"failingSince": "yesterday"}, BreachState()),
        ({"failingSince": 12}, BreachState()),
        ({"recent": "x?x"}, BreachState()),
        ({"recent": ""}, BreachState()),
    ],
)
def test_what_does_not_parse_is_a_fresh_streak(
    entry: dict[str, object], state: BreachState
) -> None:
    assert recalled(entry) == state


OUTCOMES: list[Outcome] = ["ok", "failing", "failing", "inconclusive", "failing", "ok", "failing"]
OUTCOMES += ["failing", "failing", "failing", "failing", "ok"]


@pytest.mark.parametrize("rule", [None, FOR_3M, TWO_OF_THREE])
@pytest.mark.parametrize("restart", range(len(OUTCOMES)))
def test_a_restart_resumes_where_the_state_was(rule: BreachRule | None, restart: int) -> None:
    """A restart between two evaluations, with nothing but the verdict entry kept, gives the
    verdicts an uninterrupted run gives (steps off the whole second, as real clocks are)."""
    step = timedelta(seconds=50, microseconds=250_000)
    uninterrupted = run(rule, OUTCOMES, step)
    state = BreachState()
    verdicts: list[str] = []
    for i, outcome in enumerate(OUTCOMES):
        if i == restart:
            state = recalled(remembered(state))
        verdict, state = advance(state, outcome, rule, T0 + i * step + timedelta(milliseconds=300))
        verdicts.append(verdict)
    assert verdicts == uninterrupted


@pytest.mark.parametrize(
    ("rule", "outcomes"),
    [
        (FOR_3M, ["failing", "failing", "failing"]),  # failingSince: once per streak
        (TWO_OF_THREE, ["ok", "ok", "ok", "ok", "ok"]),  # recent: full, then unchanged
        (TWO_OF_THREE, ["failing", "failing", "failing", "failing"]),
    ],
)
def test_steady_outcomes_keep_the_remembered_fields(
    rule: BreachRule, outcomes: list[Outcome]
) -> None:
    state = BreachState()
    seen = []
    for i, outcome in enumerate(outcomes):
        _, state = advance(state, outcome, rule, T0 + i * MINUTE)
        seen.append(remembered(state))
    assert seen[-1] == seen[-2]


DROP_3 = Objective(max_drop=0.03)


@pytest.mark.parametrize(
    ("value", "objective", "level", "outcome"),
    [
        # Against the level the version was validated at: a drop beyond maxDrop fails.
        (0.86, DROP_3, Level(0.88), "ok"),
        (0.85, DROP_3, Level(0.88), "ok"),  # exactly maxDrop
        (0.84, DROP_3, Level(0.88), "failing"),
        # Hysteresis: once failing, back within maxDrop/2 to pass again.
        (0.86, DROP_3, Level(0.88, was_failing=True), "failing"),
        (0.865, DROP_3, Level(0.88, was_failing=True), "ok"),
        # Lower is better (an error rate): a rise is the drop.
        (0.05, DROP_3, Level(0.01, higher_is_better=False), "failing"),
        (0.03, DROP_3, Level(0.01, higher_is_better=False), "ok"),
        # No validated level (a version made outside ModelLoop, no offline value): min only.
        (0.5, Objective(min=0.6, max_drop=0.03), None, "failing"),
        (0.7, Objective(min=0.6, max_drop=0.03), None, "ok"),
        (0.7, DROP_3, None, "ok"),
        # The absolute floor still holds beside the drop.
        (0.59, Objective(min=0.6, max_drop=0.5), Level(0.62), "failing"),
    ],
)
def test_judge_a_drop_below_the_validated_level(
    value: float, objective: Objective, level: Level | None, outcome: Outcome
) -> None:
    assert judge(Observation(value, 500), objective, 0, level).outcome == outcome


def test_a_drop_reason_names_the_validated_level_and_is_stable() -> None:
    first = judge(Observation(0.80, 500), DROP_3, 0, Level(0.88))
    second = judge(Observation(0.70, 500), DROP_3, 0, Level(0.88))
    assert first.reason == second.reason == "more than maxDrop 0.03 below its validated 0.88"


@pytest.mark.parametrize("rule", [None, FOR_3M, TWO_OF_THREE])
def test_hysteresis_remembers_the_last_outcome_across_a_restart(rule: BreachRule | None) -> None:
    state = BreachState()
    for minute in range(4):
        _, state = advance(state, "failing", rule, T0 + timedelta(minutes=minute), True)
    assert state.failing
    _, resumed = advance(
        recalled(remembered(state)), "inconclusive", rule, T0 + timedelta(minutes=5), True
    )
    assert resumed.failing or rule == FOR_3M  # an inconclusive ends a 'for' streak
    assert recalled(remembered(state)).failing


LATE = Labels.model_validate({"delay": "1h", "minCoverage": 0.8})


@pytest.mark.parametrize(
    ("observation", "labels", "outcome", "reason"),
    [
        # Immature labels wait whatever the value: the quick labels are a biased sample.
        (
            Observation(0.5, 500, coverage=0.42),
            LATE,
            "waiting",
            "waiting for labels: coverage below minCoverage 80%",
        ),
        (
            Observation(None, None, "the value query returned no series", None),
            LATE,
            "waiting",
            "waiting for labels: the coverage query returned no value",
        ),
        (Observation(0.5, 500, coverage=math.nan), LATE, "waiting", None),
        (Observation(0.5, 500, coverage=0.85), LATE, "failing", "below min 0.8"),
        # A delay alone, or no labels: judged as always.
        (Observation(0.5, 500), Labels.model_validate({"delay": "1h"}), "failing", None),
        (Observation(0.9, 500, coverage=0.1), None, "ok", None),
    ],
)
def test_judge_waits_for_labels(
    observation: Observation, labels: Labels | None, outcome: Outcome, reason: str | None
) -> None:
    judgement = judge(observation, AT_LEAST_08, 0, labels=labels)
    assert judgement.outcome == outcome
    if reason is not None:
        assert judgement.reason == reason


@pytest.mark.parametrize(
    ("coverage", "words"),
    [
        (0.42, "42% complete"),
        (1.0, "100% complete"),
        # Labels of predictions older than the window: complete, never "148% complete".
        (1.48, "complete (148% of the window's predictions)"),
        (None, "unknown"),
        (math.nan, "unknown"),
        (math.inf, "unknown"),
    ],
)
def test_a_label_coverage_in_words(coverage: float | None, words: str) -> None:
    assert label_share(coverage) == words
