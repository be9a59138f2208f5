"""When to train, and what to do about a training in flight. Pure.

One training at a time per Model. The next sequence number is never lower than
one past every Job and ModelVersion of the Model (status alone can be lost), and
it is reserved in status before the Job exists. A Job found without a status
record is adopted, never duplicated. Triggers act only on conclusive evidence:
a breach verdict that held its rule, a drift breach, the schedule, or the manual
annotation; guards (cooldown, maxPerDay, backoff after failures, paused, a
rollout in progress) hold them back and say why, and so do, per trigger kind, the
new-data guard and the backoff after rejected candidates (novelty.py). Of the
triggers that hold, the first one its guards let through starts the training.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from ..api.base import MetricSlice
from ..api.model import ModelSpec, TrainingRecord, TrainingStatus, TrainingTrigger, TriggerStatus
from ..api.reasons import TrainingReason
from ..api.versions import lineage_sequence, made_by_modelloop, named_sequence, sequence_of
from ..api.vocabulary import TriggerKind
from ..conditions import condition
from .cron import CronError, previous_fire
from .holds import Hold as Hold  # a decision like the others: importable from here
from .holds import describe_hold
from .jobs import job_name, record_of_job
from .novelty import Candidate, novelty_hold, track

BACKOFF_BASE = timedelta(minutes=5)
BACKOFF_MAX = timedelta(hours=24)
DAY = timedelta(days=1)
HISTORY_MIN = 20  # finished trainings always kept in status, besides the last day's
TRAINING = "Training"


@dataclass(frozen=True)
class JobView:
    body: dict[str, Any]
    outcome: str | None  # Complete, Failed, or None while it runs


@dataclass(frozen=True)
class TrainingWorld:
    model: str
    spec: ModelSpec
    training: TrainingStatus
    verdicts: list[dict[str, Any]]
    stable: str | None
    canary: str | None
    manual: str | None  # the modelloop.dev/retrain annotation
    created: datetime  # the Model's creation time: the schedule's first baseline
    jobs: list[JobView]
    sequences_in_use: set[int]  # of every ModelVersion of the Model
    now: datetime
    new_data: float | None = None  # the new-data counter now, when one is declared
    # The ModelVersions trainings made: sequence -> creation time. With the Jobs and the
    # history in status, what maxPerDay counts (status alone can be lost or trimmed).
    versions_made: Mapping[int, datetime] = field(default_factory=dict)
    # The same versions with their trigger kind, phase and counter: the per-kind guards.
    candidates: list[Candidate] = field(default_factory=list)


@dataclass(frozen=True)
class Start:
    record: TrainingRecord
    next_sequence: int
    failing: list[str]  # slices that failed, for MODELLOOP_FAILING_SLICES
    onset: dict[str, datetime] = field(default_factory=dict)  # since when each has failed


@dataclass(frozen=True)
class EnsureJob:
    """Status holds a running training whose Job does not exist (a crash right after
    the reservation): create it, under the same name."""

    record: TrainingRecord


@dataclass(frozen=True)
class Adopt:
    """A Job of this Model that status does not know (status was lost): record it."""

    record: TrainingRecord
    next_sequence: int


@dataclass(frozen=True)
class Finish:
    """The running training's Job has finished: record its result."""

    record: TrainingRecord
    job: JobView


@dataclass(frozen=True)
class Rebaseline:
    """Count new data from ``count``: the first reading, or the counter went backwards."""

    count: float


Decision = Start | EnsureJob | Adopt | Finish | Hold | Rebaseline


@dataclass
class _Trigger:
    trigger: TrainingTrigger
    failing: list[str] = field(default_factory=list)
    onset: dict[str, datetime] = field(default_factory=dict)


def sequences_taken(model: str, versions: list[dict[str, Any]]) -> set[int]:
    """Sequence numbers taken by the Model's ModelVersions: from lineage, and from names
    like <model>-v7 that a person or a pipeline chose (a training must not collide)."""
    found = ((lineage_sequence(v), named_sequence(model, v["metadata"]["name"])) for v in versions)
    return {sequence for pair in found for sequence in pair if sequence is not None}


def versions_made(versions: list[dict[str, Any]]) -> dict[int, datetime]:
    """The ModelVersions trainings made, by sequence, with their creation time."""
    made = {}
    for v in versions:
        sequence = sequence_of(v)
        if made_by_modelloop(v) and sequence is not None:
            made[sequence] = datetime.fromisoformat(v["metadata"]["creationTimestamp"])
    return made


