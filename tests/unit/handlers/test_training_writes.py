"""What a training pass writes, and in which order: the Model's status once per decision
(the trigger bookkeeping, the training's record and the Training condition together),
the number reserved before its Job exists, and nothing when nothing changed."""

import copy
from typing import Any

import pytest

from modelloop.api.resources import MODEL_VERSIONS, MODELS
from modelloop.api.vocabulary import ANNOTATION_RETRAIN
from modelloop.handlers.training import reconcile_training
from modelloop.kube.rest import Kube, KubeError, Obj, Objs, Resource, versions_of_model

NS = "ml"
JOB_TEMPLATE = {"spec": {"template": {"spec": {"containers": [{"name": "t", "image": "t"}]}}}}


class Api(Kube):
    """An API server in memory: objects by (plural, name), merge patches guarded by
    resourceVersion, and every write recorded as (verb, plural, subresource)."""

    def __init__(self, *objects: tuple[Resource, Obj]) -> None:
        super().__init__(None)  # type: ignore[arg-type]
        self.objects: dict[tuple[str, str], Obj] = {}
        self.writes: list[tuple[str, str, str]] = []
        self.refused: set[str] = set()  # plurals whose creates are refused (422)
        self.revision = 1
        for resource, body in objects:
            self._store(resource, copy.deepcopy(body))

    def _store(self, resource: Resource, body: Obj) -> Obj:
        self.revision += 1
        body["metadata"]["resourceVersion"] = str(self.revision)
        self.objects[resource.plural, body["metadata"]["name"]] = body
        return copy.deepcopy(body)

    def get(self, resource: Resource, namespace: str | None, name: str) -> Obj | None:
        found = self.objects.get((resource.plural, name))
        return copy.deepcopy(found) if found is not None else None

    def list(
        self, resource: Resource, namespace: str | None, label_selector: str | None = None
    ) -> list[Obj]:
        wanted = dict(t.split("=", 1) for t in (label_selector or "").split(",") if "=" in t)
        return [
            copy.deepcopy(o)
            for (plural, _), o in self.objects.items()
            if plural == resource.plural
            and all((o["metadata"].get("labels") or {}).get(k) == v for k, v in wanted.items())
        ]

    def versions_of(self, namespace: str, model: str) -> Objs:
        return versions_of_model(self.list(MODEL_VERSIONS, namespace), model)

    def create(self, resource: Resource, namespace: str | None, body: Obj) -> Obj:
        self.writes.append(("create", resource.plural, ""))
        if resource.plural in self.refused:
            raise KubeError(422, "Invalid", f"{resource.plural} refused")
        if (resource.plural, body["metadata"]["name"]) in self.objects:
            raise KubeError(409, "AlreadyExists", body["metadata"]["name"])
        return self._store(resource, copy.deepcopy(body))

    def merge_patch(
        self, resource: Resource, namespace: str | None, name: str, patch: Obj, sub: str = ""
    ) -> Obj:
        self.writes.append(("patch", resource.plural, sub))
        held = self.objects[resource.plural, name]
        guard = (patch.get("metadata") or {}).get("resourceVersion")
        if guard is not None and guard != held["metadata"]["resourceVersion"]:
            raise KubeError(409, "Conflict", name)
        return self._store(resource, _merged(held, patch))

    def delete(self, resource: Resource, namespace: str | None, name: str) -> bool:
        self.writes.append(("delete", resource.plural, ""))
        return self.objects.pop((resource.plural, name), None) is not None


def events(api: Api) -> list[str]:
    return [o["reason"] for (plural, _), o in api.objects.items() if plural == "events"]


def training_condition(api: Api) -> Obj:
    status = api.objects["models", "fd"].get("status") or {}
    return next(c for c in status.get("conditions") or [] if c["type"] == "Training")


def _merged(held: Any, patch: Any) -> Any:
    if not isinstance(patch, dict) or not isinstance(held, dict):
        return copy.deepcopy(patch)
    merged = dict(held)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = _merged(held.get(key), value)
    return merged


