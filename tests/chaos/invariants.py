"""The invariants the chaos run checks, on what it recorded. Pure.

- one training Job per training sequence number: every sequence a Model's status
  reserved had exactly one Job (by uid: a Job deleted and created again under its
  deterministic name counts twice), and every Job belongs to a reserved sequence;
- no lost or duplicate ModelVersion: every training recorded as Succeeded has its
  ModelVersion, no sequence has two, and no ModelVersion of a training lacks its record;
- route weights always sum to 100, in every written revision of every HTTPRoute;
- no breach clock restarted: while a failing streak lasts (``failingSince`` present in
  consecutive revisions of a Model's status), its start never moves;
- each decision Event posted once (the same Event twice is a decision announced twice);
- at the end, every Model Ready on the expected version: the one its newest successful
  training made, trained after the Model's last drift, Serving, no rollout or training
  in progress.

Each violation is a code, its subject and its numbers; ``render`` gives the words.
"""

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from modelloop.conditions import find

Obj = dict[str, Any]
SeriesKey = tuple[str, str, str, str, str]  # model, kind, metric, slice, version
# Decisions whose Event must appear once: the message names the training, version or step.
ONCE = (
    "TrainingStarted",
    "TrainingSucceeded",
    "TrainingFailed",
    "Validated",
    "Rejected",
    "RolloutStarted",
    "WeightChanged",
    "StepAdvanced",
    "Promoted",
    "RolledBack",
)


@dataclass(frozen=True)
class Violation:
    code: str
    subject: str
    numbers: Mapping[str, object] = field(default_factory=dict)

    def render(self) -> str:
        details = ", ".join(f"{k}={v}" for k, v in self.numbers.items())
        return f"{self.code} {self.subject}" + (f": {details}" if details else "")


@dataclass(frozen=True)
class SeenJob:
    uid: str
    model: str
    name: str
    sequence: int | None


@dataclass(frozen=True)
class SeenVersion:
    uid: str
    model: str
    name: str
    sequence: int | None  # spec.lineage.sequence: set on the versions trainings made
    data_end: str | None  # spec.lineage.dataWindow.end


@dataclass(frozen=True)
class SeenTraining:
    """A training as the Model's status last recorded it."""

    model: str
    sequence: int
    job: str
    outcome: str | None
    version: str | None


def trainings_in(model: str, status: Obj) -> list[SeenTraining]:
    """The trainings a revision of a Model's status records, running and finished."""
    training = status.get("training") or {}
    records = [*(training.get("history") or []), training.get("running")]
    return [
        SeenTraining(model, int(r["sequence"]), r["job"], r.get("outcome"), r.get("version"))
        for r in records
        if r
    ]


def jobs_per_sequence(
    jobs: Iterable[SeenJob], trainings: Mapping[tuple[str, int], SeenTraining]
) -> list[Violation]:
    uids: dict[tuple[str, int], set[str]] = {}
    unlabelled = []
    for job in jobs:
        if job.sequence is None:
            unlabelled.append(Violation("JobWithoutSequence", f"{job.model}/{job.name}"))
        else:
            uids.setdefault((job.model, job.sequence), set()).add(job.uid)
    found = list(unlabelled)
    for key in sorted(set(uids) | set(trainings)):
        subject = f"{key[0]} training {key[1]}"
        count = len(uids.get(key, ()))
        if count > 1:
            found.append(Violation("DuplicateJob", subject, {"jobs": count}))
        elif count == 0:
            found.append(Violation("NoJob", subject))
        if key not in trainings:
            found.append(Violation("JobWithoutTraining", subject, {"jobs": count}))
    return found


def versions_per_training(
    versions: Iterable[SeenVersion], trainings: Mapping[tuple[str, int], SeenTraining]
) -> list[Violation]:
    made: dict[tuple[str, int], list[SeenVersion]] = {}
    for version in versions:
        if version.sequence is not None:
            made.setdefault((version.model, version.sequence), []).append(version)
    found = []
    for key, versions_of in sorted(made.items()):
        subject = f"{key[0]} training {key[1]}"
        if len(versions_of) > 1:
            listed = sorted({v.name for v in versions_of})
            found.append(
                Violation(
                    "DuplicateVersion", subject, {"versions": len(versions_of), "names": listed}
                )
            )
        recorded = trainings.get(key)
        if recorded is None or recorded.outcome != "Succeeded":
            outcome = recorded.outcome if recorded else None
            found.append(Violation("VersionWithoutSuccess", subject, {"outcome": outcome}))
    for key, training in sorted(trainings.items()):
        if training.outcome != "Succeeded":
            continue
        subject = f"{key[0]} training {key[1]}"
        names = {v.name for v in made.get(key, [])}
        if not names:
            found.append(Violation("LostVersion", subject, {"recorded": training.version}))
        elif training.version not in names:
            found.append(
                Violation(
                    "VersionMismatch",
                    subject,
                    {"recorded": training.version, "made": sorted(names)},
                )
            )
    return found


