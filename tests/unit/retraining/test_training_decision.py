"""When to train: triggers, guards, and trainings in flight, on tables of worlds."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.unit.retraining.worlds import BREACH, NOW, history, record, spec, world

from modelloop.api.model import TrainingStatus, TrainingTrigger
from modelloop.api.reasons import TrainingReason
from modelloop.retraining.decide import (
    Adopt,
    EnsureJob,
    Finish,
    JobView,
    Rebaseline,
    Start,
    decide,
    kept_history,
    sequences_taken,
    training_condition,
    versions_made,
)
from modelloop.retraining.holds import Hold
from modelloop.retraining.jobs import build_job, job_name, version_name


def job(sequence: int, outcome: str | None = None) -> JobView:
    body = build_job(
        {"metadata": {"name": "fd", "namespace": "ns", "uid": "u"}},
        spec(),
        record(sequence, NOW - timedelta(minutes=5)),
        "fd-v1",
        [],
    )
    return JobView(body, outcome)


@pytest.mark.parametrize(
    ("changes", "code", "expected"),
    [
        ({}, "Idle", "no trigger holds"),
        ({"verdicts": [BREACH | {"verdict": "inconclusive"}]}, "Idle", "no trigger holds"),
        (
            {"verdicts": [BREACH | {"version": "fd-v2"}]},
            "Idle",
            "no trigger holds",
        ),  # a canary's breach
        (
            {"verdicts": [BREACH], "spec": spec(automation="observe")},
            "Disabled",
            "automation is observe: no retraining",
        ),
        ({"verdicts": [BREACH], "spec": spec(paused=True)}, "Paused", "the Model is paused"),
        (
            {"verdicts": [BREACH], "canary": "fd-v2"},
            "RolloutInProgress",
            "breach trigger held: a rollout of fd-v2 is in progress",
        ),
        (
            {"verdicts": [BREACH], "training": history(record(2, NOW - timedelta(minutes=30)))},
            "Cooldown",
            "breach trigger held: cooldown 1h since the training of 2026-11-25T11:30:00Z",
        ),
        (
            {
                "verdicts": [BREACH],
                "training": history(
                    record(2, NOW - timedelta(hours=5)), record(3, NOW - timedelta(hours=2))
                ),
            },
            "MaxPerDay",
            "breach trigger held: maxPerDay 2 reached (2 in the last 24h)",
        ),
        (
            {
                "verdicts": [BREACH],
                "training": history(
                    record(2, NOW - timedelta(hours=30), finished=NOW - timedelta(minutes=8)),
                    failures=2,
                ),
            },
            "Backoff",
            "breach trigger held: backoff after 2 failed training(s): 0:10:00 since the last",
        ),
    ],
)
def test_holds(changes: dict[str, Any], code: str, expected: str) -> None:
    decision = decide(world(**changes))
    assert isinstance(decision, Hold)
    assert (decision.code, decision.reason) == (TrainingReason(code), expected)


@pytest.mark.parametrize(
    ("changes", "kind", "reason", "failing"),
    [
        ({"verdicts": [BREACH]}, "breach", "precision on slice eu = 0.7 (below min 0.8)", ["eu"]),
        (
            {
                "verdicts": [
                    BREACH
                    | {
                        "kind": "drift",
                        "metric": "amount",
                        "value": 0.31,
                        "reason": "psi above threshold 0.2",
                    }
                ]
            },
            "drift",
            "amount on slice eu = 0.31 (psi above threshold 0.2)",
            ["eu"],
        ),
        ({"manual": "new labels"}, "manual", "new labels", []),
        (
            {"created": NOW - timedelta(days=2)},
            "schedule",
            "schedule 0 3 * * * fired at 2026-11-25T03:00Z",
            [],
        ),
        # Backoff over: a training after two failures 30 minutes ago.
        (
            {
                "verdicts": [BREACH],
                "training": history(
                    record(2, NOW - timedelta(hours=30), finished=NOW - timedelta(minutes=30)),
                    failures=2,
                ),
            },
            "breach",
            "precision on slice eu = 0.7 (below min 0.8)",
            ["eu"],
        ),
    ],
)
def test_starts(changes: dict[str, Any], kind: str, reason: str, failing: list[str]) -> None:
    decision = decide(world(**changes))
    assert isinstance(decision, Start)
    assert (decision.record.trigger.kind, decision.record.trigger.reason) == (kind, reason)
    assert decision.failing == failing
    assert decision.record.started == NOW
    # What the candidate must repair: the breached metrics (not drift checks) and slices.
    repairs = [(r.metric, r.slice) for r in decision.record.trigger.failing]
    assert repairs == ([("precision", "eu")] if kind == "breach" else [])


def test_the_sequence_is_past_every_job_version_and_record() -> None:
    decision = decide(
        world(
            verdicts=[BREACH],
            sequences_in_use={1, 7},
            training=TrainingStatus(next_sequence=3),
        )
    )
    assert isinstance(decision, Start)
    assert (decision.record.sequence, decision.record.job, decision.next_sequence) == (
        8,
        "fd-train-8",
        9,
    )


def test_a_manual_request_is_consumed_once() -> None:
    done = history(record(2, NOW - timedelta(hours=3), kind="manual"))  # reason "r"
    assert decide(world(manual="r", training=done)) == Hold(TrainingReason.IDLE)


def test_a_running_training_waits_for_its_job() -> None:
    running = record(2, NOW - timedelta(minutes=5))
    training = TrainingStatus(next_sequence=3, running=running)
    held = decide(world(training=training, jobs=[job(2)]))
    assert held == Hold(TrainingReason.RUNNING, record=running)
    assert held.reason == "training 2 is running (Job fd-train-2)"
    assert decide(world(training=training)) == EnsureJob(running)
    finished = decide(world(training=training, jobs=[job(2, "Complete")]))
    assert isinstance(finished, Finish)
    assert finished.record == running


def test_a_job_status_forgot_is_adopted_not_duplicated() -> None:
    decision = decide(world(verdicts=[BREACH], jobs=[job(4)]))
    assert isinstance(decision, Adopt)
    assert (decision.record.sequence, decision.next_sequence) == (4, 5)
    assert decision.record.trigger.kind == "breach"


def test_a_finished_job_whose_version_exists_is_not_adopted_again() -> None:
    decision = decide(world(jobs=[job(4, "Complete")], sequences_in_use={1, 4}))
    assert decision == Hold(TrainingReason.IDLE)


NEW_DATA = {"triggers": {"newData": {"query": "sum(labelled_total)", "volume": 1000}}}


@pytest.mark.parametrize(
    ("training", "count", "expected"),
    [
        (TrainingStatus(), 5000.0, Rebaseline(5000.0)),  # the first reading anchors
        (TrainingStatus(new_data_baseline=5000.0), 5600.0, Hold(TrainingReason.IDLE)),
        (TrainingStatus(new_data_baseline=5000.0), 4000.0, Rebaseline(4000.0)),  # a reset
    ],
)
def test_new_data_baselines(training: TrainingStatus, count: float, expected: object) -> None:
    decision = decide(world(spec=spec(retraining=NEW_DATA), training=training, new_data=count))
    assert decision == expected


def test_enough_new_data_since_the_last_training_starts_one() -> None:
    last = record(2, NOW - timedelta(days=2), new_data_count=8000.0)
    training = TrainingStatus(next_sequence=3, history=[last], new_data_baseline=1.0)
    decision = decide(world(spec=spec(retraining=NEW_DATA), training=training, new_data=9250.0))
    assert isinstance(decision, Start)
    assert decision.record.trigger == TrainingTrigger(
        kind="newData", reason="1250 new labelled examples since the last training (volume 1000)"
    )
    assert decision.record.new_data_count == 9250.0


def test_long_names_are_shortened_with_a_hash() -> None:
    model = "a-model-whose-name-is-long-enough-to-overflow-a-dns-label-x"
    assert len(model) == 59
    job, version = job_name(model, 1234), version_name(model, 1234)
    assert len(job) <= 63
    assert len(version) <= 63
    assert job.endswith("-train-1234")
    assert version.endswith("-v1234")
    assert job != job_name(model + "y", 1234)
    assert job_name("fd", 3) == "fd-train-3"


def test_max_per_day_counts_what_the_cluster_shows_not_only_the_history() -> None:
    # 30 trainings today, of which status remembers only the last 20 (a status restored
    # from an old backup, or trimmed): the ModelVersions they made still count.
    policy = {"maxPerDay": 30, "cooldown": "1m"}
    made = {n: NOW - timedelta(minutes=40 * (31 - n)) for n in range(1, 31)}
    recent = history(*(record(n, made[n]) for n in range(11, 31)))
    decision = decide(
        world(
            spec=spec(retraining=policy),
            verdicts=[BREACH],
            training=recent,
            versions_made=made,
            sequences_in_use=set(made),
        )
    )
    assert isinstance(decision, Hold)
    assert (decision.code, decision.count) == (TrainingReason.MAX_PER_DAY, 30)
    # A day later the oldest ones no longer count.
    later = decide(
        world(
            spec=spec(retraining=policy),
            verdicts=[BREACH],
            training=recent,
            versions_made=made,
            sequences_in_use=set(made),
            now=NOW + timedelta(hours=4),
        )
    )
    assert isinstance(later, Start)


def test_a_running_job_counts_toward_max_per_day() -> None:
    policy = {"maxPerDay": 1, "cooldown": "1m"}
    decision = decide(
        world(
            spec=spec(retraining=policy),
            verdicts=[BREACH],
            jobs=[job(2, "Failed")],
            training=history(record(2, NOW - timedelta(minutes=5))),
        )
    )
    assert isinstance(decision, Hold)
    assert decision.code == TrainingReason.MAX_PER_DAY


def test_the_history_keeps_every_training_of_the_last_day() -> None:
    old = [record(n, NOW - timedelta(days=3)) for n in range(1, 31)]
    today = [record(n, NOW - timedelta(minutes=n)) for n in range(31, 61)]
    assert len(kept_history(old, NOW)) == 20
    assert kept_history(old + today, NOW) == today


@pytest.mark.parametrize(
    ("decision", "status", "reason"),
    [
        (Hold(TrainingReason.IDLE), "False", "Idle"),
        (Hold(TrainingReason.DISABLED, automation="observe"), "False", "Disabled"),
        (Hold(TrainingReason.PAUSED), "False", "Paused"),
        (
            Hold(TrainingReason.COOLDOWN, trigger="breach", limit="1h", since=NOW),
            "False",
            "Cooldown",
        ),
        (
            Hold(TrainingReason.MAX_PER_DAY, trigger="drift", limit="3", count=3),
            "False",
            "MaxPerDay",
        ),
        (Hold(TrainingReason.RUNNING, record=record(2, NOW)), "True", "Running"),
        (Rebaseline(10.0), "False", "CountingNewData"),
    ],
)
def test_the_training_condition_comes_from_the_reason_code(
    decision: Any, status: str, reason: str
) -> None:
    found = training_condition(decision)
    assert (found["type"], found["status"], found["reason"]) == ("Training", status, reason)
    assert found["message"] == (
        decision.reason if isinstance(decision, Hold) else "counting new data"
    )


RUNNING = record(2, NOW)


@pytest.mark.parametrize(
    ("decision", "kind", "message"),
    [
        (Start(RUNNING, 3, []), "Job", "training 2 (Job fd-train-2): breach"),
        (Start(RUNNING, 3, []), "TrainJob", "training 2 (TrainJob fd-train-2): breach"),
        (EnsureJob(RUNNING), "RayJob", "training 2 (RayJob fd-train-2)"),
        (Adopt(RUNNING, 3), "PyTorchJob", "training 2 (PyTorchJob fd-train-2)"),
        (
            Hold(TrainingReason.RUNNING, record=RUNNING),
            "Job",
            "training 2 is running (Job fd-train-2)",
        ),
        (
            Hold(TrainingReason.RUNNING, record=RUNNING),
            "TrainJob",
            "training 2 is running (TrainJob fd-train-2)",
        ),
    ],
)
def test_the_training_condition_names_the_kind_of_the_training(
    decision: Any, kind: str, message: str
) -> None:
    assert training_condition(decision, kind)["message"] == message


def test_sequences_taken_and_versions_made_read_the_cluster() -> None:
    def mv(name: str, sequence: int | None, managed: bool = True) -> dict[str, Any]:
        labels = {"app.kubernetes.io/managed-by": "modelloop"} if managed else {}
        lineage = {"sequence": sequence} if sequence else {}
        return {
            "metadata": {
                "name": name,
                "labels": labels,
                "creationTimestamp": "2026-11-25T10:00:00+00:00",
            },
            "spec": {"model": "fd", "uri": "s3://x", "lineage": lineage},
        }

    versions = [mv("fd-v3", 3), mv("fd-v9", None, managed=False), mv("fd-candidate", 5)]
    assert sequences_taken("fd", versions) == {3, 5, 9}
    made = versions_made(versions)
    assert sorted(made) == [3, 5]  # a version a person named fd-v9 is not a training's
    assert made[3] == datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
