"""A shard labels its Models' ModelVersions for itself, and unplaces those labelled for it
whose Model it does not hold: once each, guarded by the version's resourceVersion, and an
edit or deletion meanwhile is left to its next event."""

from typing import Any

import pytest
from tests.unit.memory_api import Api

from modelloop.api.resources import MODEL_VERSIONS, MODELS
from modelloop.control.sharding import Shard
from modelloop.handlers.placing import (
    place_versions,
    relabelled_message,
    still_held,
    unplace_versions,
    unplaced_message,
)
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


class Refusing(Api):
    """The API server, answering the merge patches of some objects with an error."""

    def __init__(self, refusals: dict[str, KubeError], *objects: tuple[Any, Obj]) -> None:
        super().__init__(*objects)
        self.refusals = refusals

    def merge_patch(
        self, resource: Any, namespace: Any, name: str, patch: Obj, sub: str = ""
    ) -> Obj:
        if name in self.refusals:
            raise self.refusals[name]
        return super().merge_patch(resource, namespace, name, patch, sub)


CHANGED = KubeError(409, "Conflict", "changed since it was read")
DELETED = KubeError(404, "NotFound", "deleted since it was read")


def test_a_version_edited_or_deleted_meanwhile_is_left_to_its_next_event() -> None:
    api = Refusing(
        {"churn-v1": CHANGED, "churn-v2": DELETED},
        (MODELS, MODEL),
        (MODEL_VERSIONS, version("churn-v1")),
        (MODEL_VERSIONS, version("churn-v2")),
        (MODEL_VERSIONS, version("churn-v3")),
    )
    assert place_versions(api, MODEL) == 1
    assert labels(api)["churn-v1"] == {}
    assert labels(api)["churn-v3"][SHARD] == "a"


def events(api: Api) -> list[Obj]:
    return [body for (plural, _), body in api.objects.items() if plural == "events"]


def test_a_misplaced_version_is_unplaced_once_with_an_event() -> None:
    api = Api(
        (MODEL_VERSIONS, version("fraud-v1", "fraud", **{SHARD: "a", "team": "x"})),
        (MODEL_VERSIONS, version("fraud-v2", "fraud", **{SHARD: "a"})),
    )
    held = [api.get(MODEL_VERSIONS, "ml", n) for n in ("fraud-v1", "fraud-v2")]
    api.merge_patch(MODEL_VERSIONS, "ml", "fraud-v2", {"metadata": {"labels": {SHARD: "c"}}})
    # fraud-v2 was placed by its Model's shard since it was read: left as it is.
    assert unplace_versions(api, held) == 1  # type: ignore[arg-type]
    assert labels(api) == {"fraud-v1": {"team": "x"}, "fraud-v2": {SHARD: "c"}}
    [event] = events(api)
    assert event["involvedObject"]["name"] == "fraud-v1"
    assert event["reason"] == "Unplaced"
    assert event["message"] == unplaced_message("a", "fraud")
    assert "modelloop.dev/shard=a" in event["message"]
    assert "Model fraud" in event["message"]


def test_a_version_deleted_or_refused_is_skipped_and_the_rest_unplaced() -> None:
    refusals = {"fraud-v1": DELETED, "fraud-v2": KubeError(500, "InternalError", "etcd timed out")}
    api = Refusing(
        refusals,
        *((MODEL_VERSIONS, version(f"fraud-v{n}", "fraud", **{SHARD: "a"})) for n in (1, 2, 3)),
    )
    held = [api.get(MODEL_VERSIONS, "ml", f"fraud-v{n}") for n in (1, 2, 3)]
    assert unplace_versions(api, held) == 1  # type: ignore[arg-type]
    assert labels(api)["fraud-v3"] == {}


def test_a_version_taken_from_its_models_shard_is_labelled_back_with_an_event() -> None:
    api = Api((MODELS, MODEL), (MODEL_VERSIONS, version("churn-v1", **{SHARD: "b"})))
    assert place_versions(api, MODEL) == 1
    assert labels(api)["churn-v1"][SHARD] == "a"
    [event] = events(api)
    assert (event["reason"], event["involvedObject"]["kind"]) == ("Relabelled", "ModelVersion")
    assert event["message"] == relabelled_message("b", "a", "churn")


def test_a_version_made_unplaced_is_labelled_without_an_event() -> None:
    api = Api((MODELS, MODEL), (MODEL_VERSIONS, version("churn-v1")))
    assert place_versions(api, MODEL) == 1
    assert events(api) == []


def uid(body: Obj, value: str) -> Obj:
    body["metadata"]["uid"] = value
    return body


@pytest.mark.parametrize(
    ("case", "now", "model_shard", "held"),
    [
        ("relabelled by hand, its Model still a's", version("churn-v1", **{SHARD: "b"}), "a", True),
        ("relabelled as its Model moved to b", version("churn-v1", **{SHARD: "b"}), "b", False),
        ("deleted", None, "a", False),
        ("deleted and made again", uid(version("churn-v1"), "new"), "a", False),
    ],
)
def test_a_version_that_left_the_shards_watch_is_held_only_if_still_its_models(
    case: str, now: Obj | None, model_shard: str, held: bool
) -> None:
    model = {"metadata": {**MODEL["metadata"], "labels": {SHARD: model_shard}}}
    api = Api(
        (MODELS, model),
        *([(MODEL_VERSIONS, uid(now, now["metadata"].get("uid") or "old"))] if now else []),
    )
    left = uid(version("churn-v1", **{SHARD: "a"}), "old")
    found = still_held(api, Shard("a"), left)
    assert (found is not None) == held, case
    if found is not None:
        assert found["metadata"]["labels"][SHARD] == "b"
