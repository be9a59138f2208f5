"""A reconcile's status writes held in a StatusBatch: sent as one, before any other write
the reconcile makes, and at its end; the Events they precede wait for them; a failure
leaves what the changes one by one would have left."""

import copy
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest
from tests.unit.handlers.test_training_writes import NS, model, version
from tests.unit.memory_api import Api

from modelloop.api.resources import MODEL_VERSIONS, MODELS
from modelloop.handlers.serving import reconcile_serving
from modelloop.handlers.training import JOBS, reconcile_training
from modelloop.kube.events import post_event
from modelloop.kube.rest import Kube, KubeError, Obj
from modelloop.kube.status import StatusBatch, StatusChange, owned_fields, write_status


class Lanes(Api):
    """Records, with each write, whether it was made in the urgent lane."""

    def __init__(self, *objects: tuple[Any, Obj]) -> None:
        super().__init__(*objects)
        self.in_urgent = False
        self.lanes: list[tuple[str, bool]] = []

    def urgent(self) -> AbstractContextManager[None]:
        return self._urgent()

    @contextmanager
    def _urgent(self) -> Iterator[None]:
        self.in_urgent = True
        try:
            yield
        finally:
            self.in_urgent = False

    def merge_patch(
        self, resource: Any, namespace: str | None, name: str, patch: Obj, sub: str = ""
    ) -> Obj:
        self.lanes.append((f"{resource.plural}/{sub}", self.in_urgent))
        return super().merge_patch(resource, namespace, name, patch, sub)


def fresh() -> Lanes:
    """A new Model (no status yet) and its first ModelVersion."""
    created, first = model(), version()
    created.pop("status")
    first.pop("status")
    return Lanes((MODELS, created), (MODEL_VERSIONS, first))


def sets(**fields: Any) -> StatusChange:
    return lambda status: status | fields


def status_patches(api: Api) -> int:
    return api.writes.count(("patch", "models", "status"))


def stored(api: Api) -> Obj:
    return copy.deepcopy(api.objects["models", "fd"])


def test_held_changes_are_read_back_and_sent_as_one_write_when_the_block_ends() -> None:
    api = fresh()
    with StatusBatch(api, MODELS, NS, "fd") as batch:
        body = batch.get(MODELS, NS, "fd")
        assert body is not None
        first = write_status(batch, MODELS, body, sets(phase="Serving"))
        assert first is not None
        assert not first.written  # held, not sent
        write_status(batch, MODELS, first.body, sets(stableVersion="fd-v1"))
        assert status_patches(api) == 0
        seen = batch.get(MODELS, NS, "fd")
        assert seen is not None
        assert seen["status"] == {"phase": "Serving", "stableVersion": "fd-v1"}
        assert batch.get(MODEL_VERSIONS, NS, "fd-v1") == api.get(MODEL_VERSIONS, NS, "fd-v1")
    assert status_patches(api) == 1
    assert stored(api)["status"] == {"phase": "Serving", "stableVersion": "fd-v1"}


def test_events_wait_for_the_change_they_follow_and_other_writes_send_it_first() -> None:
    api = fresh()
    with StatusBatch(api, MODELS, NS, "fd") as batch:
        body = stored(api)
        post_event(batch, body, "Before", "nothing held: posted at once")
        held = write_status(batch, MODELS, body, sets(phase="Serving"))
        assert held is not None
        post_event(batch, held.body, "After", "waits for the status it follows")
        assert api.writes == [("create", "events", "")]
        batch.create(JOBS, NS, {"metadata": {"name": "fd-train-1"}})  # the status goes first
        assert api.writes[1:] == [
            ("patch", "models", "status"),
            ("create", "events", ""),
            ("create", "jobs", ""),
        ]
    assert status_patches(api) == 1  # nothing was left to write at the end
    reasons = [o["reason"] for (plural, _), o in api.objects.items() if plural == "events"]
    assert reasons == ["Before", "After"]


def test_a_conflict_at_the_write_applies_every_change_again_to_the_fresh_status() -> None:
    api = fresh()
    with StatusBatch(api, MODELS, NS, "fd") as batch:
        body = stored(api)
        write_status(batch, MODELS, body, sets(phase="Serving"))
        write_status(batch, MODELS, body, sets(stableVersion="fd-v1"))
        # the evaluation writes its own field meanwhile
        write_status(api, MODELS, stored(api), sets(verdicts=[]))
    assert stored(api)["status"] == {"verdicts": [], "phase": "Serving", "stableVersion": "fd-v1"}
    assert status_patches(api) == 3  # the evaluation's, ours refused (409), ours again


