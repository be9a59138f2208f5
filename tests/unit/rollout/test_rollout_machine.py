"""The canary state machine, case by case (pure): what one reconcile decides and writes."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from modelloop.api.model import CanaryStatus, LabelsPending, ModelSpec
from modelloop.api.vocabulary import VerdictName
from modelloop.monitoring.evaluate import Evaluated
from modelloop.monitoring.plan import SeriesKey
from modelloop.monitoring.snapshot import Snapshot
from modelloop.rollout.hooks import HookAnswer, HookOutcome
from modelloop.rollout.machine import (
    RolloutDecision,
    RolloutWorld,
    decide,
    due_hooks,
    steps_hash,
    traffic_write_failed,
)
from modelloop.serving.plan import VersionView

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
ACCURACY = {
    "name": "accuracy",
    "query": "q",
    "sampleQuery": "n",
    "minSamples": 100,
    "canary": {"test": "proportion"},
}


def spec(**overrides: Any) -> ModelSpec:
    return ModelSpec.model_validate(
        {
            "metricsProvider": "p",
            "serving": {"template": {"spec": {"containers": [{"name": "s"}]}}},
            "slices": [{"name": "web", "matchLabels": {"s": "web"}}],
            "metrics": [ACCURACY],
            "automation": "promote",
            "rollout": {
                "steps": [{"weight": 10, "duration": "1m"}, {"weight": 50}, {"weight": 100}],
                "analysis": {"interval": "30s", "maxInconclusive": 3, "stepTimeout": "20m"},
            },
            **overrides,
        }
    )


def version(name: str, phase: str | None, created: str = "") -> VersionView:
    return VersionView(name, f"s3://{name}", phase, None, None, created or name)


V1, V2 = version("m-v1", "Serving"), version("m-v2", "Validated")


def at_step(
    step: int, weight: int, started: timedelta = timedelta(minutes=6), **kw: Any
) -> CanaryStatus:
    return CanaryStatus(
        version="m-v2",
        step=step,
        weight=weight,
        started=NOW - started,
        step_started=NOW - started,
        **kw,
    )


def snapshot(canary: float, samples: float = 1000, age: timedelta = timedelta(0)) -> Snapshot:
    def point(version: str, value: float) -> Evaluated:
        return Evaluated(
            SeriesKey("metric", "accuracy", "web", version), VerdictName.PASS, value, samples
        )

    return Snapshot(NOW - age, (point("m-v1", 0.9), point("m-v2", canary)))


def world(canary: CanaryStatus | None = None, **kw: Any) -> RolloutWorld:
    base = RolloutWorld(
        name="m",
        spec=spec(),
        stable="m-v1",
        canary=canary,
        versions=[V1, replace(V2, phase="Canary") if canary else V2],
        canary_ready=True,
        observed_weight=canary.weight if canary else 0,
        snapshot=None,
        approval=None,
        abort=None,
        now=NOW,
    )
    return replace(base, **kw)


def reason(decision: RolloutDecision, type_: str = "Progressing") -> str:
    return str(next(c["reason"] for c in decision.conditions if c["type"] == type_))


# --------------------------------------------------------------------------- starting


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"versions": [V1]}, "NoCandidate"),
        ({"spec": spec(pinnedVersion="m-v1")}, "Pinned"),
        ({"spec": spec(paused=True)}, "Paused"),
        ({"spec": spec(automation="observe")}, "AutomationLevel"),
        ({"stable": None}, "NoStable"),
    ],
)
def test_no_rollout_starts(changes: dict[str, Any], expected: str) -> None:
    decision = decide(world(**changes))
    assert decision.canary is None
    assert decision.marks == []
    assert reason(decision) == expected


def test_the_newest_validated_version_starts_at_weight_zero() -> None:
    older = version("m-v0b", "Validated", created="2026-01-01")
    decision = decide(world(versions=[V1, older, replace(V2, created="2026-02-01")]))
    assert decision.canary is not None
    assert (decision.canary.version, decision.canary.step, decision.weight) == ("m-v2", 0, 0)
    assert [(m.version, m.role, m.phase) for m in decision.marks] == [("m-v2", "canary", "Canary")]
    assert decision.events[0].reason == "RolloutStarted"


# --------------------------------------------------------------------------- stepping


def test_the_first_weight_waits_for_the_canary_deployment() -> None:
    decision = decide(world(at_step(0, 0), canary_ready=False))
    assert decision.weight == 0
    assert reason(decision) == "CanaryNotReady"


def test_the_step_weight_is_written_once_the_canary_is_ready() -> None:
    decision = decide(world(at_step(0, 0)))
    assert decision.canary is not None
    assert (decision.weight, decision.canary.weight, decision.canary.step_started) == (10, 10, NOW)
    assert decision.events[0].message == "m-v2: weight 0% → 10% (step 1 of 3)"


def test_a_passing_analysis_after_the_step_duration_advances() -> None:
    decision = decide(world(at_step(0, 10), snapshot=snapshot(0.9)))
    assert decision.canary is not None
    assert (decision.canary.step, decision.weight, decision.canary.successes) == (1, 50, 0)
    assert decision.events[0].reason == "StepAdvanced"


def test_a_pass_before_the_step_duration_holds_and_counts() -> None:
    decision = decide(world(at_step(0, 10, started=timedelta(seconds=20)), snapshot=snapshot(0.9)))
    assert decision.canary is not None
    assert (decision.canary.step, decision.weight, decision.canary.successes) == (0, 10, 1)
    assert decision.canary.analysis[0].outcome == "pass"


def test_a_snapshot_older_than_the_step_or_the_interval_is_not_analysed_again() -> None:
    stale = decide(world(at_step(0, 10), snapshot=snapshot(0.5, age=timedelta(minutes=7))))
    assert stale.canary is not None
    assert (stale.canary.last_analysis, stale.canary.failures) == (None, 0)
    recent = at_step(0, 10, last_analysis=NOW - timedelta(seconds=10))
    decision = decide(world(recent, snapshot=snapshot(0.5)))
    assert decision.canary is not None
    assert decision.canary.failures == 0
    assert (stale.analysed, decision.analysed) == (None, None)


def test_a_worse_slice_rolls_back_naming_it_with_its_numbers() -> None:
    decision = decide(world(at_step(0, 10), snapshot=snapshot(0.8)))
    assert decision.canary is None
    assert decision.weight == 0
    assert decision.intent is not None
    assert decision.intent.phase == "RollingBack"
    assert [(m.version, m.phase, m.reason) for m in decision.marks_after] == [
        ("m-v2", "RolledBack", "AnalysisFailed")
    ]
    message = decision.events[0].message
    assert message.startswith("m-v2 failed the analysis at step 1 (10%): accuracy on slice web: ")
    assert "canary 0.8 vs stable 0.9" in message
    assert reason(decision, "RolledBack") == "AnalysisFailed"
    assert decision.analysed == "fail"


@pytest.mark.parametrize(("policy", "phase"), [("rollback", None), ("pause", "Paused")])
def test_too_little_data_holds_then_ends_as_configured(policy: str, phase: str | None) -> None:
    rollout = spec().rollout.model_dump(by_alias=True)
    rollout["analysis"]["onInconclusive"] = policy
    model = spec(rollout=rollout)
    sparse = snapshot(0.5, samples=20)
    held = decide(world(at_step(0, 10, inconclusive=1), spec=model, snapshot=sparse))
    assert held.canary is not None
    assert (held.canary.inconclusive, held.canary.failures, held.weight) == (2, 0, 10)
    assert held.analysed == "inconclusive"
    ended = decide(world(at_step(0, 10, inconclusive=2), spec=model, snapshot=sparse))
    assert (ended.canary.phase if ended.canary else None) == phase
    assert ended.weight == (10 if phase else 0)


def test_a_step_that_never_concludes_ends_at_its_deadline() -> None:
    decision = decide(world(at_step(0, 10, started=timedelta(minutes=21))))
    assert decision.canary is None
    assert reason(decision, "RolledBack") == "Inconclusive"


def test_a_paused_rollout_resumes_with_the_approval_of_its_step() -> None:
    paused = at_step(0, 10, phase="Paused")
    assert decide(world(paused)).weight == 10
    assert decide(world(paused, approval="m-v2/1")).canary.phase == "Paused"  # type: ignore[union-attr]
    resumed = decide(world(paused, approval="m-v2/0", snapshot=snapshot(0.9)))
    assert resumed.canary is not None
    assert resumed.canary.phase == "Progressing"


# --------------------------------------------------------------------------- approval, promotion


@pytest.mark.parametrize(
    ("approval", "advanced"),
    [(None, False), ("m-v2/1", False), ("m-v1/0", False), ("m-v2/0", True)],
)
def test_an_approval_step_waits_for_its_own_approval(approval: str | None, advanced: bool) -> None:
    steps = [{"weight": 10, "duration": "1m", "approval": True}, {"weight": 50}, {"weight": 100}]
    model = spec(rollout={"steps": steps})
    decision = decide(world(at_step(0, 10, successes=1), spec=model, approval=approval))
    assert decision.canary is not None
    assert (decision.canary.step == 1) == advanced
    if not advanced:
        assert decision.canary.phase == "WaitingForApproval"
        assert "modelloop.dev/approve=m-v2/0" in (decision.canary.message or "")


def test_propose_waits_for_approval_before_the_promotion() -> None:
    model = spec(automation="propose")
    waiting = decide(world(at_step(1, 50, successes=1), spec=model))
    assert waiting.canary is not None
    assert waiting.canary.phase == "WaitingForApproval"
    promoted = decide(world(at_step(1, 50, successes=1), spec=model, approval="m-v2/1"))
    assert promoted.canary is None


def test_passing_the_last_analysed_step_promotes() -> None:
    decision = decide(world(at_step(1, 50), snapshot=snapshot(0.91)))
    assert decision.canary is None
    assert [(m.version, m.role, m.phase) for m in decision.marks] == [("m-v2", "stable", "Serving")]
    assert reason(decision, "Promoted") == "Promoted"
    assert decision.events[-1].reason == "Promoted"
    assert decision.analysed == "pass"  # the analysis that promoted is counted too


# --------------------------------------------------------------------------- interruptions


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"abort": "m-v2"}, "Aborted"),
        ({"spec": spec(pinnedVersion="m-v1")}, "Pinned"),
    ],
)
def test_an_abort_or_a_pin_rolls_back(changes: dict[str, Any], expected: str) -> None:
    decision = decide(world(at_step(1, 50), **changes))
    assert decision.canary is None
    assert decision.weight == 0
    assert reason(decision, "RolledBack") == expected


def test_a_leftover_abort_of_another_version_does_nothing() -> None:
    assert decide(world(at_step(1, 50), abort="m-v1")).canary is not None


def test_paused_freezes_the_weight() -> None:
    decision = decide(world(at_step(1, 50), spec=spec(paused=True), snapshot=snapshot(0.5)))
    assert decision.canary is not None
    assert (decision.weight, decision.canary.failures) == (50, 0)


def test_a_newer_version_supersedes_only_when_configured() -> None:
    newer = version("m-v3", "Validated", created="zz")
    waits = decide(world(at_step(1, 50), versions=[V1, replace(V2, phase="Canary"), newer]))
    assert waits.canary is not None
    rollout = spec().rollout.model_dump(by_alias=True) | {"onNewerVersion": "supersede"}
    superseded = decide(
        world(
            at_step(1, 50),
            spec=spec(rollout=rollout),
            versions=[V1, replace(V2, phase="Canary"), newer],
        )
    )
    assert reason(superseded, "RolledBack") == "Superseded"


# --------------------------------------------------------------------------- restarts


def test_a_lost_status_is_rebuilt_from_the_version_and_the_route() -> None:
    decision = decide(world(None, versions=[V1, replace(V2, phase="Canary")], observed_weight=50))
    assert decision.canary is not None
    assert (decision.canary.step, decision.canary.weight, decision.weight) == (1, 50, 50)


def test_a_weight_written_before_a_crash_is_adopted_not_undone() -> None:
    lagging = at_step(
        1, 10
    )  # status says step 2 at 10%: the 50% write happened, its status did not
    decision = decide(world(lagging, observed_weight=50))
    assert decision.canary is not None
    assert (decision.weight, decision.canary.weight, decision.canary.step_started) == (50, 50, NOW)
    assert decision.events == []


def test_a_rollback_interrupted_after_its_intent_finishes_without_a_new_intent() -> None:
    decision = decide(world(at_step(0, 10, phase="RollingBack", message="accuracy on web")))
    assert decision.intent is None
    assert decision.weight == 0
    assert [m.phase for m in decision.marks_after] == ["RolledBack"]
    assert decision.events == []


def test_a_promotion_interrupted_after_the_marks_finishes() -> None:
    decision = decide(world(at_step(1, 50), stable="m-v2", versions=[replace(V2, phase="Serving")]))
    assert decision.canary is None
    assert decision.marks == []
    assert reason(decision, "Promoted") == "Promoted"


# --------------------------------------------------------------------------- edits in flight

TEN_FIFTY = [{"weight": 10, "duration": "1m"}, {"weight": 50}, {"weight": 100}]


@pytest.mark.parametrize(
    ("new_steps", "weight", "event_reason", "condition"),
    [
        # Shorter: at step 2 (50%) of 10→50→100, the steps become 20→100.
        ([{"weight": 20}, {"weight": 100}], 20, "RolloutRestarted", "StepsChanged"),
        # Longer: 10→25→50→75→100; back to the first step's 10%.
        (
            [{"weight": 10}, {"weight": 25}, {"weight": 50}, {"weight": 75}, {"weight": 100}],
            10,
            "RolloutRestarted",
            "StepsChanged",
        ),
        # Only a duration changed: a different plan too; restart, fresh counters.
        (
            [{"weight": 10, "duration": "10m"}, {"weight": 50}, {"weight": 100}],
            10,
            "RolloutRestarted",
            "StepsChanged",
        ),
        # A single step of 100: nothing left to analyse; the canary is promoted.
        ([{"weight": 100}], 0, "RolloutRestarted", "Promoted"),
    ],
)
def test_edited_steps_restart_the_rollout_at_the_first_step(
    new_steps: list[dict[str, Any]], weight: int, event_reason: str, condition: str
) -> None:
    running = at_step(1, 50, steps_hash=steps_hash(spec().rollout.steps), tested=3, failures=0)
    edited = spec(rollout={"steps": new_steps})
    decision = decide(world(running, spec=edited))
    assert decision.events[0].reason == event_reason
    assert reason(decision) == condition
    if decision.canary is not None:
        assert (decision.canary.step, decision.canary.weight, decision.weight) == (
            0,
            weight,
            weight,
        )
        assert decision.canary.steps_hash == steps_hash(edited.rollout.steps)
        assert decision.canary.tested == 3  # the level already spent stays spent
        assert decision.canary.step_started == NOW
    # The next pass follows the new steps without restarting again.
    if decision.canary is not None:
        again = decide(world(decision.canary, spec=edited, observed_weight=weight))
        assert all(e.reason != "RolloutRestarted" for e in again.events)


def test_a_rollout_from_before_the_hash_keeps_its_step() -> None:
    legacy = at_step(1, 50)  # no stepsHash: made by an older operator
    decision = decide(world(legacy))
    assert all(e.reason != "RolloutRestarted" for e in decision.events)
    assert decision.canary is not None
    assert decision.canary.step == 1


def test_a_step_index_past_the_steps_restarts_instead_of_crashing() -> None:
    broken = at_step(5, 50, steps_hash=steps_hash(spec().rollout.steps))
    decision = decide(world(broken))
    assert reason(decision) == "StepsChanged"
    assert decision.canary is not None
    assert decision.canary.step == 0


# --------------------------------------------------------------------------- faults


def test_a_failed_weight_write_keeps_the_step_and_drops_its_events() -> None:
    running = at_step(0, 10)
    advancing = decide(world(running, snapshot=snapshot(0.9)))
    assert [e.reason for e in advancing.events] == ["StepAdvanced"]
    failed = traffic_write_failed(advancing, running, None, "403 Forbidden: httproutes")
    assert failed.canary == running  # the step did not happen
    assert [(e.reason, e.type) for e in failed.events] == [("TrafficWriteFailed", "Warning")]
    assert reason(failed) == "TrafficWriteFailed"
    assert "403 Forbidden" in failed.conditions[0]["message"]
    # At the next retry the condition already says so: no second Warning.
    again = traffic_write_failed(advancing, running, failed.conditions[0], "403 Forbidden")
    assert again.events == []


def test_a_failed_rollback_write_keeps_its_intent_and_its_event() -> None:
    running = at_step(0, 10)
    rolling_back = decide(world(running, snapshot=snapshot(0.5)))
    assert rolling_back.intent is not None
    failed = traffic_write_failed(rolling_back, running, None, "route gone")
    assert failed.canary == rolling_back.intent  # persisted before: the rollback finishes
    assert failed.marks_after == []  # RolledBack is marked only once stable has the traffic
    assert [e.reason for e in failed.events] == ["RolledBack", "TrafficWriteFailed"]


# --------------------------------------------------------------------------- late labels

LABELLED = ACCURACY | {"labels": {"delay": "10m", "minCoverage": 0.5, "coverageQuery": "c"}}
ESTIMATE = {
    "name": "estimate",
    "query": "e",
    "canary": {"early": True, "test": "threshold", "absolute": 0.1},
}


def late_spec() -> ModelSpec:
    return spec(metrics=[LABELLED, ESTIMATE])


def late_snapshot(
    canary: float | None,
    coverage: float | None = 0.9,
    estimate: float = 0.9,
    when: datetime = NOW,
) -> Snapshot:
    def point(name: str, version: str, value: float | None, cover: float | None) -> Evaluated:
        key = SeriesKey("metric", name, "web", version)
        return Evaluated(key, VerdictName.PASS, value, 1000, coverage=cover)

    return Snapshot(
        when,
        (
            point("accuracy", "m-v1", 0.9, 0.9),
            point("accuracy", "m-v2", canary, coverage),
            point("estimate", "m-v1", 0.9, None),
            point("estimate", "m-v2", estimate, None),
        ),
    )


def late_world(canary: CanaryStatus | None, snap: Snapshot | None, **kw: Any) -> RolloutWorld:
    return world(canary, spec=late_spec(), snapshot=snap, **kw)


def codes(decision: RolloutDecision) -> dict[str, str | None]:
    assert decision.canary is not None
    return {row.metric: row.code for row in decision.canary.analysis}


@pytest.mark.parametrize(
    ("age", "coverage", "code"),
    [
        (timedelta(minutes=4), 0.9, "LabelsImmature"),  # the step's traffic is younger than 10m
        (timedelta(minutes=12), 0.3, "LabelsIncomplete"),  # old enough, too few labels
        (timedelta(minutes=12), None, "LabelsIncomplete"),  # the coverage is unknown
    ],
)
def test_an_analysis_waiting_for_labels_counts_toward_nothing(
    age: timedelta, coverage: float | None, code: str
) -> None:
    canary = at_step(0, 10, started=age, inconclusive=2)
    decision = decide(late_world(canary, late_snapshot(None, coverage)))
    assert decision.analysed == "waiting"
    assert codes(decision) == {"accuracy": code, "estimate": "WithinAllowance"}
    assert decision.canary is not None
    assert (decision.canary.successes, decision.canary.inconclusive) == (0, 2)
    assert decision.canary.last_analysis == NOW  # analysed: the next one is an interval on
    assert reason(decision) == "Analysing"
    assert "accuracy on slice web: waiting for labels" in (decision.canary.message or "")


def test_waiting_for_labels_never_exhausts_max_inconclusive() -> None:
    canary = at_step(0, 10, started=timedelta(seconds=30))
    for minute in range(1, 10):  # 9 minutes of analyses, all before the labels matured
        now = NOW + timedelta(minutes=minute)
        decision = decide(late_world(canary, late_snapshot(None, when=now), now=now))
        assert decision.canary is not None
        assert decision.canary.phase == "Progressing"
        canary = decision.canary
    assert canary.inconclusive == 0


def test_matured_labels_are_judged_and_early_signals_leave_the_count() -> None:
    canary = at_step(0, 10, started=timedelta(minutes=12))
    decision = decide(late_world(canary, late_snapshot(0.9, estimate=0.5)))
    assert decision.analysed == "pass"  # the estimate's gross drop no longer counts
    assert codes(decision) == {"accuracy": "NotSignificant"}
    assert decision.canary is not None
    assert (decision.canary.step, reason(decision)) == (1, "StepAdvanced")


@pytest.mark.parametrize(("elapsed", "ended"), [(29, False), (31, True)])
def test_the_step_timeout_is_extended_by_the_label_delay(elapsed: int, ended: bool) -> None:
    canary = at_step(0, 10, started=timedelta(minutes=elapsed), last_analysis=NOW)
    decision = decide(late_world(canary, None))
    assert (reason(decision, "RolledBack") if ended else reason(decision)) == (
        "Inconclusive" if ended else "Analysing"
    )
    if ended:
        assert "20m + labels.delay 10m" in next(
            c["message"] for c in decision.conditions if c["type"] == "RolledBack"
        )


def test_a_failing_early_signal_rolls_back_and_leaves_the_verdict_to_the_labels() -> None:
    canary = at_step(0, 10, started=timedelta(minutes=4))
    decision = decide(late_world(canary, late_snapshot(None, estimate=0.7)))
    assert decision.canary is None  # the rollout ends: the loop goes on
    assert decision.intent is not None  # persisted before the traffic moves
    assert (decision.weight, reason(decision, "RolledBack")) == (0, "EarlyRollback")
    assert [(e.reason, e.type) for e in decision.events] == [("RolledBack", "Warning")]
    message = decision.events[0].message
    assert "early signal failed at step 1 (10%), before its labels" in message
    assert "estimate on slice web: canary 0.7 vs stable 0.9" in message
    assert [m.phase for m in decision.marks_after] == ["RolledBack"]
    assert decision.pending == [
        LabelsPending(
            version="m-v2", due=NOW + timedelta(minutes=10), signal="estimate on slice web"
        )
    ]


def test_a_candidate_the_labels_cleared_is_not_taken_back_by_an_early_signal() -> None:
    canary = at_step(0, 10, started=timedelta(minutes=4), early_reversed=True)
    decision = decide(late_world(canary, late_snapshot(None, estimate=0.5)))
    assert decision.canary is not None
    assert (decision.canary.phase, decision.weight) == ("Progressing", 10)
    reversed_candidate = replace(V2, label_verdict="Reversed")
    started = decide(world(None, spec=late_spec(), versions=[V1, reversed_candidate]))
    assert started.canary is not None
    assert started.canary.early_reversed


PENDING = LabelsPending(
    version="m-v2", due=NOW - timedelta(seconds=5), signal="estimate on slice web"
)
ROLLED_BACK = replace(V2, phase="RolledBack")


def judged_later(
    canary_value: float | None, coverage: float | None, late: timedelta = timedelta(0), **kw: Any
) -> RolloutDecision:
    snap = late_snapshot(canary_value, coverage, when=NOW + late)
    given = {"versions": [V1, ROLLED_BACK], "pending": [PENDING], "now": NOW + late} | kw
    return decide(late_world(None, snap, **given))


@pytest.mark.parametrize(
    ("canary_value", "coverage", "late", "verdict", "phase"),
    [
        (0.8, 0.9, timedelta(0), "Confirmed", None),  # the labels agree with the signal
        (0.9, 0.9, timedelta(0), "Reversed", "Validated"),  # they clear the candidate
        (None, 0.1, timedelta(minutes=7), "Undecided", None),  # its traffic left the windows
    ],
)
def test_the_labels_judge_an_early_rollback_once_they_have_come(
    canary_value: float | None,
    coverage: float,
    late: timedelta,
    verdict: str,
    phase: str | None,
) -> None:
    decision = judged_later(canary_value, coverage, late)
    assert decision.pending == []
    [mark] = decision.marks
    assert (mark.version, mark.phase, dict(mark.status or {})["labelVerdict"]) == (
        "m-v2",
        phase,
        verdict,
    )
    assert [e.reason for e in decision.events][-1] == f"EarlyRollback{verdict}"


def test_labels_not_due_or_not_yet_mature_keep_the_version_pending() -> None:
    early = decide(
        late_world(
            None,
            late_snapshot(0.8, when=NOW - timedelta(minutes=1)),
            versions=[V1, ROLLED_BACK],
            pending=[PENDING],
        )
    )
    assert (early.pending, early.marks) == ([PENDING], [])
    immature = judged_later(None, 0.2, timedelta(minutes=1))  # within the grace: wait
    assert (immature.pending, immature.marks) == ([PENDING], [])


def test_a_reversal_does_not_bring_back_a_version_something_newer_replaced() -> None:
    newer = replace(version("m-v3", "Validated"), sequence=3)
    decision = judged_later(0.9, 0.9, versions=[V1, ROLLED_BACK, newer])
    [mark] = [m for m in decision.marks if m.version == "m-v2"]
    assert (mark.phase, dict(mark.status or {})["labelVerdict"]) == (None, "Reversed")
    assert "not rolled out again: m-v3 is newer" in decision.events[-1].message


def test_the_canary_distribution_against_stable_is_an_early_signal() -> None:
    drift = {"name": "scores", "histogram": "h", "test": "js", "threshold": 0.1, "canary": {}}
    shifted = spec(metrics=[LABELLED], drift=[drift])

    def analysed(js: float) -> RolloutDecision:
        snap = late_snapshot(None)
        shift = Evaluated(SeriesKey("shift", "scores", "web", "m-v2"), VerdictName.PASS, js, 500)
        canary = at_step(0, 10, started=timedelta(minutes=4))
        return decide(
            world(canary, spec=shifted, snapshot=replace(snap, evaluated=(*snap.evaluated, shift)))
        )

    calm = analysed(0.04)
    assert calm.analysed == "waiting"
    assert calm.canary is not None
    assert {r.metric: r.code for r in calm.canary.analysis}["scores"] == "WithinAllowance"
    moved = analysed(0.3)
    assert reason(moved, "RolledBack") == "EarlyRollback"
    assert "scores on slice web: the canary's distribution against stable's: js 0.3 " in (
        moved.events[0].message
    )


# --------------------------------------------------------------------------- webhook gates


def hooked(*hooks: dict[str, Any]) -> ModelSpec:
    base = spec().rollout.model_dump(by_alias=True, mode="json")
    return spec(rollout={**base, "webhooks": [{"url": "http://h/", **h} for h in hooks]})


def answer(name: str, outcome: str, status: int | None = None) -> HookAnswer:
    return HookAnswer(name, HookOutcome(outcome), status, "because")


@pytest.mark.parametrize(
    ("hooks", "answers", "weight", "expected"),
    [
        ([{"name": "audit", "type": "pre-rollout"}], {"audit": ("pass", 200)}, 10, "StepStarted"),
        ([{"name": "audit", "type": "pre-rollout"}], {"audit": ("fail", 403)}, 0, "WebhookHolding"),
        (
            [{"name": "audit", "type": "pre-rollout"}],
            {"audit": ("timeout", None)},
            0,
            "WebhookHolding",
        ),
        (
            [{"name": "audit", "type": "pre-rollout", "onFailure": "fail"}],
            {"audit": ("fail", 403)},
            0,
            "RolledBack",
        ),
    ],
)
def test_pre_rollout_hooks_gate_the_first_weight(
    hooks: list[dict[str, Any]],
    answers: dict[str, tuple[str, int | None]],
    weight: int,
    expected: str,
) -> None:
    given = {name: answer(name, *a) for name, a in answers.items()}
    w = world(at_step(0, 0), spec=hooked(*hooks))
    assert [h.name for h in due_hooks(w)] == ["audit"]
    decision = decide(replace(w, hooks=given))
    assert decision.weight == weight
    assert reason(decision) == expected
    if decision.canary is not None:
        [record] = decision.canary.hooks
        assert (record.name, record.outcome, record.status_code) == (
            "audit",
            answers["audit"][0],
            answers["audit"][1],
        )


@pytest.mark.parametrize(
    ("hook", "outcome", "analysed", "counts"),
    [
        ({}, ("pass", 200), "pass", (1, 0, 0)),
        ({}, ("fail", 500), "pass", (0, 0, 0)),  # holds: no success, nothing else counted
        ({"onFailure": "fail"}, ("fail", 500), "fail", (0, 1, 0)),
        ({}, ("timeout", None), "inconclusive", (0, 0, 1)),  # never a failure
    ],
)
def test_rollout_hooks_join_each_analysis(
    hook: dict[str, Any], outcome: tuple[str, int | None], analysed: str, counts: tuple[int, ...]
) -> None:
    w = world(
        at_step(0, 10, started=timedelta(seconds=30)),
        spec=hooked({"name": "load", "type": "rollout", **hook}),
        snapshot=snapshot(0.9),
    )
    assert [h.name for h in due_hooks(w)] == ["load"]
    decision = decide(replace(w, hooks={"load": answer("load", *outcome)}))
    assert decision.analysed == analysed
    canary = decision.canary
    if analysed == "fail":  # failureLimit 1: rolled back, the hook named
        assert reason(decision, "RolledBack") == "AnalysisFailed"
        assert "webhook load answered 500" in decision.events[0].message
        return
    assert canary is not None
    assert (canary.successes, canary.failures, canary.inconclusive) == counts


def test_a_confirm_promotion_hook_holds_the_promotion_until_it_says_yes() -> None:
    confirm = hooked({"name": "kpi", "type": "confirm-promotion"})
    last = at_step(1, 50, started=timedelta(minutes=6), successes=1, last_analysis=NOW)
    first = decide(world(last, spec=confirm))  # nothing asked yet: it asks next pass
    assert first.canary is not None
    assert (first.canary.phase, reason(first)) == ("WaitingForConfirmation", "WebhookHolding")
    assert [e.reason for e in first.events] == ["WaitingForConfirmation"]
    waiting = world(first.canary, spec=confirm)
    assert [h.name for h in due_hooks(waiting)] == ["kpi"]
    no = decide(replace(waiting, hooks={"kpi": answer("kpi", "fail", 409)}))
    assert no.canary is not None
    assert no.canary.phase == "WaitingForConfirmation"
    assert "webhook kpi answered 409: because" in (no.canary.message or "")
    assert no.events == []  # said once, when the wait began
    yes = decide(replace(world(no.canary, spec=confirm), hooks={"kpi": answer("kpi", "pass", 200)}))
    assert reason(yes, "Promoted") == "Promoted"


def test_hooks_are_asked_only_when_their_moment_comes() -> None:
    every = hooked(
        {"name": "pre", "type": "pre-rollout"},
        {"name": "each", "type": "rollout"},
        {"name": "confirm", "type": "confirm-promotion"},
    )
    stepping = at_step(0, 10, started=timedelta(seconds=30), last_analysis=NOW)
    assert due_hooks(world(stepping, spec=every)) == []  # no fresh analysis
    assert due_hooks(world(None, spec=every)) == []
    fresh = due_hooks(world(at_step(0, 10), spec=every, snapshot=snapshot(0.9)))
    assert [h.name for h in fresh] == ["each"]
    assert [h.name for h in due_hooks(world(at_step(0, 0), spec=every))] == ["pre"]
    paused = world(at_step(0, 0), spec=every.model_copy(update={"paused": True}))
    assert due_hooks(paused) == []
