"""A shard labels its Models' ModelVersions for itself: once each, guarded by the
version's resourceVersion, and an edit or deletion meanwhile is left to its next event."""

from typing import Any

from tests.unit.memory_api import Api

from modelloop.api.resources import MODEL_VERSIONS, MODELS
from modelloop.handlers.placing import place_versions
from modelloop.kube.rest import KubeError, Obj

SHARD = "modelloop.dev/shard"


def version(name: str, model: str = "churn", **labels: str) -> Obj:
    return {
        "metadata": {"name": name, "namespace": "ml", "labels": labels},
        "spec": {"model": model},
    }


MODEL = {"metadata": {"name": "churn", "namespace": "ml", "labels": {SHARD: "a"}}}


def labels(api: Api) -> dict[str, dict[str, str]]:
    return {
        name: body["metadata"]["labels"]
        for (plural, name), body in api.objects.items()
        if plural == MODEL_VERSIONS.plural
    }


def test_each_unplaced_or_moved_version_is_labelled_once() -> None:
    api = Api(
        (MODELS, MODEL),
        (MODEL_VERSIONS, version("churn-v1")),  # a user's
        (MODEL_VERSIONS, version("churn-v2", **{SHARD: "b", "team": "x"})),  # moved from b
        (MODEL_VERSIONS, version("fraud-v1", "fraud")),  # another Model's
    )
    assert place_versions(api, MODEL) == 2
    placed = {SHARD: "a", "modelloop.dev/model": "churn"}
    assert labels(api) == {
        "churn-v1": placed,
        "churn-v2": placed | {"team": "x"},
        "fraud-v1": {},
    }
    writes = len(api.writes)
    assert place_versions(api, MODEL) == 0  # placed: nothing more to write
    assert len(api.writes) == writes


def test_a_version_edited_or_deleted_meanwhile_is_left_to_its_next_event() -> None:
    class Racing(Api):
        def merge_patch(
            self, resource: Any, namespace: Any, name: str, patch: Obj, sub: str = ""
        ) -> Obj:
            if name == "churn-v1":
                raise KubeError(409, "Conflict", "changed since it was read")
            if name == "churn-v2":
                raise KubeError(404, "NotFound", "deleted since it was read")
            return super().merge_patch(resource, namespace, name, patch, sub)

    api = Racing(
        (MODELS, MODEL),
        (MODEL_VERSIONS, version("churn-v1")),
        (MODEL_VERSIONS, version("churn-v2")),
        (MODEL_VERSIONS, version("churn-v3")),
    )
    assert place_versions(api, MODEL) == 1
    assert labels(api)["churn-v1"] == {}
    assert labels(api)["churn-v3"][SHARD] == "a"
