"""Trainings that bring something new. Pure.

Per trigger kind, ``status.training.triggers[]`` keeps its last training that made a
candidate (with the new-data counter when it started) and how many of its candidates the
offline gate rejected in a row. Both are merged from status and from what the cluster
shows — the history of trainings, and the ModelVersions with their lineage, phase and the
counter at their start (an annotation) — so a lost status neither resets the backoff
nor forgets where new data is counted from.

Two guards read them, for every trigger but manual:
- the new-data guard (``spec.retraining.newData``): a training needs ``minimum`` new
  labelled examples since the last training of its kind; no reading of the counter holds;
- the backoff after rejections: n candidates of a kind rejected in a row hold that kind
  for max(cooldown, 5m) x 2^(n-1), at most 7 days, from the last rejection — or until
  the new-data guard's ``minimum`` arrived. A judged candidate that was not rejected ends
  the streak.

A failed training (no candidate) moves neither: the backoff after failures governs it,
and it may be retried on the same data.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..api.model import Retraining, TrainingRecord, TriggerStatus
from ..api.reasons import TrainingReason
from ..api.versions import lineage_sequence, made_by_modelloop
from ..api.vocabulary import TriggerKind, VersionPhase
from .holds import Hold
from .jobs import ANNOTATION_NEW_DATA_COUNT

REJECTION_BACKOFF_MIN = timedelta(minutes=5)  # the base when the cooldown is shorter
REJECTION_BACKOFF_MAX = timedelta(days=7)
UNJUDGED = (None, VersionPhase.PENDING)


@dataclass(frozen=True)
class Candidate:
    """A ModelVersion one of ModelLoop's trainings made, as the guards read it."""

    sequence: int
    kind: TriggerKind
    phase: VersionPhase | None
    changed: datetime | None  # its last phase change: for Rejected, the rejection
    started: datetime | None  # its training's start (the data window's end)
    new_data_count: float | None  # the new-data counter then


def _time(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except (TypeError, ValueError):
        return None


def _count(text: Any) -> float | None:
    try:
        return float(text) if text not in (None, "") else None
    except (TypeError, ValueError):
        return None


def candidates(versions: Iterable[dict[str, Any]]) -> list[Candidate]:
    """The ModelVersions ModelLoop's trainings made, with the kind of their trigger."""
    found = []
    kinds = {k.value for k in TriggerKind}
    phases = {p.value for p in VersionPhase}
    for version in versions:
        lineage = (version.get("spec") or {}).get("lineage") or {}
        kind = (lineage.get("trigger") or {}).get("kind")
        sequence = lineage_sequence(version)
        if not made_by_modelloop(version) or sequence is None or kind not in kinds:
            continue
        status = version.get("status") or {}
        phase = status.get("phase")
        annotations = version["metadata"].get("annotations") or {}
        found.append(
            Candidate(
                sequence=sequence,
                kind=TriggerKind(kind),
                phase=VersionPhase(phase) if phase in phases else None,
                changed=_time(status.get("lastTransitionTime")),
                started=_time((lineage.get("dataWindow") or {}).get("end")),
                new_data_count=_count(annotations.get(ANNOTATION_NEW_DATA_COUNT)),
            )
        )
    return found


def track(
    stored: Iterable[TriggerStatus],
    history: Iterable[TrainingRecord],
    made: Iterable[Candidate],
    counter: float | None,
) -> list[TriggerStatus]:
    """Each trigger kind's state: status as stored, brought up to date with the trainings
    that made a candidate (history, ModelVersions) and the candidates judged since."""
    states = {s.kind: s for s in stored}
    made = sorted(made, key=lambda c: c.sequence)
    trainings = [
        (r.sequence, TriggerKind(r.trigger.kind), r.started, r.new_data_count)
        for r in history
        if r.version is not None
    ] + [(c.sequence, c.kind, c.started, c.new_data_count) for c in made]
    for sequence, kind, started, count in sorted(trainings, key=lambda t: t[0]):
        state = states.get(kind) or TriggerStatus(kind=kind)
        if state.sequence is None or sequence > state.sequence:
            state = state.model_copy(
                update={"sequence": sequence, "started": started, "new_data_count": count}
            )
        elif sequence == state.sequence:  # what one source lacks, another may know
            state = state.model_copy(
                update={
                    "started": state.started or started,
                    "new_data_count": (
                        state.new_data_count if state.new_data_count is not None else count
                    ),
                }
            )
        states[kind] = state
    for candidate in made:
        state = states[candidate.kind]
        if candidate.phase in UNJUDGED or candidate.sequence <= (state.judged_through or 0):
            continue
        rejected = candidate.phase == VersionPhase.REJECTED
        states[candidate.kind] = state.model_copy(
            update={
                "rejections": state.rejections + 1 if rejected else 0,
                "last_rejected": (candidate.changed or candidate.started) if rejected else None,
                "judged_through": candidate.sequence,
            }
        )
    for kind, state in states.items():
        if (
            counter is not None
            and state.new_data_count is not None
            and counter < state.new_data_count
        ):
            # The counter went backwards (a reset): count from the lower value, never more.
            states[kind] = state.model_copy(update={"new_data_count": counter})
    return [states[k] for k in TriggerKind if k in states]


def rejection_wait(cooldown: timedelta, rejections: int) -> timedelta:
    """The backoff after ``rejections`` rejected candidates in a row."""
    doubled: timedelta = max(cooldown, REJECTION_BACKOFF_MIN) * 2 ** min(rejections - 1, 20)
    return min(doubled, REJECTION_BACKOFF_MAX)


def novelty_hold(
    policy: Retraining,
    kind: TriggerKind,
    state: TriggerStatus | None,
    counter: float | None,
    now: datetime,
) -> Hold | None:
    """Whether a trigger of ``kind`` is held for lack of new data, or backs off after its
    candidates were rejected; None when it may start a training."""
    guard = policy.new_data
    if guard is not None and counter is None:
        return Hold(TrainingReason.NEW_DATA_UNKNOWN, trigger=kind)
    grown = None
    if guard is not None and counter is not None and state and state.new_data_count is not None:
        grown = counter - state.new_data_count
    minimum = guard.minimum if guard is not None else None
    fresh = grown is not None and minimum is not None and grown >= minimum
    if state is not None and state.rejections and state.last_rejected and not fresh:
        wait = rejection_wait(policy.cooldown.delta, state.rejections)
        until = state.last_rejected + wait
        if now < until:
            return Hold(
                TrainingReason.REJECTED_BACKOFF,
                trigger=kind,
                count=state.rejections,
                wait=wait,
                until=until,
                grown=grown,
                minimum=minimum,
            )
    if grown is not None and minimum is not None and grown < minimum:
        assert state is not None
        return Hold(
            TrainingReason.NO_NEW_DATA,
            trigger=kind,
            grown=grown,
            minimum=minimum,
            since=state.started,
        )
    return None
