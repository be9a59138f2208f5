"""The watch caches the reconcile reads: indexed by Model, never older than our writes."""

import copy
import weakref
from collections.abc import Iterable
from typing import Any

import pytest

from modelloop.api.resources import MODEL_VERSIONS, MODELS
from modelloop.api.vocabulary import LABEL_MANAGED_BY, LABEL_MODEL, LABEL_SHARD, MANAGED_BY
from modelloop.kube import rest as rest_module
from modelloop.kube.cache import CachedKube, Key, ObjectCache, selector_matcher
from modelloop.kube.rest import DEPLOYMENTS, Kube, KubeError, Obj, Resource

NS = "ml"


def obj(name: str, rv: int, model: str | None = "churn", **labels: str) -> Obj:
    meta: Obj = {"namespace": NS, "name": name, "resourceVersion": str(rv)}
    meta["labels"] = {**({LABEL_MODEL: model} if model else {}), **labels}
    return {"metadata": meta}


def version(name: str, rv: int, model: str) -> Obj:
    return {
        "metadata": {"namespace": NS, "name": name, "resourceVersion": str(rv)},
        "spec": {"model": model},
    }


def names(objs: list[Obj]) -> list[str]:
    return [o["metadata"]["name"] for o in objs]


def test_objects_are_found_by_their_model() -> None:
    cache = ObjectCache()
    cache.remember(DEPLOYMENTS, "ADDED", obj("churn-v1", 1))
    cache.remember(DEPLOYMENTS, "ADDED", obj("churn-v2", 2))
    cache.remember(DEPLOYMENTS, "ADDED", obj("fraud-v1", 3, model="fraud"))
    cache.remember(DEPLOYMENTS, "ADDED", obj("unlabelled", 4, model=None))
    assert names(cache.of_model(DEPLOYMENTS, NS, "churn")) == ["churn-v1", "churn-v2"]
    assert names(cache.of_model(DEPLOYMENTS, NS, "fraud")) == ["fraud-v1"]
    assert cache.of_model(DEPLOYMENTS, "other", "churn") == []


def test_a_models_objects_are_copies_unless_asked_as_held() -> None:
    cache = ObjectCache()
    cache.remember(DEPLOYMENTS, "ADDED", obj("churn-v1", 1))
    stored = dict(cache.held(DEPLOYMENTS))[(NS, "churn-v1")]
    [copied] = cache.of_model(DEPLOYMENTS, NS, "churn")
    assert copied == stored
    assert copied is not stored
    [held] = cache.held_of_model(DEPLOYMENTS, NS, "churn")
    assert held is stored
    assert cache.held_of_model(DEPLOYMENTS, NS, "fraud") == []


def test_model_versions_are_found_by_the_model_their_spec_names() -> None:
    cache = ObjectCache()
    cache.remember(MODEL_VERSIONS, None, version("a", 1, "churn"))
    cache.remember(MODEL_VERSIONS, None, version("b", 2, "fraud"))
    assert names(cache.of_model(MODEL_VERSIONS, NS, "churn")) == ["a"]


@pytest.mark.parametrize(
    ("events", "held"),
    [
        # (event type, resourceVersion, model label) in arrival order -> what the cache holds
        ([("ADDED", 5, "churn"), ("MODIFIED", 6, "churn")], (6, "churn")),
        # Our write (rv 7) came back before the watch's older event (rv 6): kept.
        ([("ADDED", 5, "churn"), (None, 7, "churn"), ("MODIFIED", 6, "churn")], (7, "churn")),
        ([("ADDED", 5, "churn"), ("DELETED", 6, "churn")], None),
        # Relabelled to another Model: moves in the index.
        ([("ADDED", 5, "churn"), ("MODIFIED", 6, "fraud")], (6, "fraud")),
    ],
)
def test_an_event_older_than_what_is_held_changes_nothing(
    events: list[tuple[str | None, int, str]], held: tuple[int, str] | None
) -> None:
    cache = ObjectCache()
    for type_, rv, model in events:
        cache.remember(DEPLOYMENTS, type_, obj("d", rv, model=model))
    found = cache.get(DEPLOYMENTS, NS, "d")
    if held is None:
        assert found is None
        assert cache.of_model(DEPLOYMENTS, NS, "churn") == []
        return
    assert found is not None
    meta = found["metadata"]
    assert (int(meta["resourceVersion"]), meta["labels"][LABEL_MODEL]) == held
    other = "fraud" if held[1] == "churn" else "churn"
    assert names(cache.of_model(DEPLOYMENTS, NS, held[1])) == ["d"]
    assert cache.of_model(DEPLOYMENTS, NS, other) == []


