"""What a training pass writes, and in which order: the Model's status once per decision
(the trigger bookkeeping, the training's record and the Training condition together),
the number reserved before its Job exists, and nothing when nothing changed."""

import pytest
from tests.unit.memory_api import Api

from modelloop.api.resources import MODEL_VERSIONS, MODELS
from modelloop.api.vocabulary import ANNOTATION_RETRAIN, LABEL_SHARD
from modelloop.handlers.training import reconcile_training
from modelloop.kube.rest import Obj, Resource

NS = "ml"
JOB_TEMPLATE = {"spec": {"template": {"spec": {"containers": [{"name": "t", "image": "t"}]}}}}


def events(api: Api) -> list[str]:
    return [o["reason"] for (plural, _), o in api.objects.items() if plural == "events"]


def training_condition(api: Api) -> Obj:
    status = api.objects["models", "fd"].get("status") or {}
    return next(c for c in status.get("conditions") or [] if c["type"] == "Training")


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


def labelled(api: Api, shard: str | None) -> None:
    """The Model relabelled for ``shard`` (None: the default shard, no label)."""
    meta = api.objects["models", "fd"]["metadata"]
    meta["labels"] = {} if shard is None else {LABEL_SHARD: shard}


def job_labels(api: Api) -> dict[str, str]:
    [job] = [o for (plural, _), o in api.objects.items() if plural == "jobs"]
    return dict(job["metadata"]["labels"])


def test_a_training_carries_its_models_shard_label_and_follows_a_move() -> None:
    """The Job is made with the Model's shard label (a shard's watch of Jobs selects its
    own), not its pods; a Model moved to another shard has its running Job relabelled
    once, and to the default shard the label is removed."""
    api = Api((MODELS, model(**{ANNOTATION_RETRAIN: "drifted"})), (MODEL_VERSIONS, version()))
    labelled(api, "a")
    passes(api, 2)
    assert job_labels(api)[LABEL_SHARD] == "a"
    [job] = [o for (plural, _), o in api.objects.items() if plural == "jobs"]
    assert LABEL_SHARD not in job["spec"]["template"]["metadata"]["labels"]
    labelled(api, "b")
    moved, after = passes(api, 2)
    assert moved == [("patch", "jobs", "")]
    assert job_labels(api)[LABEL_SHARD] == "b"
    assert after == []
    labelled(api, None)
    [to_default] = passes(api, 1)
    assert to_default == [("patch", "jobs", "")]
    assert LABEL_SHARD not in job_labels(api)


class ShardCache(Api):
    """Lists as a shard's watch cache would: the Jobs labelled for another shard (made
    before the Model moved, and not listed with it) are not there."""

    def list(
        self, resource: Resource, namespace: str | None, label_selector: str | None = None
    ) -> list[Obj]:
        shard = (self.objects["models", "fd"]["metadata"].get("labels") or {}).get(LABEL_SHARD)
        return [
            o
            for o in super().list(resource, namespace, label_selector)
            if resource.plural != "jobs" or o["metadata"]["labels"].get(LABEL_SHARD) == shard
        ]


def test_the_running_training_is_found_by_name_when_its_job_is_not_selected() -> None:
    """Its Job is read by name, relabelled, and waited for: no second Job is created."""
    api = ShardCache(
        (MODELS, model(**{ANNOTATION_RETRAIN: "drifted"})), (MODEL_VERSIONS, version())
    )
    labelled(api, "a")
    passes(api, 2)
    labelled(api, "b")
    [moved] = passes(api, 1)
    assert ("create", "jobs", "") not in moved
    assert ("patch", "jobs", "") in moved
    assert job_labels(api)[LABEL_SHARD] == "b"
    assert training_condition(api)["reason"] == "Running"