def test_when_a_change_refuses_the_ones_before_it_are_written_with_their_events() -> None:
    api = fresh()

    def refuses(status: Obj) -> Obj:
        raise KubeError(409, "Conflict", "status.training changed since it was read")

    def passes() -> None:
        with StatusBatch(api, MODELS, NS, "fd") as batch:
            body = stored(api)
            write_status(batch, MODELS, body, sets(phase="Serving"))
            post_event(batch, body, "Served", "told once its status is written")
            write_status(batch, MODELS, body, refuses)
            post_event(batch, body, "Trained", "never told: its change was not written")

    with pytest.raises(KubeError, match="changed since it was read"):
        passes()
    assert stored(api)["status"] == {"phase": "Serving"}
    reasons = [o["reason"] for (plural, _), o in api.objects.items() if plural == "events"]
    assert reasons == ["Served"]


def test_a_held_status_that_fails_stops_the_write_after_it_past_that_writes_handlers() -> None:
    """A training's number is held, then its Job created: the creation's handler takes a
    conflict for a Job made before a crash. The status's conflict must not reach it."""
    api = fresh()
    handled: list[int] = []

    def refuses(status: Obj) -> Obj:
        raise KubeError(409, "Conflict", "status.training changed since it was read")

    def passes() -> None:
        with StatusBatch(api, MODELS, NS, "fd") as batch:
            write_status(batch, MODELS, stored(api), refuses)
            try:
                batch.create(JOBS, NS, {"metadata": {"name": "fd-train-1"}})
            except KubeError as error:
                handled.append(error.status)

    with pytest.raises(KubeError, match="changed since it was read") as raised:
        passes()
    assert raised.value.conflict  # the status's own error, once out of the block
    assert handled == []
    assert ("create", "jobs", "") not in api.writes


def test_a_pass_that_fails_leaves_written_what_it_held_before_failing() -> None:
    api = fresh()

    def fails() -> None:
        with StatusBatch(api, MODELS, NS, "fd") as batch:
            write_status(batch, MODELS, stored(api), sets(phase="Serving"))
            raise RuntimeError("the pass failed")

    with pytest.raises(RuntimeError, match="the pass failed"):
        fails()
    assert stored(api)["status"] == {"phase": "Serving"}


def test_a_change_held_in_the_urgent_lane_is_written_in_it() -> None:
    api = fresh()
    with StatusBatch(api, MODELS, NS, "fd") as batch:
        with batch.urgent():
            write_status(batch, MODELS, stored(api), sets(phase="RollingBack"))
        write_status(batch, MODELS, stored(api), sets(stableVersion="fd-v1"))
    assert api.lanes == [("models/status", True)]


def test_other_objects_status_is_never_held() -> None:
    api = fresh()
    with StatusBatch(api, MODELS, NS, "fd") as batch:
        listed = batch.get(MODEL_VERSIONS, NS, "fd-v1")
        assert listed is not None
        write_status(batch, MODEL_VERSIONS, listed, sets(phase="Serving"))
        assert api.writes == [("patch", "modelversions", "status")]


def reconcile(api: Kube, batched: bool) -> None:
    """The reconcile's two passes, as the operator runs them (``batched``) or not."""
    if batched:
        with StatusBatch(api, MODELS, NS, "fd") as batch:
            reconcile_serving(batch, NS, "fd")
            reconcile_training(batch, NS, "fd")
    else:
        reconcile_serving(api, NS, "fd")
        reconcile_training(api, NS, "fd")


def timeless(status: Obj) -> Obj:
    return status | {
        "conditions": [
            {k: v for k, v in c.items() if k != "lastTransitionTime"}
            for c in status.get("conditions") or []
        ]
    }


def edit(api: Api) -> None:
    """A spec edit: two replicas, the next generation."""
    body = api.objects["models", "fd"]
    body["spec"]["serving"]["replicas"] = 2
    body["metadata"]["generation"] += 1


@pytest.mark.parametrize("batched", [False, True])
def test_the_passes_leave_the_same_status_and_events_in_fewer_writes(batched: bool) -> None:
    api = fresh()
    reconcile(api, batched)
    created = status_patches(api)
    edit(api)
    reconcile(api, batched)
    edited = status_patches(api) - created
    # Serving and training each write on a new Model and on an edit: once held, one write.
    assert (created, edited) == ((1, 1) if batched else (2, 2))
    unbatched = fresh()
    reconcile(unbatched, False)
    edit(unbatched)
    reconcile(unbatched, False)
    assert timeless(stored(api)["status"]) == timeless(stored(unbatched)["status"])
    assert [o["reason"] for (p, _), o in api.objects.items() if p == "events"] == [
        o["reason"] for (p, _), o in unbatched.objects.items() if p == "events"
    ]


def test_a_change_of_no_field_writes_nothing() -> None:
    api = fresh()
    with StatusBatch(api, MODELS, NS, "fd") as batch:
        write_status(batch, MODELS, stored(api), owned_fields({}))
    assert status_patches(api) == 0