def test_a_list_drops_what_it_lacks_unless_written_after_it() -> None:
    cache = ObjectCache()
    cache.remember(DEPLOYMENTS, "ADDED", obj("gone", 3))  # deleted while the watch was down
    cache.remember(DEPLOYMENTS, None, obj("fresh", 12))  # our write after the list
    cache.remember(DEPLOYMENTS, "ADDED", obj("same", 5))
    held = cache.get(DEPLOYMENTS, NS, "same")
    seen = cache.put_listed(DEPLOYMENTS, [obj("kept", 8)])  # pages of one list
    seen |= cache.put_listed(DEPLOYMENTS, [obj("same", 5)])
    assert not cache.synced(DEPLOYMENTS)  # until the list ends
    cache.end_list(DEPLOYMENTS, seen, listed_at=10)
    assert names(cache.of_model(DEPLOYMENTS, NS, "churn")) == ["fresh", "kept", "same"]
    assert cache.get(DEPLOYMENTS, NS, "same") == held
    assert cache.synced(DEPLOYMENTS)
    assert not cache.synced(MODELS)


def test_a_deletion_the_watch_told_during_a_list_is_not_undone_by_it() -> None:
    """A relist's snapshot (rv 10) still has the object the watch saw deleted at rv 12;
    neither the list nor a write's answer from before the deletion brings it back."""
    cache = ObjectCache()
    cache.remember(DEPLOYMENTS, "ADDED", obj("d", 5))
    cache.remember(DEPLOYMENTS, "DELETED", obj("d", 12))
    seen = cache.put_listed(DEPLOYMENTS, [obj("d", 5)])
    cache.end_list(DEPLOYMENTS, seen, listed_at=10)
    assert cache.get(DEPLOYMENTS, NS, "d") is None
    assert not cache.remember(DEPLOYMENTS, None, obj("d", 11))  # a write answered before
    assert cache.of_model(DEPLOYMENTS, NS, "churn") == []
    assert cache.remember(DEPLOYMENTS, "ADDED", obj("d", 14))  # made again: held
    assert names(cache.of_model(DEPLOYMENTS, NS, "churn")) == ["d"]


def test_a_list_newer_than_a_deletion_lets_its_record_go() -> None:
    cache = ObjectCache()
    for n in range(3):
        cache.remember(DEPLOYMENTS, "DELETED", obj(f"d{n}", 20 + n))
    cache.end_list(DEPLOYMENTS, set(), listed_at=21)
    assert set(cache._stores[DEPLOYMENTS].deleted) == {(NS, "d2")}  # newer than the list


def test_readers_get_copies() -> None:
    cache = ObjectCache()
    cache.remember(DEPLOYMENTS, "ADDED", obj("d", 1))
    cache.of_model(DEPLOYMENTS, NS, "churn")[0]["metadata"]["name"] = "changed"
    cache.get(DEPLOYMENTS, NS, "d")["kind"] = "changed"  # type: ignore[index]
    assert cache.get(DEPLOYMENTS, NS, "d") == obj("d", 1)


class RecordingKube(CachedKube):
    """The API server's answers: a list of ``listed``, an object echoed back on a write,
    404 for anything else; every request recorded."""

    def __init__(self, cache: ObjectCache, listed: list[Obj]) -> None:
        super().__init__(None, cache)  # type: ignore[arg-type]
        self.listed = listed
        self.requests: list[tuple[str, str]] = []
        self._live = self

    def request(self, method: str, path: str, **kwargs: Any) -> Obj:
        self.requests.append((method, path))
        if method == "GET" and path.endswith("/deployments"):
            return {
                "metadata": {"resourceVersion": "20"},
                "kind": "DeploymentList",
                "items": self.listed,
            }
        if method == "PATCH":
            body: Obj = kwargs["body"]
            return {
                **body,
                "metadata": {**body["metadata"], "namespace": NS, "resourceVersion": "30"},
            }
        raise KubeError(404, "NotFound", path)


SELECTOR = f"{LABEL_MODEL}=churn,{LABEL_MANAGED_BY}={MANAGED_BY}"


def test_lists_of_a_model_come_from_the_cache_once_it_was_listed() -> None:
    managed = obj("churn-v1", 5, **{LABEL_MANAGED_BY: MANAGED_BY})
    kube = RecordingKube(ObjectCache(), [managed, obj("churn-by-hand", 6)])
    kube.list(DEPLOYMENTS, NS, SELECTOR)  # before the cache is filled: the API server's
    assert len(kube.requests) == 1
    kube.sync([(DEPLOYMENTS, None, None)])
    assert len(kube.requests) == 2
    assert names(kube.list(DEPLOYMENTS, NS, SELECTOR)) == ["churn-v1"]
    assert names(kube.list(DEPLOYMENTS, NS, f"{LABEL_MODEL}=churn,!{LABEL_MANAGED_BY}")) == [
        "churn-by-hand"
    ]
    assert kube.get(DEPLOYMENTS, NS, "churn-v1") is not None
    assert len(kube.requests) == 2  # no read reached the API server
    assert kube.list(DEPLOYMENTS, NS, "app=x") == kube.listed  # no model: the API server's
    assert len(kube.requests) == 3


