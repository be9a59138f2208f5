"""Trainings that bring something new: the new-data guard, the backoff after rejected
candidates, the per-trigger bookkeeping they read, and since when each slice fails."""

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.unit.retraining.worlds import BREACH, NOW, history, record, spec, world

from modelloop.api.model import Retraining, TrainingStatus, TriggerStatus
from modelloop.api.reasons import TrainingReason
from modelloop.api.vocabulary import TriggerKind, VersionPhase
from modelloop.retraining.decide import Start, TrainingWorld, decide, training_condition
from modelloop.retraining.holds import Hold
from modelloop.retraining.jobs import build_job, build_version, record_of_job
from modelloop.retraining.novelty import Candidate, candidates, novelty_hold, track
from modelloop.retraining.result import parse_result

H = timedelta(hours=1)
BREACH_KIND = TriggerKind.BREACH
JOB = {"spec": {"template": {"spec": {"containers": [{"name": "t", "image": "t"}]}}}}


def policy(cooldown: str = "1h", minimum: int | None = 500) -> Retraining:
    return Retraining.model_validate(
        {
            "cooldown": cooldown,
            "outputURI": "s3://m",
            "job": JOB,
            **({"newData": {"query": "sum(labelled)", "minimum": minimum}} if minimum else {}),
        }
    )


def state(**fields: Any) -> TriggerStatus:
    defaults: dict[str, Any] = {"sequence": 4, "started": NOW - 3 * H, "new_data_count": 1000.0}
    return TriggerStatus(kind=BREACH_KIND, **(defaults | fields))


REJECTED = {"rejections": 1, "last_rejected": NOW - timedelta(minutes=30), "judged_through": 4}


@pytest.mark.parametrize(
    ("guard", "stored", "counter", "expected"),
    [
        # The new-data guard: no reading holds; too little since the kind's last training holds.
        (policy(), state(), None, Hold(TrainingReason.NEW_DATA_UNKNOWN, trigger="breach")),
        (
            policy(),
            state(),
            1200.0,
            Hold(
                TrainingReason.NO_NEW_DATA,
                trigger="breach",
                grown=200.0,
                minimum=500,
                since=NOW - 3 * H,
            ),
        ),
        (policy(), state(), 1500.0, None),
        (policy(), None, 1200.0, None),  # the kind never trained: nothing to compare with
        (policy(), state(new_data_count=None), 1200.0, None),  # trained before any count
        # One rejection: cooldown x 1 from the rejection, or until the minimum arrives.
        (
            policy(),
            state(**REJECTED),
            1200.0,
            Hold(
                TrainingReason.REJECTED_BACKOFF,
                trigger="breach",
                count=1,
                wait=H,
                until=NOW + timedelta(minutes=30),
                grown=200.0,
                minimum=500,
            ),
        ),
        (policy(), state(**REJECTED), 1500.0, None),  # new data ends the backoff early
        # Three in a row: 4h; twelve: capped at 7 days.
        (
            policy(minimum=None),
            state(**REJECTED | {"rejections": 3}),
            None,
            Hold(
                TrainingReason.REJECTED_BACKOFF,
                trigger="breach",
                count=3,
                wait=4 * H,
                until=NOW + 3.5 * H,
            ),
        ),
        (
            policy(minimum=None),
            state(**REJECTED | {"rejections": 12, "last_rejected": NOW - 6 * 24 * H}),
            None,
            Hold(
                TrainingReason.REJECTED_BACKOFF,
                trigger="breach",
                count=12,
                wait=7 * 24 * H,
                until=NOW + 24 * H,
            ),
        ),
        # Two rejections 3h ago (2h backoff over): without the guard, it may train ...
        (
            policy(minimum=None),
            state(**REJECTED | {"rejections": 2, "last_rejected": NOW - 3 * H}),
            None,
            None,
        ),
        # ... with it, new data is still needed.
        (
            policy(),
            state(**REJECTED | {"rejections": 2, "last_rejected": NOW - 3 * H}),
            1100.0,
            Hold(
                TrainingReason.NO_NEW_DATA,
                trigger="breach",
                grown=100.0,
                minimum=500,
                since=NOW - 3 * H,
            ),
        ),
        # A cooldown shorter than 5 minutes backs off from 5 minutes.
        (
            policy(cooldown="0s", minimum=None),
            state(**REJECTED | {"last_rejected": NOW - timedelta(minutes=1)}),
            None,
            Hold(
                TrainingReason.REJECTED_BACKOFF,
                trigger="breach",
                count=1,
                wait=timedelta(minutes=5),
                until=NOW + timedelta(minutes=4),
            ),
        ),
    ],
)
def test_the_new_data_guard_and_the_backoff_after_rejections(
    guard: Retraining, stored: TriggerStatus | None, counter: float | None, expected: Hold | None
) -> None:
    assert novelty_hold(guard, BREACH_KIND, stored, counter, NOW) == expected


