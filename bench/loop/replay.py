"""ModelLoop's decisions replayed over a stream, in simulated time. Everything that
decides is the operator's own code; this module plays the world around it and does,
step by step, what the handlers do with the decisions.

The world is kept as the cluster would hold it: the Model's status (verdicts,
conditions, stable version, canary, training bookkeeping), the ModelVersions as objects
(labels, annotations, spec, status), and the training Job. Each simulated day:

- at midnight, one evaluation (as ``monitoring.evaluator``): ``target_of`` names the
  live versions; the outcomes whose labels arrived in each metric's window (the ledger),
  per slice and version, are the observations; ``evaluate_model`` judges them and folds
  them into the breach rules; ``update_status`` writes the verdict entries;
- a minute past every hour, the reconciles:
  the serving reconcile (``choose_stable``, ``rollout.machine.decide`` on the last
  evaluation's snapshot, the version marks, the traffic split, the serving plan's role
  marks), then the training reconcile (the offline gate ``validate`` on the candidates
  awaiting it, the per-trigger bookkeeping, ``retraining.decide.decide``: a Start
  reserves the training and its Job, built by ``build_job``, trains at once on the data
  window it is given; the Job completes half an hour later and the next reconcile's
  Finish makes the ModelVersion with ``build_version`` and records the training; the
  versions beyond ``history.keep`` go), then the serving reconcile again;
- between reconciles, the hour's traffic is served: each example by the canary when its
  draw falls under the canary's weight, else by stable.

What stands in: the Kubernetes API (objects live in this one), Prometheus and the
feedback service (the ledger counts the outcomes exactly), the Job and its pod (the
trainer module; the result is handed over without a termination message), Deployments
(a version is ready at once) and the traffic provider (the split is exact).
"""

import math
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from examples.trainer.churn import failing_since

from modelloop.api.model import CanaryStatus, TrainingRecord, TrainingStatus
from modelloop.api.modelversion import ModelVersionSpec
from modelloop.api.vocabulary import ANNOTATION_ROLE_SINCE, ANNOTATION_SERVED, LABEL_ROLE
from modelloop.conditions import stamp
from modelloop.monitoring.evaluate import evaluate_model
from modelloop.monitoring.evaluator import target_of
from modelloop.monitoring.plan import SeriesKey
from modelloop.monitoring.readings import Readings
from modelloop.monitoring.snapshot import Snapshot
from modelloop.monitoring.status import update_status
from modelloop.monitoring.verdicts import BreachState, Observation
from modelloop.retraining.decide import (
    Finish,
    JobView,
    Rebaseline,
    Start,
    TrainingWorld,
    decide,
    kept_history,
    trigger_states,
)
from modelloop.retraining.holds import Hold
from modelloop.retraining.jobs import build_job, build_version, version_name
from modelloop.retraining.result import TrainingResult
from modelloop.retraining.retention import expired
from modelloop.retraining.world import training_world
from modelloop.rollout import machine
from modelloop.rollout.machine import RolloutWorld
from modelloop.serving.plan import ROLE_STABLE, MarkVersion, VersionView, choose_stable
from modelloop.validation.gates import awaiting_judgement, validate

from .ledger import Ledger, Run, Training
from .policy import Policy
from .streams import DAY, Floats, Stream
from .trainer import Trained, bootstrap, train

Obj = dict[str, Any]
NAMESPACE = "bench"
HOUR = 3600.0
RECONCILE_AT = 60.0  # seconds past each hour: after the hour's evaluation
JOB_SECONDS = 1800.0  # a training Job completes half an hour after it starts
PASSES = 10  # reconciles of one kind in a row, until nothing changes