def test_a_get_the_cache_cannot_answer_goes_to_the_api_server() -> None:
    kube = RecordingKube(ObjectCache(), [])
    kube.sync([(DEPLOYMENTS, None, None)])
    assert kube.get(DEPLOYMENTS, NS, "made-by-someone-else") is None
    assert kube.requests[-1] == (
        "GET",
        f"/apis/apps/v1/namespaces/{NS}/deployments/made-by-someone-else",
    )


def test_a_write_is_read_back_at_once() -> None:
    kube = RecordingKube(ObjectCache(), [obj("churn-v1", 5)])
    kube.sync([(DEPLOYMENTS, None, None)])
    kube.apply(DEPLOYMENTS, NS, obj("churn-v1", 5, tier="gold"))
    [found] = kube.list(DEPLOYMENTS, NS, SELECTOR.split(",")[0])
    assert found["metadata"]["labels"]["tier"] == "gold"
    assert found["metadata"]["resourceVersion"] == "30"


def test_a_plain_kube_is_its_own_live_client() -> None:
    kube = Kube(None)  # type: ignore[arg-type]
    assert kube.live is kube


def test_managed_fields_are_not_kept() -> None:
    cache = ObjectCache()
    body = obj("d", 1)
    body["metadata"]["managedFields"] = [{"manager": "modelloop", "fieldsV1": {"f:spec": {}}}]
    cache.remember(DEPLOYMENTS, "ADDED", body)
    cache.put_listed(MODELS, [{**body, "metadata": {**body["metadata"], "name": "m"}}])
    assert cache.get(DEPLOYMENTS, NS, "d") == obj("d", 1)
    assert "managedFields" not in (cache.get(MODELS, NS, "m") or {})["metadata"]
    assert "managedFields" in body["metadata"]  # the caller's object is left as it was


def test_a_kind_the_operator_may_not_list_is_left_to_the_api_server() -> None:
    class Forbidden(RecordingKube):
        def request(self, method: str, path: str, **kwargs: Any) -> Obj:
            self.requests.append((method, path))
            raise KubeError(403, "Forbidden", "deployments is forbidden")

    kube = Forbidden(ObjectCache(), [])
    kube.sync([(DEPLOYMENTS, None, None)])
    assert not kube.cache.synced(DEPLOYMENTS)


# A shard's caches hold its own Models' children only; a Model that moves in is held
# with its children at once.

LISTED_AT = 100


def model(name: str, rv: int = 1) -> Obj:
    return {"metadata": {"namespace": NS, "name": name, "resourceVersion": str(rv)}}


class Cluster(CachedKube):
    """The API server: lists of Models (this shard's), ModelVersions and Deployments (every
    shard's), label-selected by model when asked; every request recorded."""

    def __init__(
        self, cache: ObjectCache, objects: dict[str, list[Obj]], field_selectable: bool = True
    ) -> None:
        super().__init__(None, cache)  # type: ignore[arg-type]
        self.objects = objects
        self.field_selectable = field_selectable  # the CRD declares spec.model selectable
        self.requests: list[tuple[str, str, str]] = []
        self._live = self

    def request(self, method: str, path: str, **kwargs: Any) -> Obj:
        query = kwargs.get("query") or {}
        selector = query.get("labelSelector") or ""
        field = query.get("fieldSelector")
        self.requests.append((method, path, field or selector))
        plural = path.rsplit("/", 1)[-1]
        if method != "GET" or plural not in self.objects:
            raise KubeError(404, "NotFound", path)
        if field is None:
            items = [o for o in self.objects[plural] if selector_matcher(selector)(o)]
        elif not self.field_selectable:
            raise KubeError(400, "BadRequest", f'field label not supported: "{field}"')
        else:
            path_, wanted = field.split("=")
            assert path_ == "spec.model"
            items = [o for o in self.objects[plural] if o["spec"]["model"] == wanted]
        # Pages as the API server gives them: ``limit`` objects, then a continue token.
        start = int(query.get("continue") or 0)
        end = start + int(query.get("limit") or len(items))
        more = {"continue": str(end)} if end < len(items) else {}
        return {
            "metadata": {"resourceVersion": str(LISTED_AT), **more},
            "items": copy.deepcopy(items[start:end]),
        }


