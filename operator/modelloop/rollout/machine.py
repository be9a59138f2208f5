"""The canary state machine: one pure decision per reconcile, from the world to what to write.

A rollout's durable record is ``status.canary`` (the step, and the weight last
written), the canary's ModelVersion (phase ``Canary``, role label ``canary``)
and the weights in the route. A restarted operator resumes from them: a status
lost with a backup restore is rebuilt from the version in phase Canary and the
route's weight; a weight written whose status write was lost is adopted, not
undone. Weights only move forward within a rollout — except a rollback, whose
intent is persisted (phase ``RollingBack``) before the weights go back to
stable, so it finishes after any crash.

Promotion is the move into the last step (weight 100): at 100% stable has no
traffic left to compare with, so the analyses happen at the steps before it.

Late labels: a step is judged on a metric with ``labels`` only once its own traffic
is ``labels.delay`` old (and covered), so it lasts at least that long, and its
timeout is extended by the longest delay. Analyses that wait count toward nothing.
An early signal (``canary.early``, or a drift check's ``canary``) failing while the
labels wait rolls the canary back at once; the rollout ends, so the loop goes on.
The version waits in ``status.labelsPending`` (and is still evaluated) until the labels
of its traffic are due, then they confirm the rollback, reverse it (the version is
Validated again and its next rollout is judged on labels alone), or cannot decide.
"""

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from ..api.durations import spoken
from ..api.model import CanaryStatus, LabelsPending, ModelSpec, Step, Webhook
from ..api.vocabulary import (
    ANNOTATION_ABORT,
    ANNOTATION_APPROVE,
    CanaryPhase,
    LabelVerdict,
    PairOutcome,
)
from ..conditions import ConditionStatus, condition
from ..monitoring.snapshot import Snapshot
from ..serving.plan import EventNote, MarkVersion, VersionView
from .analysis import Judged, analyse, overall
from .hooks import NOT_ASKED, HookAnswer, HookVerdict, judge_hooks, of_type, recorded
from .pairs import build_pairs, rows

ROLE_CANARY = "canary"
Obj = dict[str, Any]


@dataclass(frozen=True)
class RolloutWorld:
    """What the decision needs, read from the cluster and the evaluator."""

    name: str
    spec: ModelSpec
    stable: str | None
    canary: CanaryStatus | None
    versions: Sequence[VersionView]
    canary_ready: bool
    observed_weight: int | None  # the canary's weight in the route now; None when unknown
    snapshot: Snapshot | None
    approval: str | None
    abort: str | None
    now: datetime
    # The answers of the webhook gates asked in this pass (``due_hooks`` says which).
    hooks: Mapping[str, HookAnswer] = field(default_factory=dict)
    # status.labelsPending: early rollbacks waiting for the labels of their traffic.
    pending: Sequence[LabelsPending] = ()


@dataclass
class RolloutDecision:
    """What to write, in this order: ``intent`` (status), ``marks``, the traffic split
    (``canary``'s version at ``weight``, stable the rest), ``marks_after``, then the
    status with ``canary`` and ``conditions``."""

    canary: CanaryStatus | None
    weight: int = 0
    intent: CanaryStatus | None = None
    marks: list[MarkVersion] = field(default_factory=list)
    marks_after: list[MarkVersion] = field(default_factory=list)
    events: list[EventNote] = field(default_factory=list)
    conditions: list[Obj] = field(default_factory=list)
    analysed: str | None = None  # the outcome of an analysis made in this pass
    pending: list[LabelsPending] | None = None  # status.labelsPending; None: as it is


