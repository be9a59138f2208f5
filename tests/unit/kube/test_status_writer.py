"""The one status writer: read-modify-write guarded by resourceVersion, re-applied on a
conflict, nothing sent when nothing changes, no NaN ever sent."""

import copy
import math
from typing import Any

import pytest

from modelloop.api.gvr import Resource
from modelloop.kube.rest import KubeError
from modelloop.kube.status import json_safe, write_status

MODELS = Resource("modelloop.dev", "v1alpha1", "models")
Obj = dict[str, Any]


class FakeApi:
    """An API server of one object: a merge patch of status with a stale resourceVersion
    is a 409, as the real one answers; ``interleave`` lets another writer act first."""

    def __init__(self, obj: Obj) -> None:
        self.obj = obj
        self.patches: list[Obj] = []
        self.interleave: list[Obj] = []  # status changes another writer makes, one per patch

    @property
    def live(self) -> "FakeApi":
        return self

    def get(self, resource: Resource, namespace: str | None, name: str) -> Obj | None:
        return copy.deepcopy(self.obj)

    def merge_patch(
        self, resource: Resource, namespace: str | None, name: str, patch: Obj, sub: str = ""
    ) -> Obj:
        assert sub == "status"
        if self.interleave:
            self._bump(self.interleave.pop(0))
        if patch["metadata"]["resourceVersion"] != self.obj["metadata"]["resourceVersion"]:
            raise KubeError(409, "Conflict", "the object has been modified")
        self.patches.append(patch)
        status = self.obj.setdefault("status", {})
        for key, value in patch["status"].items():
            if value is None:
                status.pop(key, None)
            else:
                status[key] = value
        self._bump({})
        return copy.deepcopy(self.obj)

    def _bump(self, status: Obj) -> None:
        self.obj.setdefault("status", {}).update(status)
        version = int(self.obj["metadata"]["resourceVersion"]) + 1
        self.obj["metadata"]["resourceVersion"] = str(version)


def read(api: FakeApi) -> Obj:
    found = api.get(MODELS, "ns", "m")
    assert found is not None
    return found


def model(status: Obj | None = None) -> Obj:
    return {"metadata": {"name": "m", "namespace": "ns", "resourceVersion": "1"}, "status": status}


def test_a_change_that_changes_nothing_sends_nothing() -> None:
    api = FakeApi(model({"phase": "Serving"}))
    result = write_status(api, MODELS, read(api), lambda s: s | {"phase": "Serving"})
    assert result is not None
    assert not result.written
    assert api.patches == []


def test_only_the_changed_fields_are_sent_and_removed_ones_are_nulled() -> None:
    api = FakeApi(model({"phase": "Progressing", "canary": {"version": "m-v2"}, "x": 1}))

    def promoted(status: Obj) -> Obj:
        return {k: v for k, v in status.items() if k != "canary"} | {"phase": "Serving"}

    result = write_status(api, MODELS, read(api), promoted)
    assert result is not None
    assert result.written
    assert api.patches[0]["status"] == {"phase": "Serving", "canary": None}
    assert api.obj["status"] == {"phase": "Serving", "x": 1}


def test_a_conflict_reapplies_the_change_on_the_fresh_status_keeping_the_other_writers() -> None:
    api = FakeApi(model({"verdicts": [], "phase": "Serving"}))
    before = read(api)
    api.interleave = [{"verdicts": [{"metric": "accuracy"}]}]  # the evaluator writes first
    result = write_status(api, MODELS, before, lambda s: s | {"phase": "Progressing"})
    assert result is not None
    assert result.written
    assert api.obj["status"] == {"verdicts": [{"metric": "accuracy"}], "phase": "Progressing"}
    assert len(api.patches) == 1  # the first attempt was refused, the second accepted


def test_conflicts_without_end_give_up_after_the_attempts() -> None:
    api = FakeApi(model({"phase": "Serving"}))
    api.interleave = [{"n": i} for i in range(10)]
    with pytest.raises(KubeError) as raised:
        write_status(api, MODELS, read(api), lambda s: s | {"phase": "X"}, attempts=3)
    assert raised.value.conflict
    assert api.patches == []


def test_a_vanished_object_is_none() -> None:
    class Gone(FakeApi):
        def get(self, resource: Resource, namespace: str | None, name: str) -> Obj | None:
            return None

    api = Gone(model({}))
    api.interleave = [{"n": 1}]
    assert write_status(api, MODELS, model({}), lambda s: s | {"phase": "X"}) is None


def test_nan_and_infinity_never_reach_the_api_server() -> None:
    assert json_safe({"a": math.nan, "b": [1.0, math.inf, {"c": -math.inf}], "d": "x"}) == {
        "a": None,
        "b": [1.0, None, {"c": None}],
        "d": "x",
    }
    api = FakeApi(model({}))
    write_status(api, MODELS, read(api), lambda s: s | {"value": math.nan, "n": 3})
    assert api.patches[0]["status"] == {"n": 3}  # None for a key that was absent is no change
