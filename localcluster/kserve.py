"""KServe, played by the harness openly: a controller thread that writes InferenceServices'
status as KServe (v0.17) and Knative would, and a weight reader for the traffic generator.

There is no KServe, Knative or mesh on the local control plane. ``FakeKServe`` watches the
InferenceServices of one namespace (by polling) and, for each:

- Serverless: a new Knative revision (``<name>-predictor-00001``, ``-00002``...) for each
  change of the predictor other than ``canaryTrafficPercent``, ready ``ready_after``
  seconds after it was created (a revision that is never ready: ``hold``); the traffic as
  KServe's ksvc reconciler sets it (``canaryTrafficPercent`` to the latest revision, the
  rest to ``latestRolledoutRevision``, tagged ``prev``; else everything to the latest) and
  Knative resolves it (``latestRevision`` targets go to the latest *ready* revision); the
  rolled-out bookkeeping of KServe's ``PropagateStatus``; a URL; Ready once the latest
  created revision is ready (Unknown while it starts).
- RawDeployment: no revisions or traffic in the status (KServe reports none); Ready once
  the predictor as written has run ``ready_after`` seconds.

The written status follows KServe's CRD, which the API server validates. The model servers
stand for the predictor's pods: ``inference_service_weights`` reads the traffic KServe
reports and gives each revision's share to the version its pods carry
(``modelloop.dev/version``, a predictor label, as KServe puts it on the pods).
"""

import copy
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from localcluster.traffic import WeightReader
from modelloop.kube.rest import Kube, KubeError, Resource

Obj = dict[str, Any]
INFERENCE_SERVICES = Resource("serving.kserve.io", "v1beta1", "inferenceservices")
LABEL_VERSION = "modelloop.dev/version"
MODE = "serving.kserve.io/deploymentMode"


@dataclass
class Revision:
    name: str
    template: str  # the predictor without canaryTrafficPercent, as JSON
    labels: dict[str, str]  # its pods' labels
    created: float
    ready_at: float | None  # None: never (held)

    def ready(self, now: float) -> bool:
        return self.ready_at is not None and self.ready_at <= now


@dataclass
class _State:
    revisions: list[Revision] = field(default_factory=list)
    rolled_out: str = ""  # latestRolledoutRevision
    previous: str = ""  # previousRolledoutRevision


def _template(isvc: Obj) -> Obj:
    predictor = copy.deepcopy((isvc.get("spec") or {}).get("predictor") or {})
    predictor.pop("canaryTrafficPercent", None)
    return dict(predictor)


def _condition(type_: str, status: str, reason: str = "", message: str = "") -> Obj:
    found: Obj = {"type": type_, "status": status}
    if reason:
        found["reason"] = reason
    if message:
        found["message"] = message
    return found