def next_sequence(world: TrainingWorld) -> int:
    used = set(world.sequences_in_use)
    for job in world.jobs:
        record = record_of_job(job.body)
        if record is not None:
            used.add(record.sequence)
    for record in world.training.history:
        used.add(record.sequence)
    if world.training.running is not None:
        used.add(world.training.running.sequence)
    return max([world.training.next_sequence, *(n + 1 for n in used)])


def decide(world: TrainingWorld) -> Decision:
    running = world.training.running
    jobs = {j.body["metadata"]["name"]: j for j in world.jobs}
    if running is not None:
        job = jobs.get(running.job)
        if job is None:
            return EnsureJob(running)
        if job.outcome is None:
            return Hold(TrainingReason.RUNNING, record=running)
        return Finish(running, job)
    recorded = {r.sequence for r in world.training.history}
    for job in world.jobs:
        record = record_of_job(job.body)
        if record is not None and record.sequence not in recorded:
            if record.sequence in world.sequences_in_use and job.outcome is not None:
                continue  # its ModelVersion exists: only the history entry was lost
            return Adopt(record, max(next_sequence(world), record.sequence + 1))
    return _maybe_start(world)


def _maybe_start(world: TrainingWorld) -> Decision:
    spec = world.spec
    if spec.retraining is None or not spec.automation.trains:
        return Hold(TrainingReason.DISABLED, automation=spec.automation)
    if spec.paused:
        return Hold(TrainingReason.PAUSED)
    baseline = _new_data_baseline(world)
    if world.new_data is not None and (baseline is None or world.new_data < baseline):
        return Rebaseline(world.new_data)
    fired = _triggers(world)
    if not fired:
        return Hold(TrainingReason.IDLE)
    first = fired[0].trigger.kind
    if world.canary is not None and not spec.retraining.during_rollout:
        return Hold(TrainingReason.ROLLOUT_IN_PROGRESS, trigger=first, canary=world.canary)
    guard = _guard(world)
    if guard is not None:
        return replace(guard, trigger=first)
    states = {s.kind: s for s in trigger_states(world)}
    held: Hold | None = None
    for found in fired:
        kind = TriggerKind(found.trigger.kind)
        if kind == TriggerKind.MANUAL:
            return _start(world, found)
        hold = novelty_hold(spec.retraining, kind, states.get(kind), world.new_data, world.now)
        if hold is None:
            return _start(world, found)
        held = held or hold
    assert held is not None
    return held


def trigger_states(world: TrainingWorld) -> list[TriggerStatus]:
    """status.training.triggers as the world shows it now."""
    return track(world.training.triggers, world.training.history, world.candidates, world.new_data)


def _start(world: TrainingWorld, found: _Trigger) -> Start:
    sequence = next_sequence(world)
    record = TrainingRecord(
        sequence=sequence,
        job=job_name(world.model, sequence),
        trigger=found.trigger,
        started=world.now,
        new_data_count=world.new_data,
    )
    return Start(record, sequence + 1, found.failing, found.onset)


def _triggers(world: TrainingWorld) -> list[_Trigger]:
    """The triggers that hold now, first manual, then breach, drift, newData, schedule."""
    spec = world.spec
    assert spec.retraining is not None
    triggers = spec.retraining.triggers
    fired = []
    if triggers.manual and world.manual and not consumed(world, world.manual):
        fired.append(_Trigger(TrainingTrigger(kind="manual", reason=world.manual)))
    for kind, names in (("metric", triggers.on_breach), ("drift", triggers.on_drift)):
        if not names:
            continue
        breaches = [
            v
            for v in world.verdicts
            if v.get("kind", "metric") == kind
            and v["metric"] in names
            and v["version"] == world.stable
            and v["verdict"] == "breach"
        ]
        if breaches:
            described = "; ".join(_describe(v) for v in breaches[:5])
            fired.append(
                _Trigger(
                    TrainingTrigger(
                        kind="breach" if kind == "metric" else "drift",
                        reason=described,
                        # The offline gate requires the candidate to do better on these.
                        failing=[
                            MetricSlice(metric=v["metric"], slice=v["slice"])
                            for v in breaches
                            if kind == "metric"
                        ],
                    ),
                    sorted({v["slice"] for v in breaches}),
                    failing_since(breaches),
                )
            )
    baseline = _new_data_baseline(world)
    if triggers.new_data and world.new_data is not None and baseline is not None:
        grown = world.new_data - baseline
        if grown >= triggers.new_data.volume:
            fired.append(
                _Trigger(
                    TrainingTrigger(
                        kind="newData",
                        reason=f"{grown:.0f} new labelled examples since the last training "
                        f"(volume {triggers.new_data.volume})",
                    )
                )
            )
    if triggers.schedule:
        try:
            fire = previous_fire(triggers.schedule, world.now)
        except CronError:
            return fired
        last = _last_started(world) or world.created
        if fire is not None and fire > last:
            fired.append(
                _Trigger(
                    TrainingTrigger(
                        kind="schedule",
                        reason=f"schedule {triggers.schedule} fired at {fire:%Y-%m-%dT%H:%MZ}",
                    )
                )
            )
    return fired