def candidate(
    sequence: int,
    phase: VersionPhase | None,
    kind: TriggerKind = BREACH_KIND,
    count: float | None = None,
) -> Candidate:
    started = NOW - timedelta(hours=10 - sequence)
    return Candidate(sequence, kind, phase, started + timedelta(minutes=30), started, count)


R, V, P = VersionPhase.REJECTED, VersionPhase.VALIDATED, VersionPhase.PENDING


def started(sequence: int) -> datetime:
    return NOW - timedelta(hours=10 - sequence)


@pytest.mark.parametrize(
    ("stored", "made", "counter", "expected"),
    [
        # Status lost: the ModelVersions say two rejections in a row, and the counter at start.
        (
            [],
            [candidate(2, V), candidate(3, R, count=100.0), candidate(4, R, count=100.0)],
            150.0,
            [
                state(
                    sequence=4,
                    started=started(4),
                    new_data_count=100.0,
                    rejections=2,
                    last_rejected=started(4) + timedelta(minutes=30),
                    judged_through=4,
                )
            ],
        ),
        # A validated candidate ends the streak; one awaiting judgement is not counted yet,
        # though new data is counted from its training.
        (
            [],
            [candidate(3, R), candidate(4, V), candidate(5, R), candidate(6, P, count=7.0)],
            None,
            [
                state(
                    sequence=6,
                    started=started(6),
                    new_data_count=7.0,
                    rejections=1,
                    last_rejected=started(5) + timedelta(minutes=30),
                    judged_through=5,
                )
            ],
        ),
        # Status counted rejections whose versions retention deleted: they still count, once.
        (
            [state(sequence=5, rejections=3, last_rejected=NOW - 5 * H, judged_through=5)],
            [candidate(5, R), candidate(6, R, count=1000.0)],
            None,
            [
                state(
                    sequence=6,
                    started=started(6),
                    new_data_count=1000.0,
                    rejections=4,
                    last_rejected=started(6) + timedelta(minutes=30),
                    judged_through=6,
                )
            ],
        ),
        # Each kind on its own; the counter went backwards: counted from the lower value.
        (
            [],
            [
                candidate(3, R, count=900.0),
                candidate(4, V, kind=TriggerKind.SCHEDULE, count=300.0),
            ],
            500.0,
            [
                state(
                    sequence=3,
                    started=started(3),
                    new_data_count=500.0,
                    rejections=1,
                    last_rejected=started(3) + timedelta(minutes=30),
                    judged_through=3,
                ),
                TriggerStatus(
                    kind=TriggerKind.SCHEDULE,
                    sequence=4,
                    started=started(4),
                    new_data_count=300.0,
                    judged_through=4,
                ),
            ],
        ),
    ],
)
def test_the_bookkeeping_merges_status_and_the_cluster(
    stored: list[TriggerStatus],
    made: list[Candidate],
    counter: float | None,
    expected: list[TriggerStatus],
) -> None:
    assert track(stored, [], made, counter) == expected
    # As written to status and read back, it is stable: no write at every reconcile.
    written = TrainingStatus(triggers=expected).model_dump(mode="json", by_alias=True)
    read = TrainingStatus.model_validate(written).triggers
    assert track(read, [], made, counter) == read == expected


