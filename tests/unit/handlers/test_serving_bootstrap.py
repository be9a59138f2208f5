"""A first version is chosen to serve (``Bootstrap``) only on the versions the API server
holds, not on a cache that lags the Model's watch: the 10 000-Model bench saw a Model
bootstrap a Retired first version whose status and successor its cache lacked."""

import copy

from tests.unit.handlers.test_training_writes import NS, events, model, version
from tests.unit.memory_api import Api

from modelloop.api.resources import MODEL_VERSIONS, MODELS
from modelloop.api.vocabulary import LABEL_ROLE
from modelloop.handlers.serving import reconcile_serving
from modelloop.kube.rest import Obj, Objs


class LaggingApi(Api):
    """An API server whose cached reads of versions show ``cached`` until a fresh read."""

    def __init__(self, cached: list[Obj], *objects: tuple[str, Obj]) -> None:
        super().__init__(*((MODELS if k == "model" else MODEL_VERSIONS, o) for k, o in objects))
        self.cached: list[Obj] | None = cached
        self.fresh_reads = 0

    def versions_of(self, namespace: str, model: str, fresh: bool = False) -> Objs:
        if fresh:
            self.fresh_reads += 1
            self.cached = None  # the read fills the cache
        if self.cached is not None:
            return copy.deepcopy(self.cached)
        return super().versions_of(namespace, model, fresh)


def new_model() -> Obj:
    created = model()
    created.pop("status")
    return created


def named(name: str, phase: str | None, **labels: str) -> Obj:
    made = version()
    made["metadata"] |= {"name": name, "labels": labels}
    made["spec"]["uri"] = f"s3://m/fd/{name}"
    if phase is None:
        made.pop("status")
    else:
        made["status"] = {"phase": phase}
    return made


def serving(api: Api) -> list[str]:
    return sorted(
        name
        for (plural, name), o in api.objects.items()
        if plural == "modelversions" and (o["metadata"].get("labels") or {}).get(LABEL_ROLE)
    )


def test_a_lagging_cache_does_not_bootstrap_a_version_that_already_retired() -> None:
    retired = named("fd-v1", "Retired")
    serving_v2 = named("fd-v2", "Serving", **{LABEL_ROLE: "stable"})
    api = LaggingApi(
        [named("fd-v1", None)],  # v1 created, its status and v2 not yet watched
        ("model", new_model()),
        ("version", retired),
        ("version", serving_v2),
    )
    reconcile_serving(api, NS, "fd")
    assert api.fresh_reads == 1
    assert serving(api) == ["fd-v2"]
    assert api.objects["models", "fd"]["status"]["stableVersion"] == "fd-v2"
    assert ("apply", "deployments", "") in api.writes
    assert api.objects["deployments", "fd-v2"]
    assert ("deployments", "fd-v1") not in api.objects


def test_a_first_version_bootstraps_once_the_api_server_confirms_it() -> None:
    api = LaggingApi(
        [named("fd-v1", None)], ("model", new_model()), ("version", named("fd-v1", None))
    )
    reconcile_serving(api, NS, "fd")
    assert api.fresh_reads == 1
    assert serving(api) == ["fd-v1"]
    assert api.objects["modelversions", "fd-v1"]["status"]["reason"] == "Bootstrap"
    reconcile_serving(api, NS, "fd")  # labelled stable now: no second read
    assert api.fresh_reads == 1
    assert "Created" in events(api)


def test_a_model_that_serves_reads_its_versions_from_the_cache_only() -> None:
    serving_v1 = named("fd-v1", "Serving", **{LABEL_ROLE: "stable"})
    api = LaggingApi([serving_v1], ("model", model()), ("version", serving_v1))
    reconcile_serving(api, NS, "fd")
    assert api.fresh_reads == 0
    assert serving(api) == ["fd-v1"]