def model(**annotations: str) -> Obj:
    return {
        "apiVersion": "modelloop.dev/v1alpha1",
        "kind": "Model",
        "metadata": {
            "name": "fd",
            "namespace": NS,
            "uid": "u-fd",
            "generation": 1,
            "creationTimestamp": "2026-11-25T09:00:00Z",
            "annotations": annotations,
        },
        "spec": {
            "serving": {"template": {"spec": {"containers": [{"name": "s", "image": "x"}]}}},
            "automation": "retrain",
            "metrics": [{"name": "precision", "query": "x"}],
            "retraining": {"cooldown": "1h", "outputURI": "s3://m/fd", "job": JOB_TEMPLATE},
        },
        "status": {"stableVersion": "fd-v1"},
    }


def version() -> Obj:
    return {
        "apiVersion": "modelloop.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {
            "name": "fd-v1",
            "namespace": NS,
            "creationTimestamp": "2026-11-25T09:00:00Z",
        },
        "spec": {"model": "fd", "uri": "s3://m/fd/1"},
        "status": {"phase": "Serving"},
    }


def passes(api: Api, count: int) -> list[list[tuple[str, str, str]]]:
    """The writes of each of ``count`` passes."""
    each = []
    for _ in range(count):
        before = len(api.writes)
        reconcile_training(api, NS, "fd")
        each.append(api.writes[before:])
    return each


STATUS = ("patch", "models", "status")


def test_a_requested_training_is_reserved_in_one_status_write_before_its_job() -> None:
    api = Api((MODELS, model(**{ANNOTATION_RETRAIN: "drifted"})), (MODEL_VERSIONS, version()))
    start, running, resting = passes(api, 3)
    assert start[:2] == [STATUS, ("create", "jobs", "")]
    assert start.count(STATUS) == 1
    assert ("patch", "models", "") in start  # the request's annotation, cleared
    assert events(api) == ["TrainingStarted"]
    training = api.objects["models", "fd"]["status"]["training"]
    assert training["running"]["job"] in {name for plural, name in api.objects if plural == "jobs"}
    # The next pass finds its Job running: the condition says so, in one write.
    assert running == [STATUS]
    assert training_condition(api)["reason"] == "Running"
    assert resting == []


def test_a_refused_job_is_told_once_and_retried_without_writing_again() -> None:
    api = Api((MODELS, model(**{ANNOTATION_RETRAIN: "drifted"})), (MODEL_VERSIONS, version()))
    api.refused.add("jobs")
    start, retry = passes(api, 2)
    # Reserved, then the refusal the API server gave.
    assert [w for w in start if w[1] == "models"] == [STATUS, STATUS]
    assert training_condition(api)["reason"] == "JobRefused"
    assert events(api) == ["JobRefused"]
    # The same refusal: nothing new to write or tell (the request, taken, is cleared).
    assert retry == [("patch", "models", ""), ("create", "jobs", "")]
    assert events(api) == ["JobRefused"]


@pytest.mark.parametrize("refused", [False, True])
def test_a_fixed_refusal_starts_the_reserved_training(refused: bool) -> None:
    api = Api((MODELS, model(**{ANNOTATION_RETRAIN: "drifted"})), (MODEL_VERSIONS, version()))
    api.refused.add("jobs")
    passes(api, 1)
    if not refused:
        api.refused.clear()
    [again] = passes(api, 1)
    sequence = api.objects["models", "fd"]["status"]["training"]["running"]["sequence"]
    assert sequence == 2  # one number, reserved once
    jobs = [name for plural, name in api.objects if plural == "jobs"]
    assert (jobs, training_condition(api)["reason"]) == (
        ([], "JobRefused") if refused else ([f"fd-train-{sequence}"], "Running")
    )
    assert again.count(STATUS) == (0 if refused else 1)