def steps_hash(steps: Sequence[Step]) -> str:
    """A short hash of the rollout steps: a rollout remembers the steps it runs."""
    text = json.dumps([s.model_dump(mode="json", by_alias=True) for s in steps], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def decide(world: RolloutWorld) -> RolloutDecision:
    canary = world.canary or _adopt(world)
    decision = _maybe_start(world) if canary is None else _continue(world, canary)
    if world.hooks and decision.canary is not None:
        records = recorded(
            decision.canary.hooks, world.spec.rollout.webhooks, world.hooks, world.now
        )
        decision.canary = decision.canary.model_copy(update={"hooks": records})
    _label_verdicts(world, decision)
    return decision


def due_hooks(world: RolloutWorld) -> list[Webhook]:
    """The webhook gates to ask before deciding this pass: pre-rollout before the first
    weight, rollout hooks when an analysis is due, confirm-promotion while it waits."""
    canary, hooks = world.canary, world.spec.rollout.webhooks
    if canary is None or not hooks or world.spec.paused:
        return []
    if canary.phase == CanaryPhase.WAITING_FOR_CONFIRMATION:
        return of_type(hooks, "confirm-promotion") + (
            of_type(hooks, "rollout") if _fresh(world, canary) else []
        )
    if canary.phase != CanaryPhase.PROGRESSING:
        return []
    if canary.step == 0 and canary.weight == 0:
        return of_type(hooks, "pre-rollout")
    return of_type(hooks, "rollout") if _fresh(world, canary) else []


# --------------------------------------------------------------------------- start


def _candidate(world: RolloutWorld) -> VersionView | None:
    """The newest Validated version that does not serve."""
    waiting = [v for v in world.versions if v.phase == "Validated" and v.name != world.stable]
    return max(waiting, key=lambda v: v.order) if waiting else None


def _idle(reason: str, message: str) -> RolloutDecision:
    return RolloutDecision(None, conditions=[condition("Progressing", "False", reason, message)])


def _maybe_start(world: RolloutWorld) -> RolloutDecision:
    spec = world.spec
    candidate = _candidate(world)
    if candidate is None:
        return _idle("NoCandidate", "no Validated version waits for a rollout")
    if spec.pinned_version:
        return _idle(
            "Pinned", f"{candidate.name} waits: spec.pinnedVersion holds {spec.pinned_version}"
        )
    if spec.paused:
        return _idle("Paused", f"{candidate.name} waits: the Model is paused")
    if spec.automation not in ("propose", "promote"):
        return _idle(
            "AutomationLevel",
            f"{candidate.name} is Validated; automation is {spec.automation}: set propose "
            "or promote to roll it out",
        )
    if world.stable is None:
        return _idle("NoStable", f"{candidate.name} waits for a stable version to compare with")
    weights = "→".join(str(s.weight) for s in spec.rollout.steps)
    message = f"rolling out {candidate.name} against {world.stable}: weights {weights}"
    started = CanaryStatus(
        version=candidate.name,
        started=world.now,
        message=message,
        phase="Progressing",
        steps_hash=steps_hash(spec.rollout.steps),
        # Its labels reversed an early rollback of it: no early signal takes it back again.
        early_reversed=candidate.label_verdict == LabelVerdict.REVERSED,
    )
    return RolloutDecision(
        started,
        marks=[MarkVersion(candidate.name, ROLE_CANARY, "Canary", "RolloutStarted", message)],
        events=[EventNote("RolloutStarted", message)],
        conditions=[condition("Progressing", "True", "RolloutStarted", message)],
    )


def _adopt(world: RolloutWorld) -> CanaryStatus | None:
    """Rebuild a lost ``status.canary`` from the version in phase Canary and the route."""
    in_canary = [v for v in world.versions if v.phase == "Canary" and v.name != world.stable]
    if not in_canary:
        return None
    version = max(in_canary, key=lambda v: v.order)
    weight = world.observed_weight or 0
    steps = world.spec.rollout.steps
    step = max((i for i, s in enumerate(steps) if s.weight <= weight), default=0)
    return CanaryStatus(
        version=version.name,
        weight=weight,
        step=step,
        steps_hash=steps_hash(steps),
        started=world.now,
        step_started=world.now if weight else None,
        message=f"resumed from the world: {version.name} in phase Canary at weight {weight}",
    )


# --------------------------------------------------------------------------- progress


def _continue(world: RolloutWorld, canary: CanaryStatus) -> RolloutDecision:
    spec, version = world.spec, canary.version
    view = next((v for v in world.versions if v.name == version), None)
    if view is None:
        return _idle("CanaryVersionMissing", f"the canary's ModelVersion {version} is gone")
    if canary.phase == "RollingBack" or view.phase == "RolledBack":
        return _rollback(world, canary, "RolledBack", canary.message or "rolled back")
    if version == world.stable or view.phase == "Serving":
        return _promoted(canary, f"{version} serves production")
    if world.abort == version:
        return _rollback(world, canary, "Aborted", f"{ANNOTATION_ABORT}={version} was set")
    if spec.pinned_version:
        return _rollback(
            world, canary, "Pinned", f"spec.pinnedVersion holds production on {spec.pinned_version}"
        )
    newer = _candidate(world)
    if (
        spec.rollout.on_newer_version == "supersede"
        and newer is not None
        and newer.order > view.order
    ):
        return _rollback(world, canary, "Superseded", f"{newer.name} supersedes {version}")

    steps = spec.rollout.steps
    current = steps_hash(steps)
    if canary.steps_hash is None and canary.step < len(steps):
        canary = canary.model_copy(update={"steps_hash": current})  # began before the hash
    if canary.steps_hash != current or canary.step >= len(steps):
        return _restart_steps(world, canary, current)
    canary = _adopt_written_weight(world, canary)
    if spec.paused:
        return _hold(canary, CanaryPhase.PAUSED, "the Model is paused: the rollout is frozen")
    if steps[canary.step].weight == 100:
        return _advance_or_wait(world, canary)
    if canary.weight < steps[canary.step].weight:
        return _write_step_weight(world, canary)
    if canary.phase == "Paused":
        if world.approval != f"{version}/{canary.step}":
            return _hold(
                canary, CanaryPhase.PAUSED, _approve_hint(world, canary, canary.message or "")
            )
        canary = canary.model_copy(
            update={"phase": CanaryPhase.PROGRESSING, "step_started": world.now, "inconclusive": 0}
        )
    return _analyse(world, canary)


def _restart_steps(world: RolloutWorld, canary: CanaryStatus, current: str) -> RolloutDecision:
    """The steps were edited during the rollout: start again at the first step, with
    fresh counters (the level already spent on tests stays spent)."""
    steps = world.spec.rollout.steps
    weights = "→".join(str(s.weight) for s in steps)
    message = (
        f"{canary.version}: spec.rollout.steps changed during the rollout (now {weights}): "
        f"restarted at step 1 of {len(steps)} ({steps[0].weight}%)"
    )
    restarted = _fresh_step(canary, 0, canary.weight, world.now, message)
    restarted = restarted.model_copy(update={"steps_hash": current})
    if steps[0].weight == 100:
        decision = _advance_or_wait(world, restarted)
    else:
        restarted = restarted.model_copy(update={"weight": steps[0].weight})
        decision = RolloutDecision(
            restarted,
            steps[0].weight,
            conditions=[condition("Progressing", "True", "StepsChanged", message)],
        )
    decision.events.insert(0, EventNote("RolloutRestarted", message))
    return decision


def _adopt_written_weight(world: RolloutWorld, canary: CanaryStatus) -> CanaryStatus:
    """A weight the route holds for this step though status missed it: the write happened."""
    target = world.spec.rollout.steps[canary.step].weight
    if world.observed_weight == target and canary.weight != target:
        return canary.model_copy(update={"weight": target, "step_started": world.now})
    return canary


def _write_step_weight(world: RolloutWorld, canary: CanaryStatus) -> RolloutDecision:
    version, steps = canary.version, world.spec.rollout.steps
    if not world.canary_ready:
        what = (
            f"{version}'s revision of the InferenceService to be ready"
            if world.spec.serving.kserve is not None
            else f"the Deployment of {version} to be available"
        )
        return _hold(
            canary, CanaryPhase.PROGRESSING, f"waiting for {what}", reason="CanaryNotReady"
        )
    pre = of_type(world.spec.rollout.webhooks, "pre-rollout")
    if canary.step == 0 and canary.weight == 0 and pre:
        verdict = judge_hooks(pre, world.hooks)
        if verdict.failed:
            message = f"{version}: a pre-rollout webhook failed: {verdict.describe()}"
            return _rollback(world, canary, "PreRolloutHookFailed", message[:1024])
        if not verdict.passed:
            return _hooks_hold(world, canary, "pre-rollout", verdict)
    weight = steps[canary.step].weight
    message = (
        f"{version}: weight {canary.weight}% → {weight}% (step {canary.step + 1} of {len(steps)})"
    )
    moved = _fresh_step(canary, canary.step, weight, world.now, message)
    return RolloutDecision(
        moved,
        weight,
        events=[EventNote("WeightChanged", message)],
        conditions=[condition("Progressing", "True", "StepStarted", message)],
    )


def _fresh_step(
    canary: CanaryStatus, step: int, weight: int, now: datetime, message: str
) -> CanaryStatus:
    return canary.model_copy(
        update={
            "step": step,
            "weight": weight,
            "phase": CanaryPhase.PROGRESSING,
            "step_started": now,
            "successes": 0,
            "failures": 0,
            "inconclusive": 0,
            "message": message,
        }
    )


def _hold(
    canary: CanaryStatus, phase: CanaryPhase, message: str, reason: str | None = None
) -> RolloutDecision:
    held = canary.model_copy(update={"phase": phase, "message": message})
    type_reason = reason or phase
    return RolloutDecision(
        held,
        canary.weight,
        conditions=[condition("Progressing", "True", type_reason, message)],
    )


def _fresh(world: RolloutWorld, canary: CanaryStatus) -> bool:
    """A new evaluation, made after this step's weight was written, one interval on."""
    snapshot = world.snapshot
    if world.stable is None or snapshot is None or canary.step_started is None:
        return False
    if snapshot.time < canary.step_started:
        return False
    if canary.last_analysis is None:
        return True
    interval = world.spec.rollout.analysis.interval.delta
    # A little slack: evaluations land on a period of their own, not on the interval's.
    return snapshot.time - canary.last_analysis >= interval - timedelta(milliseconds=500)


def label_delay(spec: ModelSpec) -> timedelta:
    """The longest ``labels.delay`` of the metrics that judge the canary on labels."""
    return max(
        (
            m.labels.delay.delta
            for m in spec.metrics
            if m.labels is not None and m.canary.enabled and not m.canary.early
        ),
        default=timedelta(0),
    )


def _judge(
    world: RolloutWorld, canary: CanaryStatus, since: datetime
) -> tuple[list[Judged], list[Judged]]:
    """This analysis: (the pairs judged on labels and metrics, the early signals' pairs).
    ``since``: when the traffic being judged began."""
    assert world.snapshot is not None
    assert world.stable is not None
    age = world.snapshot.time - since
    pairs = build_pairs(world.spec, world.snapshot.evaluated, world.stable, canary.version, age)
    judged = analyse(pairs, world.spec.rollout.analysis.confidence, canary.tested + 1)
    return [j for j in judged if not j.pair.early], [j for j in judged if j.pair.early]


def _analyse(world: RolloutWorld, canary: CanaryStatus) -> RolloutDecision:
    if not _fresh(world, canary):
        return _after_analysis(world, canary)
    assert world.snapshot is not None
    assert canary.step_started is not None
    settings = world.spec.rollout.analysis
    judged, early = _judge(world, canary, canary.step_started)
    waiting = any(j.outcome == PairOutcome.WAITING for j in judged)
    if waiting and not canary.early_reversed:
        failed = [j for j in early if j.outcome == PairOutcome.FAIL]
        if failed:
            counted = _count(canary, judged + early, world.snapshot, early)
            decision = _early_rollback(world, counted, failed)
            decision.analysed = PairOutcome.FAIL
            return decision
        canary = _count(canary, judged + early, world.snapshot, early)
    else:
        canary = _count(canary, judged, world.snapshot)
    outcome = overall(judged)
    hooks = judge_hooks(of_type(world.spec.rollout.webhooks, "rollout"), world.hooks)
    canary, outcome = _fold_hooks(canary, outcome, hooks)
    if canary.failures >= settings.failure_limit:
        message = _failure_message(canary, judged, hooks)
        decision = _rollback(world, canary, "AnalysisFailed", message)
    elif outcome == "inconclusive" and canary.inconclusive >= settings.max_inconclusive:
        why = f"{canary.inconclusive} inconclusive analyses at this step"
        decision = _inconclusive_end(world, canary, why)
    elif hooks.held:
        decision = _hooks_hold(world, canary, "rollout", hooks)
    else:
        decision = _after_analysis(world, canary)
    decision.analysed = outcome
    return decision


def _fold_hooks(
    canary: CanaryStatus, outcome: PairOutcome, hooks: HookVerdict
) -> tuple[CanaryStatus, PairOutcome]:
    """The rollout hooks' answers on top of the metrics' analysis: a failing hook fails
    it, one that holds keeps it from counting as a success, an unanswered one makes it
    inconclusive (unless the metrics already failed or wait)."""
    if hooks.passed or outcome in (PairOutcome.FAIL, PairOutcome.WAITING):
        return canary, outcome
    if hooks.failed:
        update = {"failures": canary.failures + 1, "successes": 0}
        if outcome == PairOutcome.INCONCLUSIVE:  # counted as inconclusive: a failure instead
            update["inconclusive"] = canary.inconclusive - 1
        return canary.model_copy(update=update), PairOutcome.FAIL
    if hooks.held:
        successes = canary.successes - 1 if outcome == PairOutcome.PASS else canary.successes
        return canary.model_copy(update={"successes": max(0, successes)}), outcome
    if outcome == PairOutcome.PASS:
        update = {
            "successes": max(0, canary.successes - 1),
            "inconclusive": canary.inconclusive + 1,
        }
        return canary.model_copy(update=update), PairOutcome.INCONCLUSIVE
    return canary, outcome


def _hooks_hold(
    world: RolloutWorld, canary: CanaryStatus, kind: str, verdict: HookVerdict
) -> RolloutDecision:
    """A webhook gate says no (or nothing): the step waits, within its timeout."""
    started = canary.step_started or canary.started or world.now
    timeout = world.spec.rollout.analysis.step_timeout
    if world.now - started > timeout.delta + label_delay(world.spec):
        why = f"the {kind} webhooks did not pass within {timeout}: {verdict.describe()}"
        return _inconclusive_end(world, canary, why[:900])
    if all(a.detail == NOT_ASKED for a in verdict.unanswered) and not (
        verdict.failed or verdict.held
    ):
        message = f"{canary.version}: asking the {kind} webhooks"
    else:
        message = f"{canary.version}: waiting for the {kind} webhooks: {verdict.describe()}"
    phase = (
        CanaryPhase.WAITING_FOR_CONFIRMATION
        if kind == "confirm-promotion"
        else CanaryPhase.PROGRESSING
    )
    decision = _hold(canary, phase, message[:1024], reason="WebhookHolding")
    if kind == "confirm-promotion" and canary.phase != phase:
        decision.events.append(EventNote("WaitingForConfirmation", message[:1024]))
    return decision


def _after_analysis(world: RolloutWorld, canary: CanaryStatus) -> RolloutDecision:
    """Advance once the step's successes and duration are in, or end at its deadline."""
    settings = world.spec.rollout.analysis
    assert canary.step_started is not None
    elapsed = world.now - canary.step_started
    step = world.spec.rollout.steps[canary.step]
    if canary.successes >= settings.consecutive_successes and elapsed >= step.duration.delta:
        return _advance_or_wait(world, canary)
    delay = label_delay(world.spec)
    if elapsed > settings.step_timeout.delta + delay:
        within = f"{settings.step_timeout}" + (f" + labels.delay {spoken(delay)}" if delay else "")
        return _inconclusive_end(
            world, canary, f"step {canary.step + 1} did not conclude within {within}"
        )
    return _hold(
        canary, CanaryPhase.PROGRESSING, _progress_message(world, canary), reason="Analysing"
    )


def _count(
    canary: CanaryStatus,
    judged: list[Judged],
    snapshot: Snapshot,
    uncounted: list[Judged] | None = None,
) -> CanaryStatus:
    """Fold one analysis into the step's counters; ``uncounted`` pairs (early signals)
    are shown in the table but count toward nothing. An analysis that waits for labels
    counts toward nothing either."""
    outcome = overall([j for j in judged if j not in (uncounted or [])])
    if outcome == PairOutcome.WAITING:
        counters = {}
    else:
        counters = {
            "successes": canary.successes + 1 if outcome == PairOutcome.PASS else 0,
            "failures": canary.failures + (outcome == PairOutcome.FAIL),
            "inconclusive": canary.inconclusive + (outcome == PairOutcome.INCONCLUSIVE),
        }
    return canary.model_copy(
        update=counters
        | {
            "last_analysis": snapshot.time,
            "analysis": rows(judged),
            "tested": canary.tested + any(j.p_value is not None for j in judged),
        }
    )


def _progress_message(world: RolloutWorld, canary: CanaryStatus) -> str:
    analysis = world.spec.rollout.analysis
    text = (
        f"{canary.version} at {canary.weight}% (step {canary.step + 1} of "
        f"{len(world.spec.rollout.steps)}): {canary.successes}/"
        f"{analysis.consecutive_successes} successes, {canary.failures}/"
        f"{analysis.failure_limit} failures, {canary.inconclusive}/"
        f"{analysis.max_inconclusive} inconclusive"
    )
    waiting = [r for r in canary.analysis if r.outcome == PairOutcome.WAITING]
    if waiting:
        first = waiting[0]
        text += f"; {first.metric} on slice {first.slice}: {first.reason}"
        if len(waiting) > 1:
            text += f" (and {len(waiting) - 1} more pairs waiting)"
    return text


# --------------------------------------------------------------------------- early signals


def _details(judged: list[Judged]) -> str:
    listed = "; ".join(f"{j.pair.metric} on slice {j.pair.slice}: {j.reason}" for j in judged[:4])
    return listed + (f"; and {len(judged) - 4} more" if len(judged) > 4 else "")


def _early_rollback(
    world: RolloutWorld, canary: CanaryStatus, failed: list[Judged]
) -> RolloutDecision:
    """An early signal failed while the labels wait: a rollback now, like any other; the
    version waits in ``labelsPending`` for the labels of its traffic to judge it."""
    delay = label_delay(world.spec)
    due = world.now + delay
    message = (
        f"{canary.version}: early signal failed at step {canary.step + 1} "
        f"({canary.weight}%), before its labels: {_details(failed)}; its labels judge this "
        f"rollback once they have come ({spoken(delay)})"
    )[:1024]
    decision = _rollback(world, canary, "EarlyRollback", message)
    signal = "; ".join(f"{j.pair.metric} on slice {j.pair.slice}" for j in failed)
    pending = [p for p in world.pending if p.version != canary.version]
    decision.pending = [
        *pending,
        LabelsPending(version=canary.version, due=due, signal=signal[:512]),
    ]
    return decision


def label_grace(spec: ModelSpec) -> timedelta:
    """How long after its labels are due a rolled-back version can still be judged: its
    traffic leaves the metrics' windows after the longest window of a labelled metric."""
    windows = [m.window.delta for m in spec.metrics if m.labels is not None and m.canary.enabled]
    return max(windows, default=timedelta(0)) + spec.evaluation_interval.delta


def _label_verdicts(world: RolloutWorld, decision: RolloutDecision) -> None:
    """The labels' verdict on each early rollback whose labels are due: confirmed (a
    labelled pair fails), reversed (every labelled pair passes: Validated again, if
    nothing newer took its place), or undecided once its traffic left the windows."""
    snapshot, stable = world.snapshot, world.stable
    pending = decision.pending if decision.pending is not None else list(world.pending)
    if snapshot is None or stable is None or not pending:
        return
    kept = []
    for entry in pending:
        view = next((v for v in world.versions if v.name == entry.version), None)
        if view is None or snapshot.time < entry.due:
            kept.append(entry) if view is not None else None
            continue
        pairs = build_pairs(world.spec, snapshot.evaluated, stable, entry.version)
        settings = world.spec.rollout.analysis
        judged = [j for j in analyse(pairs, settings.confidence) if not j.pair.early]
        outcome = overall(judged)
        if outcome == PairOutcome.FAIL:
            failed = [j for j in judged if j.outcome == PairOutcome.FAIL]
            text = f"the labels confirm the early rollback of {entry.version}: {_details(failed)}"
            _judged_by_labels(decision, entry, LabelVerdict.CONFIRMED, text, None)
        elif outcome == PairOutcome.PASS:
            _reverse(world, decision, entry, view, judged)
        elif snapshot.time > entry.due + label_grace(world.spec):
            why = [j for j in judged if j.outcome != PairOutcome.PASS][:2]
            text = (
                f"the labels of {entry.version}'s traffic could not judge its early rollback "
                f"({entry.signal}): {_details(why)}; it stays rolled back"
            )
            _judged_by_labels(decision, entry, LabelVerdict.UNDECIDED, text, None)
        else:
            kept.append(entry)
    decision.pending = kept


def _reverse(
    world: RolloutWorld,
    decision: RolloutDecision,
    entry: LabelsPending,
    view: VersionView,
    judged: list[Judged],
) -> None:
    stable = next((v for v in world.versions if v.name == world.stable), None)
    newer = [
        v.name
        for v in world.versions
        if v.order > view.order and v.phase in ("Validated", "Canary", "Serving")
    ]
    text = (
        f"the labels reverse the early rollback of {entry.version} ({entry.signal}): every "
        f"labelled pair passes ({len(judged)} judged)"
    )
    if newer or (stable is not None and stable.order >= view.order):
        text += f"; not rolled out again: {', '.join(newer) or world.stable} is newer"
        _judged_by_labels(decision, entry, LabelVerdict.REVERSED, text, None)
    else:
        text += "; Validated again, its next rollout judged on labels alone"
        _judged_by_labels(decision, entry, LabelVerdict.REVERSED, text, "Validated")


def _judged_by_labels(
    decision: RolloutDecision,
    entry: LabelsPending,
    verdict: LabelVerdict,
    text: str,
    phase: str | None,
) -> None:
    text = text[:1024]
    status = {"labelVerdict": verdict.value, "labelVerdictMessage": text}
    reason = {
        LabelVerdict.CONFIRMED: "EarlyRollbackConfirmed",
        LabelVerdict.REVERSED: "EarlyRollbackReversed",
        LabelVerdict.UNDECIDED: "EarlyRollbackUndecided",
    }[verdict]
    decision.marks.append(MarkVersion(entry.version, None, phase, reason, text, status))
    warn = verdict == LabelVerdict.REVERSED  # the early signal took back a good candidate
    decision.events.append(EventNote(reason, text, "Warning" if warn else "Normal"))


def _failure_message(
    canary: CanaryStatus, judged: list[Judged], hooks: HookVerdict | None = None
) -> str:
    failing = [j for j in judged if j.outcome == "fail"]
    details = "; ".join(f"{j.pair.metric} on slice {j.pair.slice}: {j.reason}" for j in failing[:4])
    more = f"; and {len(failing) - 4} more" if len(failing) > 4 else ""
    if hooks is not None and hooks.failed:
        said = "; ".join(a.describe() for a in hooks.failed)
        details = f"{details}; {said}" if details else said
    return (
        f"{canary.version} failed the analysis at step {canary.step + 1} "
        f"({canary.weight}%): {details}{more}"
    )[:1024]


def _inconclusive_end(world: RolloutWorld, canary: CanaryStatus, why: str) -> RolloutDecision:
    if world.spec.rollout.analysis.on_inconclusive == "rollback":
        return _rollback(world, canary, "Inconclusive", f"{canary.version}: {why}")
    paused = canary.model_copy(
        update={"phase": CanaryPhase.PAUSED, "message": f"{canary.version}: {why}"}
    )
    decision = _hold(paused, CanaryPhase.PAUSED, _approve_hint(world, paused, paused.message or ""))
    if canary.phase != "Paused":
        decision.events.append(EventNote("RolloutPaused", paused.message or "", "Warning"))
    return decision


def _approval_needed(world: RolloutWorld, step: int) -> bool:
    steps = world.spec.rollout.steps
    before_promotion = step + 1 >= len(steps) - 1
    return steps[step].approval or (world.spec.automation == "propose" and before_promotion)


def _approve_hint(world: RolloutWorld, canary: CanaryStatus, why: str) -> str:
    return (
        f"{why}; to go on: kubectl annotate model {world.name} "
        f"{ANNOTATION_APPROVE}={canary.version}/{canary.step} --overwrite"
    )


def _advance_or_wait(world: RolloutWorld, canary: CanaryStatus) -> RolloutDecision:
    steps, version = world.spec.rollout.steps, canary.version
    if _approval_needed(world, canary.step) and world.approval != f"{version}/{canary.step}":
        waiting = canary.model_copy(update={"phase": CanaryPhase.WAITING_FOR_APPROVAL})
        why = f"{version} passed step {canary.step + 1} and waits for an approval"
        message = _approve_hint(world, waiting, why)
        decision = _hold(waiting, CanaryPhase.WAITING_FOR_APPROVAL, message)
        if canary.phase != "WaitingForApproval":
            decision.events.append(EventNote("WaitingForApproval", message))
        return decision
    following = min(canary.step + 1, len(steps) - 1)
    if steps[canary.step].weight == 100 or steps[following].weight == 100:
        if not world.canary_ready:
            return _hold(canary, CanaryPhase.PROGRESSING, f"waiting for {version} to be available")
        confirm = of_type(world.spec.rollout.webhooks, "confirm-promotion")
        if confirm:
            verdict = judge_hooks(confirm, world.hooks)
            if not verdict.passed:
                return _hooks_hold(world, canary, "confirm-promotion", verdict)
        return _promote(world, canary)
    weight = steps[following].weight
    message = (
        f"{version} passed step {canary.step + 1} ({canary.weight}%): "
        f"weight → {weight}% (step {following + 1} of {len(steps)})"
    )
    moved = _fresh_step(canary, following, weight, world.now, message)
    return RolloutDecision(
        moved,
        weight,
        events=[EventNote("StepAdvanced", message)],
        conditions=[condition("Progressing", "True", "StepAdvanced", message)],
    )


# --------------------------------------------------------------------------- faults


def traffic_write_failed(
    decision: RolloutDecision,
    previous: CanaryStatus | None,
    progressing: Obj | None,
    error: str,
) -> RolloutDecision:
    """The decision once its traffic split could not be written (route missing or refused,
    API error): status keeps the rollout as it was (or the rollback intent already
    persisted), the step's Events are dropped (they would be untrue), nothing that follows
    the split is marked, and a Warning says why — once, not at every retry."""
    canary = decision.intent or previous
    message = f"the traffic split could not be written: {error}"[:1000]
    status: ConditionStatus = "True" if canary else "False"
    events = decision.events if decision.intent is not None else []
    if (progressing or {}).get("reason") != "TrafficWriteFailed":
        events = [*events, EventNote("TrafficWriteFailed", message, "Warning")]
    return replace(
        decision,
        canary=canary,
        events=events,
        marks_after=[],
        conditions=[condition("Progressing", status, "TrafficWriteFailed", message)],
    )


# --------------------------------------------------------------------------- endings


def _promote(world: RolloutWorld, canary: CanaryStatus) -> RolloutDecision:
    message = (
        f"{canary.version} promoted: it replaces {world.stable} at 100% after "
        f"{len(world.spec.rollout.steps) - 1} analysed step(s)"
    )
    decision = _promoted(canary, message)
    decision.marks.append(MarkVersion(canary.version, "stable", "Serving", "Promoted", message))
    decision.events.append(EventNote("Promoted", message))
    return decision


def _promoted(canary: CanaryStatus, message: str) -> RolloutDecision:
    return RolloutDecision(
        None,
        conditions=[
            condition("Promoted", "True", "Promoted", message),
            condition("Progressing", "False", "Promoted", message),
        ],
    )


def _rollback(
    world: RolloutWorld, canary: CanaryStatus, reason: str, message: str
) -> RolloutDecision:
    """Weights back to stable first; the version is marked after, the intent before."""
    view = next((v for v in world.versions if v.name == canary.version), None)
    first_time = canary.phase != "RollingBack" and (view is None or view.phase != "RolledBack")
    intent = canary.model_copy(update={"phase": CanaryPhase.ROLLING_BACK, "message": message})
    decision = RolloutDecision(
        None,
        intent=intent if first_time else None,
        conditions=[
            condition("RolledBack", "True", reason, message),
            condition("Progressing", "False", "RolledBack", message),
        ],
    )
    if view is not None and view.phase != "RolledBack":
        decision.marks_after.append(
            MarkVersion(canary.version, None, "RolledBack", reason, message)
        )
    if first_time:
        decision.events.append(EventNote("RolledBack", message, "Warning"))
    return decision
