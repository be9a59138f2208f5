"""Everything the chaos run needs to judge the product afterwards, recorded from watches
(tests/chaos/watch.py) while it happens: every Job and ModelVersion ever created, every
written revision of the HTTPRoutes and of the Models' statuses, and the operator's Events.
Route weights and breach clocks are checked revision by revision as they arrive."""

import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

from localcluster.traffic import weights_of_httproute

from modelloop.api.resources import MODEL_VERSIONS, MODELS
from modelloop.api.vocabulary import LABEL_MODEL
from modelloop.kube.events import COMPONENT
from modelloop.kube.rest import EVENTS, HTTPROUTES, Obj, Resource
from modelloop.retraining.jobs import LABEL_TRAINING
from tests.chaos.invariants import (
    BreachClocks,
    SeenJob,
    SeenTraining,
    SeenVersion,
    Violation,
    route_weights,
    trainings_in,
)
from tests.chaos.phases import phase
from tests.chaos.watch import Watch

JOBS = Resource("batch", "v1", "jobs")
Say = Callable[[str, str], None]


class Recorder:
    def __init__(self, kubeconfig: str, namespace: str, say: Say) -> None:
        self.say = say
        self._lock = threading.Lock()
        self.jobs: dict[str, SeenJob] = {}
        self.versions_seen: dict[str, SeenVersion] = {}
        self.versions: dict[str, Obj] = {}  # name -> as it is now
        self.models: dict[str, Obj] = {}
        self.trainings: dict[tuple[str, int], SeenTraining] = {}
        self.routes: dict[str, dict[str, int]] = {}
        self.route_revisions = 0
        self.model_revisions = 0
        self.violations: list[Violation] = []
        self.events: list[tuple[str, str, str]] = []
        self._event_uids: set[str] = set()
        self.reasons: Counter[tuple[str, str]] = Counter()  # (model, reason)
        self.clocks = BreachClocks()
        self.watches = [
            Watch(kubeconfig, JOBS, namespace, self._job, LABEL_MODEL),
            Watch(kubeconfig, MODEL_VERSIONS, namespace, self._version),
            Watch(kubeconfig, HTTPROUTES, namespace, self._route),
            Watch(kubeconfig, MODELS, namespace, self._model),
            Watch(kubeconfig, EVENTS, namespace, self._event),
        ]

    def start(self) -> None:
        for w in self.watches:
            w.start()

    def stop(self) -> None:
        for w in self.watches:
            w.stop()

    def failure(self) -> BaseException | None:
        return next((w.failure for w in self.watches if w.failure is not None), None)

    @property
    def gaps(self) -> dict[str, int]:
        return {w.resource.plural: w.gaps for w in self.watches}

    def _job(self, kind: str, job: Obj) -> None:
        if kind == "DELETED":
            return
        meta = job["metadata"]
        labels = meta.get("labels") or {}
        sequence = labels.get(LABEL_TRAINING)
        seen = SeenJob(
            meta["uid"],
            labels.get(LABEL_MODEL, "?"),
            meta["name"],
            int(sequence) if sequence and sequence.isdigit() else None,
        )
        with self._lock:
            if seen.uid not in self.jobs:
                self.jobs[seen.uid] = seen

    def _version(self, kind: str, version: Obj) -> None:
        meta, spec = version["metadata"], version.get("spec") or {}
        lineage = spec.get("lineage") or {}
        with self._lock:
            if kind == "DELETED":
                self.versions.pop(meta["name"], None)
                return
            self.versions[meta["name"]] = version
            if meta["uid"] not in self.versions_seen:
                sequence = lineage.get("sequence")
                self.versions_seen[meta["uid"]] = SeenVersion(
                    meta["uid"],
                    str(spec.get("model")),
                    meta["name"],
                    int(sequence) if sequence else None,
                    (lineage.get("dataWindow") or {}).get("end"),
                )

    def _route(self, kind: str, route: Obj) -> None:
        name = route["metadata"]["name"]
        with self._lock:
            if kind == "DELETED":
                self.routes.pop(name, None)
                return
            weights = weights_of_httproute(route)
            self.routes[name] = weights
            self.route_revisions += 1
            wrong = route_weights(name, route["metadata"]["resourceVersion"], weights)
            if wrong is not None:
                self.violations.append(wrong)
                self.say("check", wrong.render())

    def _model(self, kind: str, model: Obj) -> None:
        name = model["metadata"]["name"]
        status = model.get("status") or {}
        with self._lock:
            if kind == "DELETED":
                self.models.pop(name, None)
                return
            if kind == "LISTED":
                self.clocks.forget(name)
            self.models[name] = model
            self.model_revisions += 1
            for training in trainings_in(name, status):
                self.trainings[(name, training.sequence)] = training
            found = self.clocks.observe(
                name, model["metadata"]["resourceVersion"], status.get("verdicts") or []
            )
            self.violations += found
        for violation in found:
            self.say("check", violation.render())

    def _event(self, kind: str, event: Obj) -> None:
        if kind not in ("ADDED", "LISTED") or event.get("reportingComponent") != COMPONENT:
            return
        involved = event["involvedObject"]
        key = (f"{involved['kind']}/{involved['name']}", event["reason"], event["message"])
        with self._lock:
            if event["metadata"]["uid"] in self._event_uids:
                return  # listed again after a gap: not a second Event
            self._event_uids.add(event["metadata"]["uid"])
            self.events.append(key)
            self.reasons[(involved["name"], event["reason"])] += 1
        self.say(f"{involved['name']}", f"{event['reason']}: {event['message'][:160]}")

    def snapshot(self, model: str) -> tuple[Obj | None, list[Obj]]:
        """The Model and its ModelVersions as last seen."""
        with self._lock:
            body = self.models.get(model)
            versions = [v for v in self.versions.values() if v["spec"].get("model") == model]
        return body, versions

    def phase(self, model: str) -> str:
        body, versions = self.snapshot(model)
        return phase((body or {}).get("status") or {}, versions, datetime.now(UTC))

    def routed(self) -> set[str]:
        """Every backend with weight in a route now."""
        with self._lock:
            return {name for weights in self.routes.values() for name, w in weights.items() if w}

    def all_trainings(self) -> dict[tuple[str, int], SeenTraining]:
        with self._lock:
            return dict(self.trainings)