KINDS = [(MODELS, None, NS), (MODEL_VERSIONS, None, NS), (DEPLOYMENTS, None, NS)]


def fleet() -> dict[str, list[Obj]]:
    """Models a (this shard's) and b (another's), each with a version and a Deployment."""
    return {
        "models": [model("a")],
        "modelversions": [version("a-v1", 2, "a"), version("b-v1", 3, "b")],
        "deployments": [obj("a-v1", 4, model="a"), obj("b-v1", 5, model="b")],
    }


def test_a_shard_keeps_the_children_of_its_own_models_only() -> None:
    kube = Cluster(ObjectCache(scoped=True), fleet())
    kube.sync(KINDS)
    assert names(kube.cache.of_model(DEPLOYMENTS, NS, "a")) == ["a-v1"]
    assert kube.cache.of_model(DEPLOYMENTS, NS, "b") == []
    assert kube.cache.of_model(MODEL_VERSIONS, NS, "b") == []
    assert kube.cache.foreign(NS, "b")
    assert not kube.cache.foreign(NS, "a")
    # The other shard's objects keep changing: their watch events are not news here.
    assert not kube.cache.remember(DEPLOYMENTS, "MODIFIED", obj("b-v1", 150, model="b"))
    assert kube.cache.of_model(DEPLOYMENTS, NS, "b") == []
    assert kube.cache.remember(DEPLOYMENTS, "MODIFIED", obj("a-v1", 151, model="a"))


def test_lists_are_read_in_pages_and_held_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rest_module, "PAGE", 2)
    objects = fleet()
    objects["deployments"] += [obj(f"a-v{n}", 5 + n, model="a") for n in range(2, 6)]
    kube = Cluster(ObjectCache(scoped=True), objects)
    kube.sync(KINDS)
    assert names(kube.cache.of_model(DEPLOYMENTS, NS, "a")) == [f"a-v{n}" for n in range(1, 6)]
    assert kube.cache.of_model(DEPLOYMENTS, NS, "b") == []
    listed = [p.rsplit("/", 1)[-1] for _, p, _ in kube.requests]
    assert listed.count("deployments") == 3  # 6 Deployments, 2 a page
    # A Model moving in: its children are listed in pages too, and only its own kept.
    kube.adopt(model("b", 200))
    assert names(kube.cache.of_model(MODEL_VERSIONS, NS, "b")) == ["b-v1"]
    assert names(kube.cache.of_model(MODEL_VERSIONS, NS, "a")) == ["a-v1"]


def test_the_other_shards_children_are_dropped_page_by_page(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A shard lists every ModelVersion of the namespace: those of the other shards'
    Models go as each page is read, so they are never held all at once."""
    monkeypatch.setattr(rest_module, "PAGE", 2)
    objects = fleet()
    objects["modelversions"] += [version(f"c{n}-v1", 10 + n, f"c{n}") for n in range(8)]
    kube = Cluster(ObjectCache(scoped=True), objects)
    held: list[int] = []
    put_listed = kube.cache.put_listed

    def counted(resource: Resource, items: Iterable[Obj]) -> set[Key]:
        held.append(len(kube.cache.held(resource)))
        return put_listed(resource, items)

    monkeypatch.setattr(kube.cache, "put_listed", counted)
    kube.sync(KINDS)
    assert max(held) <= 2  # a page at most, never the 10 versions
    assert [n for n, _ in kube.cache.versions_of_model(MODEL_VERSIONS, NS, "a")] == ["a-v1"]
    assert all(kube.cache.foreign(NS, f"c{n}") for n in range(8))


def test_a_list_whose_continue_token_expired_starts_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """etcd compacted past the list's snapshot between two pages (410): the list starts
    over, and the cache holds what the new list holds, not the first attempt's pages."""
    monkeypatch.setattr(rest_module, "PAGE", 1)

    class Compacting(Cluster):
        expired = 0

        def request(self, method: str, path: str, **kwargs: Any) -> Obj:
            paging = (kwargs.get("query") or {}).get("continue")
            if paging and path.endswith("/deployments") and not self.expired:
                self.expired += 1
                self.objects["deployments"].pop(0)  # deleted meanwhile: a-v1
                raise KubeError(410, "Expired", "The provided continue parameter is too old")
            return super().request(method, path, **kwargs)

    objects = fleet()
    objects["deployments"] = [obj(f"a-v{n}", 4 + n, model="a") for n in range(1, 4)]
    kube = Compacting(ObjectCache(), objects)
    kube.sync(KINDS)
    assert names(kube.cache.of_model(DEPLOYMENTS, NS, "a")) == ["a-v2", "a-v3"]
    assert kube.cache.synced(DEPLOYMENTS)
    listed = [p.rsplit("/", 1)[-1] for _, p, _ in kube.requests]
    assert listed.count("deployments") == 1 + 2  # a page, then (410) the new list's two


def test_a_list_that_keeps_expiring_fails_the_relist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rest_module, "PAGE", 1)

    class Expiring(Cluster):
        def request(self, method: str, path: str, **kwargs: Any) -> Obj:
            if (kwargs.get("query") or {}).get("continue"):
                raise KubeError(410, "Expired", "too old")
            return super().request(method, path, **kwargs)

    kube = Expiring(ObjectCache(), fleet())
    with pytest.raises(KubeError) as raised:
        kube.sync(KINDS)
    assert raised.value.status == 410
    assert not kube.cache.synced(MODEL_VERSIONS)