class Replay:
    def __init__(
        self, stream: Stream, policy: Policy, warmup: int, seed: int, whole_window: bool = False
    ) -> None:
        self.stream, self.spec, self.policy, self.warmup = stream, policy.spec, policy, warmup
        self.whole_window = whole_window
        self.ledger = Ledger(stream, seed)
        self.slice_index = {name: i for i, name in enumerate(stream.slices)}
        self.created = self.at(warmup * DAY)
        self.model: Obj = {
            "apiVersion": "modelloop.dev/v1alpha1",
            "kind": "Model",
            "metadata": {
                "name": policy.model,
                "namespace": NAMESPACE,
                "uid": "bench",
                "generation": 1,
                "creationTimestamp": stamp(self.created),
            },
        }
        # The first version, made outside ModelLoop before the Model: it serves, with the
        # offline metrics its training reported (the level a maxDrop objective reads).
        first = f"{policy.model}-bootstrap"
        trained = bootstrap(stream, warmup * DAY)
        metrics = trained.metrics.model_dump(by_alias=True, exclude_none=True)
        self.versions: dict[str, Obj] = {
            first: {
                "metadata": {
                    "name": first,
                    "namespace": NAMESPACE,
                    "labels": {LABEL_ROLE: ROLE_STABLE},
                    "annotations": {
                        ANNOTATION_ROLE_SINCE: stamp(self.created),
                        ANNOTATION_SERVED: stamp(self.created),
                    },
                    "creationTimestamp": stamp(self.created),
                },
                "spec": {"model": policy.model, "uri": f"file:///{first}", "metrics": metrics},
                "status": {"phase": "Serving", "lastTransitionTime": stamp(self.created)},
            }
        }
        self.weights: dict[str, Floats] = {first: trained.weights}
        self.ids = {first: 0}  # version -> its index in the ledger
        self.stable = first
        self.canary: CanaryStatus | None = None
        self.route: tuple[str | None, int] = (None, 0)  # the canary in the split, its weight
        self.training = TrainingStatus()
        self.verdicts: list[Obj] = []
        self.conditions: list[Obj] = []
        self.states: dict[SeriesKey, BreachState] = {}
        self.snapshot: Snapshot | None = None
        self.job: tuple[Obj, float, Trained | None] | None = None  # body, completion, result
        self.trainings: dict[str, Training] = {}  # by the version it makes
        self.marks = 0  # version marks written so far

    @property
    def name(self) -> str:
        return self.policy.model

    def at(self, seconds: float) -> datetime:
        return self.stream.start + timedelta(seconds=seconds)

    def run(self) -> Run:
        daily = []
        for day in range(self.warmup, self.stream.days):
            start = day * DAY
            self.evaluate(start)
            for hour in range(24):
                now = start + hour * HOUR
                self.reconcile(now + RECONCILE_AT)
                self.serve(now, now + HOUR)
            daily.append(self.ledger.day(day))
        accuracy, worst = (np.array(column) for column in zip(*daily, strict=True))
        trainings = tuple(self.trainings.values())
        return Run(self.policy.name, False, accuracy, worst, trainings)

    def reconcile(self, seconds: float) -> None:
        self.rollout(seconds)
        self.retrain(seconds)
        self.rollout(seconds)

    # ------------------------------------------------------------------ serving

    def serve(self, start: float, end: float) -> None:
        stable = (self.ids[self.stable], self.weights[self.stable])
        canary, weight = self.route
        if canary is None or weight == 0:
            self.ledger.serve(start, end, stable)
        else:
            self.ledger.serve(start, end, stable, (self.ids[canary], self.weights[canary]), weight)

    def evaluate(self, seconds: float) -> None:
        now = self.at(seconds)
        canary = {"version": self.canary.version} if self.canary is not None else None
        body = self.model | {"status": {"stableVersion": self.stable, "canary": canary}}
        objects = {(NAMESPACE, name): v for name, v in self.versions.items()}
        target = target_of(body, self.spec, objects)
        readings = Readings()
        for metric in self.spec.metrics:
            since = seconds - metric.window.delta.total_seconds()
            right, total = self.ledger.outcomes(since, seconds, len(self.ids))
            for piece in target.slices(metric.slices):
                s = self.slice_index[piece.name]
                for version in target.versions:
                    n = int(total[self.ids[version], s])
                    value = right[self.ids[version], s] / n if n else math.nan  # 0/0, as PromQL
                    key = SeriesKey("metric", metric.name, piece.name, version)
                    readings.metrics[key] = Observation(float(value), float(n))
        evaluated, self.states = evaluate_model(
            self.spec, readings, self.states, now, target.validated
        )
        update = update_status(self.verdicts, self.conditions, evaluated, now, 1)
        self.verdicts, self.conditions = update.verdicts, update.conditions
        self.snapshot = Snapshot(now, tuple(evaluated))

    def views(self) -> list[VersionView]:
        return [VersionView.of(v) for v in self.versions.values()]

    def rollout(self, seconds: float) -> None:
        """The serving reconcile, until it changes nothing."""
        now = self.at(seconds)
        for _ in range(PASSES):
            before = (self.canary, self.route, self.stable, self.marks)
            deployed = [name for name in (self.stable, self.route[0]) if name]
            choice = choose_stable(self.spec.pinned_version, self.stable, self.views(), deployed)
            route_canary, weight = self.route
            observed = weight if self.canary and route_canary == self.canary.version else 0
            decision = machine.decide(
                RolloutWorld(
                    name=self.name,
                    spec=self.spec,
                    stable=choice.version,
                    canary=self.canary,
                    versions=self.views(),
                    canary_ready=True,
                    observed_weight=observed,
                    snapshot=self.snapshot,
                    approval=None,
                    abort=None,
                    now=now,
                )
            )
            if decision.intent is not None:
                self.canary = decision.intent
            for mark in decision.marks:
                self.mark(mark, now)
            chosen = choose_stable(self.spec.pinned_version, self.stable, self.views(), deployed)
            assert chosen.version is not None
            canary = decision.canary
            self.route = (canary.version, decision.weight) if canary is not None else (None, 0)
            self.serving_marks(chosen.version, now)
            for mark in decision.marks_after:
                self.mark(mark, now)
            self.stable, self.canary = chosen.version, canary
            if before == (self.canary, self.route, self.stable, self.marks):
                return

    def serving_marks(self, stable: str, now: datetime) -> None:
        """The serving plan's marks: the stable version carries the role and serves; any
        other that did is retired."""
        for view in self.views():
            if view.name == stable and (view.role != ROLE_STABLE or view.phase != "Serving"):
                moving = "Serving" if view.phase != "Serving" else None
                self.mark(MarkVersion(view.name, ROLE_STABLE, moving, "Chosen", ""), now)
            elif view.name != stable and (view.role == ROLE_STABLE or view.phase == "Serving"):
                retired = "Retired" if view.phase == "Serving" else None
                self.mark(MarkVersion(view.name, None, retired, "Replaced", ""), now)

    def mark(self, mark: MarkVersion, now: datetime) -> None:
        """As the serving reconcile writes a mark: the role label, then the phase."""
        self.marks += 1
        version = self.versions[mark.version]
        meta = version["metadata"]
        labels, annotations = meta.setdefault("labels", {}), meta.setdefault("annotations", {})
        labels.pop(LABEL_ROLE, None)
        annotations.pop(ANNOTATION_ROLE_SINCE, None)
        if mark.role is not None:
            labels[LABEL_ROLE] = mark.role
            annotations[ANNOTATION_ROLE_SINCE] = annotations[ANNOTATION_SERVED] = stamp(now)
        if mark.phase is not None:
            version["status"] = (version.get("status") or {}) | {
                "phase": mark.phase,
                "reason": mark.reason,
                "message": mark.message,
                "lastTransitionTime": stamp(now),
            }
        training = self.trainings.get(mark.version)
        if training is not None and mark.phase == "RolledBack":
            training.outcome = "rolledBack"
        elif training is not None and mark.phase == "Serving":
            training.outcome = "promoted"

    # ------------------------------------------------------------------ retraining

    def retrain(self, seconds: float) -> None:
        """The training reconcile, until it holds."""
        now = self.at(seconds)
        for _ in range(PASSES):
            self.judge(now)
            decision = decide(self.world(now, seconds))
            if isinstance(decision, Start):
                self.start(decision, seconds)
            elif isinstance(decision, Finish):
                self.finish(decision.record, now)
            elif isinstance(decision, Rebaseline):
                self.training = self.training.model_copy(
                    update={"new_data_baseline": decision.count}
                )
            elif isinstance(decision, Hold):
                break
            else:  # EnsureJob, Adopt: status and the Jobs never disagree here
                raise AssertionError(f"unexpected decision {decision}")
        canary = self.canary.version if self.canary is not None else None
        versions = list(self.versions.values())
        for name in expired(versions, self.spec.history.keep, self.stable, canary):
            del self.versions[name]

    def judge(self, now: datetime) -> None:
        """The offline gate on the candidates awaiting it (``validate_candidates``)."""
        for version in awaiting_judgement(list(self.versions.values()), self.stable):
            parsed = ModelVersionSpec.model_validate(version["spec"])
            trigger = parsed.lineage.trigger
            result = validate(self.spec, parsed.metrics, trigger.failing if trigger else [])
            version["status"] = {
                "phase": "Validated" if result.validated else "Rejected",
                "reason": "GatesPassed" if result.validated else "GatesFailed",
                "message": result.summary()[:1024],
                "gates": [c.to_status() for c in result.checks],
                "lastTransitionTime": stamp(now),
            }
            if not result.validated:
                self.trainings[version["metadata"]["name"]].outcome = "rejected"

    def world(self, now: datetime, seconds: float) -> TrainingWorld:
        """The TrainingWorld as the training reconcile reads it (``training_world``, as the
        handler assembles it); status.training's per-trigger bookkeeping brought up to date
        first."""
        jobs = []
        if self.job is not None:
            body, done, _ = self.job
            jobs.append(JobView(body, "Complete" if seconds >= done else None))
        canary = {"version": self.canary.version} if self.canary is not None else None
        status = {"verdicts": self.verdicts, "stableVersion": self.stable, "canary": canary}
        # The new-data counter: the labelled examples that have arrived.
        arrived = float(np.searchsorted(self.ledger.arrivals, seconds))
        world = training_world(
            self.model | {"status": status},
            self.spec,
            self.training,
            self.versions.values(),
            jobs,
            arrived,
            now,
        )
        tracked = trigger_states(world)
        if tracked != self.training.triggers:
            self.training = self.training.model_copy(update={"triggers": tracked})
            world = replace(world, training=self.training)
        return world

    def start(self, start: Start, seconds: float) -> None:
        record = start.record
        self.training = self.training.model_copy(
            update={"running": record, "next_sequence": start.next_sequence}
        )
        base_uri = self.versions[self.stable]["spec"]["uri"]
        body = build_job(
            self.model, self.spec, record, self.stable, start.failing, base_uri, start.onset
        )
        trained = self.run_job(body)
        self.job = (body, seconds + JOB_SECONDS, trained)
        day = int(seconds // DAY) - self.warmup
        self.trainings[version_name(self.name, record.sequence)] = Training(day, "pending")

    def run_job(self, body: Obj) -> Trained | None:
        """The Job's pod: the trainer on the data window its env gives, with the failing
        slices' onsets (MODELLOOP_FAILING_SINCE) unless it trains on whole windows."""
        container = body["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e["value"] for e in container["env"]}
        origin = self.stream.start.timestamp()
        start, end = (
            datetime.fromisoformat(env[name]).timestamp() - origin
            for name in ("MODELLOOP_DATA_START", "MODELLOOP_DATA_END")
        )
        since = None
        if not self.whole_window:
            onset = failing_since(env["MODELLOOP_FAILING_SINCE"], self.stream.slices)
            since = {i: when - origin for i, when in onset.items()}
        return train(self.stream, start, end, self.weights[self.stable], since)

    def finish(self, record: TrainingRecord, now: datetime) -> None:
        """As the training handler records a finished Job: the ModelVersion, then status."""
        assert self.job is not None
        body, _, trained = self.job
        self.job = None
        version = None
        if trained is not None:
            result = TrainingResult.model_validate(
                {
                    "artifactURI": f"file:///{self.name}/{record.sequence}",
                    "metrics": trained.metrics.model_dump(by_alias=True, exclude_none=True),
                }
            )
            manifest = build_version(self.model, body, record, result)
            version = manifest["metadata"]["name"]
            manifest["metadata"]["creationTimestamp"] = stamp(now)
            self.versions[version] = manifest
            self.weights[version] = trained.weights
            self.ids[version] = len(self.ids)
        else:
            self.trainings[version_name(self.name, record.sequence)].outcome = "failed"
        failure = None if trained is not None else "no labelled example in the data window"
        finished = record.model_copy(
            update={
                "finished": now,
                "outcome": "Failed" if failure else "Succeeded",
                "version": version,
                "message": failure,
            }
        )
        failures = self.training.consecutive_failures + 1 if failure else 0
        self.training = self.training.model_copy(
            update={
                "running": None,
                "history": kept_history([*self.training.history, finished], now),
                "consecutive_failures": failures,
            }
        )


def run_policy(
    stream: Stream, policy: Policy, warmup: int, seed: int, whole_window: bool = False
) -> Run:
    """``whole_window``: the trainer ignores MODELLOOP_FAILING_SINCE."""
    return Replay(stream, policy, warmup, seed, whole_window).run()
