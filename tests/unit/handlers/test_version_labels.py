"""ModelVersions carry their Model's shard label (handlers.shards): the Model's own shard
gives it to the versions it holds, and the default shard to a user's new version of
another shard's Model, reading that Model's label; nothing is written twice, a version
changed since it was offered is left alone, and one that came before its Model waits for
it, for a while."""

import pytest
from tests.unit.memory_api import Api

from modelloop.api.resources import MODEL_VERSIONS, MODELS
from modelloop.api.vocabulary import LABEL_SHARD
from modelloop.handlers.shards import (
    PATIENCE_SECONDS,
    RETRY_SECONDS,
    VersionLabeller,
    relabel_versions,
)
from modelloop.kube.rest import Obj

NS = "ml"


def model(name: str, shard: str | None) -> Obj:
    labels = {} if shard is None else {LABEL_SHARD: shard}
    return {"metadata": {"name": name, "namespace": NS, "labels": labels}, "spec": {}}


def version(name: str, of: str, shard: str | None = None) -> Obj:
    labels = {} if shard is None else {LABEL_SHARD: shard}
    return {"metadata": {"name": name, "namespace": NS, "labels": labels}, "spec": {"model": of}}


def shard_of(api: Api, name: str) -> str | None:
    return (api.objects["modelversions", name]["metadata"].get("labels") or {}).get(LABEL_SHARD)


@pytest.mark.parametrize(
    ("model_shard", "version_shards", "patched"),
    [
        (None, [None, None], 0),  # the default shard's: no label, nothing to write
        ("a", [None, "a"], 1),  # a user's new version, and one labelled already
        ("b", ["a", "a"], 2),  # moved from a to b
        (None, ["a", None], 1),  # moved from a to the default shard: the label removed
    ],
)
def test_the_models_shard_labels_the_versions_it_holds(
    model_shard: str | None, version_shards: list[str | None], patched: int
) -> None:
    held = [version(f"fd-v{i}", "fd", s) for i, s in enumerate(version_shards, 1)]
    api = Api(*((MODEL_VERSIONS, v) for v in held))
    relabel_versions(api, model("fd", model_shard), api.versions_of(NS, "fd"))
    assert api.writes == [("patch", "modelversions", "")] * patched
    assert [shard_of(api, v["metadata"]["name"]) for v in held] == [model_shard] * len(held)
    api.writes.clear()
    relabel_versions(api, model("fd", model_shard), api.versions_of(NS, "fd"))
    assert api.writes == []


def test_a_version_deleted_meanwhile_is_not_an_error() -> None:
    api = Api()
    relabel_versions(api, model("fd", "a"), [version("fd-v1", "fd")])
    assert api.writes == [("patch", "modelversions", "")]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def offered(api: Api, clock: Clock, *names: str) -> VersionLabeller:
    labeller = VersionLabeller(api, clock)
    for name in names:
        labeller.offer(api.get(MODEL_VERSIONS, NS, name) or {})
    return labeller


def test_the_default_shard_labels_a_new_version_with_its_models_shard() -> None:
    """Each Model is read once a pass; its versions get its label; the default shard's
    own Model (no label) gets nothing written."""
    api = Api(
        (MODELS, model("fraud", "a")),
        (MODELS, model("churn", None)),
        (MODEL_VERSIONS, version("fraud-v1", "fraud")),
        (MODEL_VERSIONS, version("fraud-v2", "fraud")),
        (MODEL_VERSIONS, version("churn-v1", "churn")),
    )
    labeller = offered(api, Clock(), "fraud-v1", "fraud-v2", "churn-v1")
    assert labeller.label_pending() == 2
    assert [shard_of(api, n) for n in ("fraud-v1", "fraud-v2", "churn-v1")] == ["a", "a", None]
    assert api.writes == [("patch", "modelversions", "")] * 2
    assert len(labeller) == 0


def test_a_version_labelled_or_without_a_model_name_is_not_offered() -> None:
    api = Api()
    labeller = VersionLabeller(api, Clock())
    labeller.offer(version("fraud-v1", "fraud", "a"))
    labeller.offer({"metadata": {"name": "x", "namespace": NS}, "spec": {}})
    assert len(labeller) == 0


def test_a_version_changed_since_it_was_offered_is_left_to_its_next_event() -> None:
    """Written with the resourceVersion it was offered at: a user's edit since (or the
    Model's shard labelling it first) wins, and its own watch event offers it again."""
    api = Api((MODELS, model("fraud", "a")), (MODEL_VERSIONS, version("fraud-v1", "fraud")))
    labeller = offered(api, Clock(), "fraud-v1")
    api.merge_patch(MODEL_VERSIONS, NS, "fraud-v1", {"metadata": {"annotations": {"x": "y"}}})
    assert labeller.label_pending() == 0
    assert shard_of(api, "fraud-v1") is None
    assert len(labeller) == 0
    labeller.offer(api.get(MODEL_VERSIONS, NS, "fraud-v1") or {})
    assert labeller.label_pending() == 1
    assert shard_of(api, "fraud-v1") == "a"


def test_a_version_before_its_model_waits_for_it_then_gives_up() -> None:
    api = Api(
        (MODEL_VERSIONS, version("fraud-v1", "fraud")), (MODEL_VERSIONS, version("x-v1", "x"))
    )
    clock = Clock()
    labeller = offered(api, clock, "fraud-v1", "x-v1")
    assert labeller.label_pending() == 0
    reads = len(api.writes)
    clock.now += RETRY_SECONDS / 2
    assert labeller.label_pending() == 0  # not due yet: no read
    assert len(api.writes) == reads
    api.create(MODELS, NS, model("fraud", "a"))
    clock.now += RETRY_SECONDS
    assert labeller.label_pending() == 1
    assert shard_of(api, "fraud-v1") == "a"
    assert len(labeller) == 1  # x's Model never comes
    clock.now += PATIENCE_SECONDS
    labeller.label_pending()
    assert len(labeller) == 0
    assert shard_of(api, "x-v1") is None