def test_an_unsharded_instance_keeps_every_child() -> None:
    kube = Cluster(ObjectCache(), fleet())
    kube.sync(KINDS)
    assert names(kube.cache.of_model(DEPLOYMENTS, NS, "b")) == ["b-v1"]
    assert not kube.cache.foreign(NS, "b")


def test_a_child_written_after_the_list_may_be_a_new_models_and_is_kept() -> None:
    objects = fleet()
    objects["deployments"].append(obj("c-v1", LISTED_AT + 1, model="c"))  # c not seen yet
    kube = Cluster(ObjectCache(scoped=True), objects)
    kube.sync(KINDS)
    assert names(kube.cache.of_model(DEPLOYMENTS, NS, "c")) == ["c-v1"]
    assert not kube.cache.foreign(NS, "c")


def test_a_model_that_moves_in_is_held_with_its_children_at_once() -> None:
    objects = fleet()
    kube = Cluster(ObjectCache(scoped=True), objects)
    kube.sync(KINDS)
    before = len(kube.requests)
    kube.adopt(model("b", 200))
    assert names(kube.cache.of_model(DEPLOYMENTS, NS, "b")) == ["b-v1"]
    assert names(kube.cache.of_model(MODEL_VERSIONS, NS, "b")) == ["b-v1"]
    assert kube.cache.get(MODELS, NS, "b") is not None
    assert not kube.cache.foreign(NS, "b")
    # Each child kind listed by the Model's label; its ModelVersions also among the few no
    # shard has labelled yet.
    assert [(p.rsplit("/", 1)[-1], s) for _, p, s in kube.requests[before:]] == [
        ("modelversions", f"{LABEL_MODEL}=b"),
        ("modelversions", f"!{LABEL_SHARD}"),
        ("deployments", f"{LABEL_MODEL}=b"),
    ]
    # From now on its events are news, and the next relist keeps them.
    assert kube.cache.remember(DEPLOYMENTS, "MODIFIED", obj("b-v1", 201, model="b"))
    objects["models"].append(model("b", 200))
    kube.sync(KINDS)
    assert names(kube.cache.of_model(DEPLOYMENTS, NS, "b")) == ["b-v1"]


def test_a_model_that_moves_away_leaves_its_children_at_the_next_relist() -> None:
    objects = fleet()
    kube = Cluster(ObjectCache(scoped=True), objects)
    kube.sync(KINDS)
    kube.cache.remember(MODELS, "DELETED", model("a"))  # relabelled: the watch says deleted
    objects["models"] = []
    kube.sync(KINDS)
    assert kube.cache.of_model(DEPLOYMENTS, NS, "a") == []
    assert kube.cache.foreign(NS, "a")


SHARD_A = "modelloop.dev/shard=a"
SHARDED_KINDS = [(MODELS, None, NS), (MODEL_VERSIONS, None, NS), (DEPLOYMENTS, SHARD_A, NS)]