def test_a_failed_training_moves_neither_the_count_nor_the_streak() -> None:
    done = record(5, NOW - H, version="fd-v5", new_data_count=40.0)
    failed = record(6, NOW - timedelta(minutes=30), outcome="Failed", new_data_count=90.0)
    assert track([], [done, failed], [], None) == [
        state(sequence=5, started=NOW - H, new_data_count=40.0)
    ]


def version(sequence: int, kind: str, phase: str | None, **annotations: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"fd-v{sequence}",
            "labels": {"app.kubernetes.io/managed-by": "modelloop"},
            "annotations": annotations,
        },
        "spec": {
            "model": "fd",
            "uri": "s3://x",
            "lineage": {
                "sequence": sequence,
                "trigger": {"kind": kind, "reason": "r"},
                "dataWindow": {"start": "2026-11-18T09:00:00Z", "end": "2026-11-25T09:00:00Z"},
            },
        },
        "status": {"phase": phase, "lastTransitionTime": "2026-11-25T09:40:00Z"} if phase else {},
    }


def test_candidates_are_read_from_the_model_versions() -> None:
    versions = [
        version(3, "breach", "Rejected", **{"modelloop.dev/new-data-count": "1250.0"}),
        version(4, "schedule", None),
        version(5, "external", "Validated"),  # not a trigger of ModelLoop's
        {"metadata": {"name": "fd-v1"}, "spec": {"model": "fd", "uri": "s3://x"}},
    ]
    at = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    assert candidates(versions) == [
        Candidate(3, BREACH_KIND, R, at + timedelta(minutes=40), at, 1250.0),
        Candidate(4, TriggerKind.SCHEDULE, None, None, at, None),
    ]


GUARD = {"newData": {"query": "sum(labelled_total)", "minimum": 500}}
FAILING = BREACH | {"since": "2026-11-25T10:00:00Z", "failingSince": "2026-11-25T09:12:00Z"}


def guarded(**changes: Any) -> TrainingWorld:
    """A breach on a Model with the new-data guard, whose last breach training (fd-v4,
    started with the counter at 1000) was rejected 30 minutes ago."""
    rejected = Candidate(4, BREACH_KIND, R, NOW - timedelta(minutes=30), NOW - 2 * H, 1000.0)
    base = world(
        spec=spec(retraining=GUARD),
        verdicts=[FAILING],
        training=history(record(4, NOW - 2 * H, version="fd-v4", new_data_count=1000.0)),
        candidates=[rejected],
        sequences_in_use={1, 4},
        new_data=1200.0,
    )
    return replace(base, **changes)


def test_a_rejected_candidate_is_not_trained_again_on_the_same_data() -> None:
    held = decide(guarded())
    assert held == Hold(
        TrainingReason.REJECTED_BACKOFF,
        trigger="breach",
        count=1,
        wait=H,
        until=NOW + timedelta(minutes=30),
        grown=200.0,
        minimum=500,
    )
    # Once the backoff is over, the guard still wants new data.
    later = decide(guarded(now=NOW + 2 * H))
    assert isinstance(later, Hold)
    assert (later.code, later.grown, later.minimum) == (TrainingReason.NO_NEW_DATA, 200.0, 500)
    # Enough new data: it trains, counting from here.
    started = decide(guarded(new_data=1600.0))
    assert isinstance(started, Start)
    assert (started.record.trigger.kind, started.record.new_data_count) == ("breach", 1600.0)


def test_no_reading_of_the_counter_holds_every_trigger_but_manual() -> None:
    held = decide(guarded(new_data=None))
    assert held == Hold(TrainingReason.NEW_DATA_UNKNOWN, trigger="breach")
    manual = decide(guarded(new_data=None, manual="labels fixed by hand"))
    assert isinstance(manual, Start)
    assert manual.record.trigger.kind == "manual"