class FakeKServe:
    """KServe's and Knative's controllers for the InferenceServices of ``namespace``."""

    def __init__(
        self, kube: Kube, namespace: str, ready_after: float = 1.0, period: float = 0.1
    ) -> None:
        self.kube, self.namespace = kube, namespace
        self.ready_after, self.period = ready_after, period
        self.hold = False  # new revisions are not ready until release() while set
        self._states: dict[str, _State] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.errors: list[str] = []
        self._thread = threading.Thread(target=self._run, name="fake-kserve", daemon=True)

    def start(self) -> "FakeKServe":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()

    def release(self) -> None:
        """Held revisions become ready now, and new ones after ``ready_after`` again."""
        with self._lock:
            self.hold = False
            now = time.monotonic()
            for state in self._states.values():
                for revision in state.revisions:
                    if revision.ready_at is None:
                        revision.ready_at = now

    def revisions(self, name: str) -> list[Revision]:
        with self._lock:
            return list(self._states.get(name, _State()).revisions)

    def version_of(self, name: str, revision: str) -> str | None:
        """The version the pods of ``revision`` carry (its predictor's label)."""
        found = next((r for r in self.revisions(name) if r.name == revision), None)
        return found.labels.get(LABEL_VERSION) if found is not None else None

    def _run(self) -> None:
        while not self._stopping.wait(self.period):
            try:
                for isvc in self.kube.list(INFERENCE_SERVICES, self.namespace):
                    self._reconcile(isvc, time.monotonic())
            except (KubeError, OSError) as error:  # the API may fail for a moment
                self.errors.append(repr(error))

    def _reconcile(self, isvc: Obj, now: float) -> None:
        name = isvc["metadata"]["name"]
        with self._lock:
            state = self._states.setdefault(name, _State())
            template = _template(isvc)
            text = json.dumps(template, sort_keys=True)
            if not state.revisions or state.revisions[-1].template != text:
                number = len(state.revisions) + 1
                state.revisions.append(
                    Revision(
                        f"{name}-predictor-{number:05d}",
                        text,
                        dict(template.get("labels") or {}),
                        now,
                        None if self.hold else now + self.ready_after,
                    )
                )
            raw = (isvc["metadata"].get("annotations") or {}).get(MODE) == "RawDeployment"
            status = self._raw_status(isvc, state, now) if raw else self._status(isvc, state, now)
        if status != {k: (isvc.get("status") or {}).get(k) for k in status}:
            self.kube.merge_patch(
                INFERENCE_SERVICES, self.namespace, name, {"status": status}, sub="status"
            )

    def _status(self, isvc: Obj, state: _State, now: float) -> Obj:
        name, namespace = isvc["metadata"]["name"], self.namespace
        created = state.revisions[-1]
        ready = next((r for r in reversed(state.revisions) if r.ready(now)), None)
        percent = (isvc["spec"]["predictor"]).get("canaryTrafficPercent")
        # KServe's ksvc reconciler writes the targets; Knative resolves latestRevision.
        traffic: list[Obj] = []
        if ready is not None:
            if percent is not None and state.rolled_out:
                traffic.append({"latestRevision": True, "percent": percent})
                if percent < 100:
                    traffic.append(
                        {
                            "latestRevision": False,
                            "revisionName": state.rolled_out,
                            "percent": 100 - percent,
                            "tag": "prev",
                        }
                    )
            else:
                traffic.append({"latestRevision": True, "percent": 100})
            for target in traffic:
                if target["latestRevision"]:
                    target["revisionName"] = ready.name
            self._propagate(state, traffic, ready.name, created.name)
        serving = ready is not None
        settled = created.ready(now)
        url = f"http://{name}.{namespace}.example.com"
        predictor: Obj = {"latestCreatedRevision": created.name}
        if ready is not None:
            predictor["latestReadyRevision"] = ready.name
            predictor["url"] = f"http://{name}-predictor.{namespace}.example.com"
            predictor["traffic"] = traffic
        if state.rolled_out:
            predictor["latestRolledoutRevision"] = state.rolled_out
        if state.previous:
            predictor["previousRolledoutRevision"] = state.previous
        ready_status = "True" if settled else "Unknown"
        conditions = [
            _condition("PredictorReady", ready_status),
            _condition(
                "Ready",
                ready_status,
                "" if settled else "RevisionMissing",
                "" if settled else f"Revision {created.name} is not ready yet",
            ),
        ]
        return {
            "components": {"predictor": predictor},
            "conditions": conditions,
            "url": url if serving else None,
            "deploymentMode": "Serverless",
            "observedGeneration": isvc["metadata"].get("generation"),
        }

    @staticmethod
    def _propagate(state: _State, traffic: list[Obj], ready: str, created: str) -> None:
        """KServe's PropagateStatus: a latest ready revision with all the traffic is rolled
        out; one rolled out and then split on itself goes back to the previous one."""
        shares: dict[str, int] = {}
        for target in traffic:
            shares[target["revisionName"]] = shares.get(target["revisionName"], 0) + int(
                target["percent"]
            )
        for target in traffic:
            if target["revisionName"] != ready or not target["latestRevision"]:
                continue
            if state.rolled_out != ready:
                if target["percent"] == 100:
                    state.previous, state.rolled_out = state.rolled_out, ready
            elif ready == created and target["percent"] < 100 and shares.get(ready) == 100:
                state.rolled_out = state.previous or state.rolled_out

    def _raw_status(self, isvc: Obj, state: _State, now: float) -> Obj:
        name, namespace = isvc["metadata"]["name"], self.namespace
        settled = state.revisions[-1].ready(now)
        status = "True" if settled else "Unknown"
        return {
            "components": {"predictor": {"url": f"http://{name}-predictor.{namespace}.svc"}},
            "conditions": [_condition("PredictorReady", status), _condition("Ready", status)],
            "url": f"http://{name}.{namespace}.svc" if settled else None,
            "deploymentMode": "RawDeployment",
            "observedGeneration": isvc["metadata"].get("generation"),
        }

    def weight_reader(self, name: str) -> WeightReader:
        """What the data plane sends by: each revision's percent, as KServe reports it, to
        the version its pods carry (none at 0%). RawDeployment: the ready pods' version
        takes all."""

        def read() -> dict[str, int]:
            isvc = self.kube.get(INFERENCE_SERVICES, self.namespace, name) or {}
            status = isvc.get("status") or {}
            weights: dict[str, int] = {}
            if status.get("deploymentMode") == "RawDeployment":
                ready = [r for r in self.revisions(name) if r.ready(time.monotonic())]
                version = ready[-1].labels.get(LABEL_VERSION) if ready else None
                return {version: 100} if version else {}
            predictor = (status.get("components") or {}).get("predictor") or {}
            for target in predictor.get("traffic") or []:
                version = self.version_of(name, target["revisionName"])
                if version is not None and target["percent"] > 0:
                    weights[version] = weights.get(version, 0) + int(target["percent"])
            return weights

        return read