def test_a_relist_keeps_a_moved_in_models_child_still_labelled_for_its_old_shard() -> None:
    """Shard a's Deployments are selected by the label: b's Deployment, adopted with b
    when it moved in, is outside the relist's selector until b's reconcile relabels it,
    so the relist cannot tell it is gone. One of a's that the list lacks is."""
    objects = fleet()
    objects["deployments"] = [
        obj("a-v1", 4, model="a", **{"modelloop.dev/shard": "a"}),
        obj("a-old", 5, model="a", **{"modelloop.dev/shard": "a"}),
        obj("b-v1", 6, model="b", **{"modelloop.dev/shard": "b"}),
    ]
    kube = Cluster(ObjectCache(scoped=True), objects)
    kube.sync(SHARDED_KINDS)
    assert names(kube.cache.of_model(DEPLOYMENTS, NS, "a")) == ["a-old", "a-v1"]
    before = len(kube.requests)
    kube.adopt(model("b", 200))
    # Listed by its Model's label alone: a moved Model's children carry its old shard's.
    assert kube.requests[before + 2][2] == f"{LABEL_MODEL}=b"
    assert names(kube.cache.of_model(DEPLOYMENTS, NS, "b")) == ["b-v1"]
    objects["models"].append(model("b", 200))
    objects["deployments"].pop(1)  # a-old deleted while the watch was down
    kube.sync(SHARDED_KINDS)
    assert names(kube.cache.of_model(DEPLOYMENTS, NS, "a")) == ["a-v1"]
    assert names(kube.cache.of_model(DEPLOYMENTS, NS, "b")) == ["b-v1"]


def test_a_deleted_foreign_model_is_forgotten_at_the_relist() -> None:
    objects = fleet()
    kube = Cluster(ObjectCache(scoped=True), objects)
    kube.sync(KINDS)
    objects["modelversions"].pop()
    objects["deployments"].pop()
    kube.sync(KINDS)
    assert not kube.cache.foreign(NS, "b")


def test_the_echo_of_a_cached_write_is_not_news() -> None:
    cache = ObjectCache()
    assert cache.remember(DEPLOYMENTS, None, obj("a-v1", 7, model="a"))  # a write's answer
    assert not cache.remember(DEPLOYMENTS, "MODIFIED", obj("a-v1", 7, model="a"))  # its echo
    assert not cache.remember(DEPLOYMENTS, "MODIFIED", obj("a-v1", 6, model="a"))  # older
    assert cache.remember(DEPLOYMENTS, "MODIFIED", obj("a-v1", 8, model="a"))
    assert cache.remember(DEPLOYMENTS, "DELETED", obj("a-v1", 9, model="a"))


def test_children_whose_model_never_arrives_are_dropped_at_the_second_look() -> None:
    kube = Cluster(ObjectCache(scoped=True), fleet())
    kube.sync(KINDS)
    # Created since the list: c is this shard's (its Model arrives), d another's.
    for name in ("c", "d"):
        kube.cache.remember(DEPLOYMENTS, "ADDED", obj(f"{name}-v1", 300, model=name))
    assert kube.cache.evict_orphans() == 0  # the first look: their Models may be on the way
    kube.cache.remember(MODELS, "ADDED", model("c", 301))
    assert kube.cache.evict_orphans() == 1
    assert names(kube.cache.of_model(DEPLOYMENTS, NS, "c")) == ["c-v1"]
    assert kube.cache.of_model(DEPLOYMENTS, NS, "d") == []
    assert kube.cache.foreign(NS, "d")
    assert not kube.cache.remember(DEPLOYMENTS, "MODIFIED", obj("d-v1", 302, model="d"))


def test_an_unsharded_instance_drops_no_orphan() -> None:
    cache = ObjectCache()
    cache.remember(DEPLOYMENTS, "ADDED", obj("d-v1", 1, model="d"))
    assert cache.evict_orphans() == 0
    assert cache.evict_orphans() == 0
    assert names(cache.of_model(DEPLOYMENTS, NS, "d")) == ["d-v1"]


def test_a_model_stored_from_its_watch_event_is_no_longer_foreign() -> None:
    """A standby (no client to adopt with) holds a Model that moved in; its children's
    events are kept from then on, and its first full list as leader brings the rest."""
    kube = Cluster(ObjectCache(scoped=True), fleet())
    kube.sync(KINDS)
    kube.cache.remember(MODELS, "ADDED", model("b", 200))
    assert not kube.cache.foreign(NS, "b")
    assert kube.cache.remember(DEPLOYMENTS, "MODIFIED", obj("b-v1", 201, model="b"))


def labelled(body: Obj, **labels: str) -> Obj:
    body["metadata"]["labels"] = {f"modelloop.dev/{k}": v for k, v in labels.items()}
    return body