def route_weights(route: str, revision: str, weights: Mapping[str, int]) -> Violation | None:
    total = sum(weights.values())
    if total == 100:
        return None
    return Violation("WeightsNot100", f"HTTPRoute {route}@{revision}", {"sum": total, **weights})


class BreachClocks:
    """Follows every revision of the Models' statuses: a ``failingSince`` present in two
    consecutive revisions must not change. ``forget`` a Model after a gap in its revisions
    (a relist): the next revision is not compared with the last one before the gap."""

    def __init__(self) -> None:
        self._last: dict[str, dict[SeriesKey, str]] = {}
        self.streaks = 0  # failing streaks seen starting
        self.compared = 0  # consecutive revisions compared while a streak lasted

    def observe(self, model: str, revision: str, verdicts: list[Obj]) -> list[Violation]:
        now = {
            (model, v.get("kind", "metric"), v["metric"], v["slice"], v["version"]): str(
                v["failingSince"]
            )
            for v in verdicts
            if v.get("failingSince")
        }
        before = self._last.get(model, {})
        found = []
        for key, since in sorted(now.items()):
            previous = before.get(key)
            if previous is None:
                self.streaks += 1
                continue
            self.compared += 1
            if since != previous:
                code = "ClockRestarted" if _when(since) > _when(previous) else "ClockMovedEarlier"
                subject = f"{model}@{revision} {key[2]} on {key[3]} of {key[4]}"
                found.append(Violation(code, subject, {"was": previous, "now": since}))
        self._last[model] = now
        return found

    def forget(self, model: str) -> None:
        self._last.pop(model, None)


def _when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def events_once(events: Iterable[tuple[str, str, str]]) -> list[Violation]:
    """(involved object, reason, message) of the decision Events seen; each must be unique."""
    counts = Counter(e for e in events if e[1] in ONCE)
    return [
        Violation("EventTwice", f"{obj} {reason}", {"times": n, "message": message})
        for (obj, reason, message), n in sorted(counts.items())
        if n > 1
    ]


def expected_version(model: str, trainings: Iterable[SeenTraining]) -> str:
    """The version the newest successful training of the Model made; its first version
    when none did."""
    made = [t for t in trainings if t.model == model and t.outcome == "Succeeded" and t.version]
    newest = max(made, key=lambda t: t.sequence, default=None)
    return newest.version if newest is not None and newest.version else f"{model}-v1"


def final_state(
    model: str,
    body: Obj | None,
    expected: str,
    expected_body: Obj | None,
    last_drift: datetime | None,
) -> list[Violation]:
    """What keeps a Model from being Ready on its expected version, with nothing in flight;
    nothing when it is."""
    if body is None:
        return [Violation("ModelGone", model)]
    status = body.get("status") or {}
    found = []
    stable = status.get("stableVersion")
    if stable != expected:
        found.append(Violation("WrongVersion", model, {"stable": stable, "expected": expected}))
    phase = ((expected_body or {}).get("status") or {}).get("phase")
    if phase != "Serving":
        found.append(Violation("ExpectedNotServing", model, {"version": expected, "phase": phase}))
    lineage = ((expected_body or {}).get("spec") or {}).get("lineage") or {}
    trained_until = (lineage.get("dataWindow") or {}).get("end")
    if last_drift is not None and (trained_until is None or _when(trained_until) < last_drift):
        drift = last_drift.strftime("%Y-%m-%dT%H:%M:%SZ")
        numbers = {"version": expected, "trainedUntil": trained_until, "drift": drift}
        found.append(Violation("NotRetrainedAfterDrift", model, numbers))
    ready = find(status.get("conditions") or [], "Ready") or {}
    if ready.get("status") != "True":
        found.append(Violation("NotReady", model, {"reason": ready.get("reason")}))
    if status.get("canary"):
        found.append(Violation("RolloutInProgress", model, {"canary": status["canary"]["version"]}))
    if (status.get("training") or {}).get("running"):
        found.append(Violation("TrainingInProgress", model))
    return found