def test_a_trigger_the_guards_hold_lets_a_later_one_through() -> None:
    # The status lost its history (the version still says breach was rejected); the
    # schedule fired at 03:00, and never trained before: the breach's backoff holds it not.
    lost = TrainingStatus(next_sequence=5, new_data_baseline=1.0)
    decision = decide(guarded(created=NOW - 2 * 24 * H, training=lost))
    assert isinstance(decision, Start)
    assert decision.record.trigger.kind == "schedule"


def test_the_onset_of_each_failing_slice_reaches_the_job() -> None:
    other = BREACH | {"slice": "us", "since": "2026-11-24T23:00:00Z"}  # an 'ofLast' rule
    decision = decide(world(verdicts=[FAILING, other]))
    assert isinstance(decision, Start)
    assert decision.onset == {
        "eu": datetime(2026, 11, 25, 9, 12, tzinfo=UTC),
        "us": datetime(2026, 11, 24, 23, 0, tzinfo=UTC),
    }
    model = {"metadata": {"name": "fd", "namespace": "ns", "uid": "u"}}
    job = build_job(model, spec(), decision.record, "fd-v1", decision.failing, None, decision.onset)
    env = {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert json.loads(env["MODELLOOP_FAILING_SINCE"]) == {
        "eu": "2026-11-25T09:12:00Z",
        "us": "2026-11-24T23:00:00Z",
    }
    unfailing = build_job(model, spec(), decision.record, "fd-v1", [], None)
    env = {
        e["name"]: e["value"] for e in unfailing["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert json.loads(env["MODELLOOP_FAILING_SINCE"]) == {}


def test_the_counter_at_the_start_travels_from_the_job_to_the_version() -> None:
    model = {"metadata": {"name": "fd", "namespace": "ns", "uid": "u"}}
    started = record(7, NOW, new_data_count=1234.0)
    job = build_job(model, spec(), started, "fd-v1", [])
    assert record_of_job(job) == started
    result = parse_result(
        json.dumps(
            {
                "artifactURI": "s3://m/7",
                "metrics": {"candidate": [], "champion": []},
            }
        )
    )
    made = build_version(model, job, started, result)
    assert made["metadata"]["annotations"] == {"modelloop.dev/new-data-count": "1234.0"}


@pytest.mark.parametrize(
    ("hold", "message"),
    [
        (
            Hold(TrainingReason.NEW_DATA_UNKNOWN, trigger="breach"),
            "breach trigger held: the new-data counter has no reading: no training on data it "
            "cannot count",
        ),
        (
            Hold(
                TrainingReason.NO_NEW_DATA,
                trigger="drift",
                grown=200.0,
                minimum=500,
                since=NOW - 3 * H,
            ),
            "drift trigger held: 200 new labelled examples since its training of "
            "2026-11-25T09:00:00Z, newData.minimum 500",
        ),
        (
            Hold(
                TrainingReason.REJECTED_BACKOFF,
                trigger="breach",
                count=2,
                wait=2 * H,
                until=NOW + H,
                grown=120.0,
                minimum=500,
            ),
            "breach trigger held: backoff after 2 rejected candidate(s) in a row: 2:00:00 from "
            "the last rejection, until 2026-11-25T13:00:00Z or 500 new labelled examples "
            "(120 so far)",
        ),
        (
            Hold(TrainingReason.REJECTED_BACKOFF, trigger="schedule", count=1, wait=H, until=NOW),
            "schedule trigger held: backoff after 1 rejected candidate(s) in a row: 1:00:00 from "
            "the last rejection, until 2026-11-25T12:00:00Z",
        ),
    ],
)
def test_the_training_condition_renders_the_new_holds(hold: Hold, message: str) -> None:
    found = training_condition(hold)
    assert (found["status"], found["reason"], found["message"]) == (
        "False",
        hold.code.value,
        message,
    )