def test_a_moved_in_models_versions_are_found_by_its_label_or_as_unplaced() -> None:
    """b moved here from shard x: x labelled one of its versions (with the Model's name
    too), the other no shard has placed yet; neither is any watch's here."""
    objects = fleet()
    objects["modelversions"] = [
        labelled(version("a-v1", 2, "a"), shard="a", model="a"),
        labelled(version("b-v1", 3, "b"), shard="x", model="b"),
        version("b-v2", 4, "b"),
        labelled(version("c-v1", 5, "c"), shard="x", model="c"),
    ]
    selected = [
        (MODELS, None, NS),
        (MODEL_VERSIONS, SHARD_A, NS),
        (MODEL_VERSIONS, f"!{LABEL_SHARD}", NS),
    ]
    kube = Cluster(ObjectCache(scoped=True), objects)
    kube.sync(selected)
    assert kube.cache.foreign(NS, "b")  # its unplaced version, listed and dropped
    assert kube.cache.of_model(MODEL_VERSIONS, NS, "b") == []
    kube.adopt(model("b", 200))
    assert names(kube.cache.of_model(MODEL_VERSIONS, NS, "b")) == ["b-v1", "b-v2"]
    assert kube.cache.of_model(MODEL_VERSIONS, NS, "c") == []
    # A relist by both selectors keeps b-v1 (outside them until b's reconcile labels it)
    # and drops a's that it lacks.
    objects["models"].append(model("b", 200))
    objects["modelversions"].pop(0)
    kube.sync(selected)
    assert names(kube.cache.of_model(MODEL_VERSIONS, NS, "b")) == ["b-v1", "b-v2"]
    assert kube.cache.of_model(MODEL_VERSIONS, NS, "a") == []


def test_a_deleted_from_a_watch_the_object_only_left_drops_nothing() -> None:
    """A watch with a label selector says DELETED, at the relabelling's revision, of an
    object that stops matching it: the other watch (or the write's answer) brings that
    revision's state, in either order. A deletion is its object's newest revision."""
    cache = ObjectCache()
    placed = labelled(version("b-v1", 8, "b"), shard="a", model="b")
    left = version("b-v1", 8, "b")  # the unplaced watch's DELETED: the old body, new revision
    assert cache.remember(MODEL_VERSIONS, None, placed)  # the placing write's answer
    assert not cache.remember(MODEL_VERSIONS, "DELETED", left)
    assert names(cache.of_model(MODEL_VERSIONS, NS, "b")) == ["b-v1"]

    cache = ObjectCache()
    cache.remember(MODEL_VERSIONS, "ADDED", version("b-v1", 7, "b"))
    assert cache.remember(MODEL_VERSIONS, "DELETED", left)  # came first: taken as a deletion
    assert cache.remember(MODEL_VERSIONS, "ADDED", placed)  # the same revision: it is there
    assert names(cache.of_model(MODEL_VERSIONS, NS, "b")) == ["b-v1"]
    # A real deletion: no later state of it is news, none as old comes back.
    assert cache.remember(MODEL_VERSIONS, "DELETED", version("b-v1", 9, "b"))
    assert not cache.remember(MODEL_VERSIONS, "MODIFIED", placed)
    assert cache.of_model(MODEL_VERSIONS, NS, "b") == []


@pytest.mark.parametrize(
    ("scoped", "known_foreign", "held", "status", "adopts"),
    [
        (True, True, False, False, True),  # its children were seen and dropped
        (True, False, False, True, True),  # acted on elsewhere: moved here
        (True, False, False, False, False),  # new: nothing of it anywhere yet
        (True, False, True, True, False),  # held: an update
        (False, False, False, True, False),  # unsharded: it watches everything
    ],
)
def test_which_arriving_models_are_adopted(
    scoped: bool, known_foreign: bool, held: bool, status: bool, adopts: bool
) -> None:
    objects = fleet()
    objects["models"] = [model("a"), model("b")] if held else [model("a")]
    kube = Cluster(ObjectCache(scoped=scoped), objects)
    kube.sync(KINDS if known_foreign else [(MODELS, None, NS)])
    arriving = model("b", 200) | ({"status": {"observedGeneration": 1}} if status else {})
    assert kube.cache.adopts(NS, "b", arriving) is adopts


def test_versions_labelled_for_this_shard_of_models_it_does_not_hold_are_misplaced() -> None:
    """A first list as leader takes every version: of those it drops, only the ones
    labelled for this shard (a) are misplaced; the others are their own shards' to place."""
    objects = fleet()
    objects["modelversions"] = [
        labelled(version("a-v1", 2, "a"), shard="a", model="a"),  # its Model is held here
        labelled(version("b-v1", 3, "b"), shard="a"),  # a label for the wrong shard
        labelled(version("c-v1", 4, "c"), shard="x", model="c"),  # shard x's
        version("d-v1", 5, "d"),  # unplaced: d's shard places it
    ]
    kube = Cluster(ObjectCache(scoped=True, placed="a"), objects)
    kube.sync(KINDS)
    assert names(kube.cache.take_misplaced()) == ["b-v1"]
    assert kube.cache.take_misplaced() == []  # taken once