def failing_since(breaches: list[dict[str, Any]]) -> dict[str, datetime]:
    """Since when each slice has failed: the earliest start of its breaches' failing streak
    (a 'for' rule's failingSince), else of their breach verdicts."""
    found: dict[str, datetime] = {}
    for v in breaches:
        text = v.get("failingSince") or v.get("since")
        if not text:
            continue
        when = datetime.fromisoformat(text) if isinstance(text, str) else text
        found[v["slice"]] = min(when, found.get(v["slice"], when))
    return dict(sorted(found.items()))


def _describe(v: dict[str, Any]) -> str:
    value = f" = {v['value']:.4g}" if v.get("value") is not None else ""
    reason = f" ({v['reason']})" if v.get("reason") else ""
    return f"{v['metric']} on slice {v['slice']}{value}{reason}"


def consumed(world: TrainingWorld, reason: str) -> bool:
    """A manual request is consumed once a training carries it (even if the annotation
    could not be removed before a crash)."""
    records = [*world.training.history, *filter(None, [world.training.running])]
    return any(r.trigger.kind == "manual" and r.trigger.reason == reason for r in records)


def _new_data_baseline(world: TrainingWorld) -> float | None:
    """The counter when the last training started, else the first reading."""
    for record in reversed(world.training.history):
        if record.new_data_count is not None:
            return record.new_data_count
    return world.training.new_data_baseline


def _last_started(world: TrainingWorld) -> datetime | None:
    return max((r.started for r in world.training.history), default=None)


def started_in_last_day(world: TrainingWorld) -> int:
    """Trainings started in the last 24 hours, as the cluster shows them: the history and
    the running one in status, the Jobs, and the ModelVersions trainings made."""
    started = {r.sequence: r.started for r in world.training.history}
    if world.training.running is not None:
        started[world.training.running.sequence] = world.training.running.started
    for job in world.jobs:
        record = record_of_job(job.body)
        if record is not None:
            started.setdefault(record.sequence, record.started)
    for sequence, created in world.versions_made.items():
        started.setdefault(sequence, created)
    return sum(1 for when in started.values() if world.now - when < DAY)


def _guard(world: TrainingWorld) -> Hold | None:
    assert world.spec.retraining is not None
    policy = world.spec.retraining
    last = _last_started(world)
    cooldown = policy.cooldown.delta
    if last is not None and world.now - last < cooldown:
        return Hold(TrainingReason.COOLDOWN, limit=policy.cooldown, since=last)
    today = started_in_last_day(world)
    if today >= policy.max_per_day:
        return Hold(TrainingReason.MAX_PER_DAY, limit=str(policy.max_per_day), count=today)
    failures = world.training.consecutive_failures
    ended = max((r.finished or r.started for r in world.training.history), default=None)
    if failures and ended is not None:
        wait = min(BACKOFF_BASE * 2 ** (failures - 1), BACKOFF_MAX)
        if world.now - ended < wait:
            return Hold(TrainingReason.BACKOFF, count=failures, since=ended, wait=wait)
    return None


def kept_history(history: list[TrainingRecord], now: datetime) -> list[TrainingRecord]:
    """The finished trainings status keeps: every one of the last 24 hours (maxPerDay
    counts them) and at least the last ``HISTORY_MIN``."""
    recent = [r for r in history if now - r.started < DAY]
    return history[-max(len(recent), HISTORY_MIN) :]


def training_condition(decision: Decision, kind: str = "Job") -> dict[str, Any]:
    """The Training condition: what the retraining is doing, or why it is not; ``kind``:
    the kind of the training's object (a workload's, else Job)."""
    if isinstance(decision, Start):
        record = decision.record
        message = f"training {record.sequence} ({kind} {record.job}): {record.trigger.kind}"
        return condition(TRAINING, "True", TrainingReason.STARTED.value, message)
    if isinstance(decision, EnsureJob | Adopt | Finish):
        record = decision.record
        message = f"training {record.sequence} ({kind} {record.job})"
        return condition(TRAINING, "True", TrainingReason.RUNNING.value, message)
    if isinstance(decision, Rebaseline):
        return condition(
            TRAINING, "False", TrainingReason.COUNTING_NEW_DATA.value, "counting new data"
        )
    running = decision.code == TrainingReason.RUNNING
    message = describe_hold(decision, kind)
    return condition(TRAINING, "True" if running else "False", decision.code.value, message)