def test_a_misplaced_version_is_found_between_lists_and_not_taken_once_its_model_is_held() -> None:
    kube = Cluster(ObjectCache(scoped=True, placed="a"), fleet())
    kube.sync(KINDS)
    for name in ("e", "f"):  # labelled for a after the list; neither Model is a's yet
        kube.cache.remember(
            MODEL_VERSIONS, "ADDED", labelled(version(f"{name}-v1", 300, name), shard="a")
        )
    kube.cache.evict_orphans()
    assert kube.cache.evict_orphans() == 2
    kube.cache.remember(MODELS, "ADDED", model("f", 301))  # f moved here meanwhile
    assert names(kube.cache.take_misplaced()) == ["e-v1"]


@pytest.mark.parametrize("cache", [ObjectCache(), ObjectCache(scoped=True)])
def test_an_instance_that_places_no_version_finds_none_misplaced(cache: ObjectCache) -> None:
    """Unsharded (nothing is dropped), or no shard label of its own to look for."""
    kube = Cluster(cache, fleet())
    kube.cache.remember(MODEL_VERSIONS, "ADDED", labelled(version("e-v1", 1, "e"), shard="a"))
    kube.sync(KINDS)
    kube.cache.evict_orphans()
    kube.cache.evict_orphans()
    assert kube.cache.take_misplaced() == []


def test_which_deleted_versions_a_shard_reads_again() -> None:
    """Only a DELETED that would drop a version of a Model this shard holds, held at an
    older revision: not the echo of its own relabelling, not another shard's version."""
    kube = Cluster(ObjectCache(scoped=True, placed="a"), fleet())
    kube.sync(KINDS)
    assert kube.cache.hides(version("a-v1", 150, "a"))  # deleted, or relabelled away
    assert not kube.cache.hides(version("a-v1", 2, "a"))  # what the cache holds: its echo
    assert not kube.cache.hides(version("b-v1", 150, "b"))  # b is another shard's
    assert not kube.cache.hides(version("a-v9", 150, "a"))  # never held
    assert not Cluster(ObjectCache(), fleet()).cache.hides(version("a-v1", 150, "a"))


class Page(list[Obj]):
    """A page of a list, whose lifetime a test can watch."""


def test_a_page_is_let_go_before_the_next_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """A page of 500 Models is 27 MiB decoded: a list that still held the page before
    while reading the next held two at its peak (an operator's start at 1000 Models)."""
    monkeypatch.setattr(rest_module, "PAGE", 2)
    objects = fleet()
    objects["deployments"] += [obj(f"a-v{n}", 5 + n, model="a") for n in range(2, 8)]
    pages: list[weakref.ref[Page]] = []
    alive: list[int] = []

    class Watched(Cluster):
        def request(self, method: str, path: str, **kwargs: Any) -> Obj:
            alive.append(sum(1 for page in pages if page() is not None))
            answer = super().request(method, path, **kwargs)
            answer["items"] = Page(answer["items"])
            pages.append(weakref.ref(answer["items"]))
            return answer

    kube = Watched(ObjectCache(scoped=True), objects)
    kube.sync(KINDS)
    assert len(pages) == 1 + 1 + 4  # Models, ModelVersions, 8 Deployments 2 a page
    assert alive == [0] * len(pages)
    assert len(kube.cache.of_model(DEPLOYMENTS, NS, "a")) == 7


def test_a_fresh_read_of_a_models_versions_asks_the_api_server_and_updates_the_cache() -> None:
    """The versions' watch may lag the Models': what a fresh read finds is held from then."""
    kube = Cluster(ObjectCache(), fleet())
    kube.sync(KINDS)
    kube.objects["modelversions"].append(version("a-v2", 120, "a"))  # not watched yet
    assert names(kube.versions_of(NS, "a")) == ["a-v1"]  # the cache's
    before = len(kube.requests)
    assert names(kube.versions_of(NS, "a", fresh=True)) == ["a-v1", "a-v2"]
    assert kube.requests[before:] == [
        ("GET", f"/apis/modelloop.dev/v1alpha1/namespaces/{NS}/modelversions", "spec.model=a")
    ]
    assert names(kube.versions_of(NS, "a")) == ["a-v1", "a-v2"]
    # The watch's late event of what the read brought is no news.
    assert not kube.cache.remember(MODEL_VERSIONS, "ADDED", version("a-v2", 120, "a"))


def test_a_fresh_read_on_a_crd_without_the_selectable_field_lists_the_namespace() -> None:
    kube = Cluster(ObjectCache(), fleet(), field_selectable=False)
    assert names(kube.versions_of(NS, "b", fresh=True)) == ["b-v1"]
    assert [selector for _, _, selector in kube.requests] == ["spec.model=b", ""]
