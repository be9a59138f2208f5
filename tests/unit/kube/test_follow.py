"""The second watch of a kind: listed, then watched from the list's version; resumed from
the last version seen when the API server ends it; listed again when that version
expired (410) or anything failed."""

import threading
from collections.abc import Iterator

import pytest

from modelloop.api.resources import MODEL_VERSIONS
from modelloop.kube import follow as follow_module
from modelloop.kube.follow import follow
from modelloop.kube.rest import Kube, KubeError, Obj, Objs, Resource


def body(name: str, rv: int) -> Obj:
    return {"metadata": {"name": name, "resourceVersion": str(rv)}}


class Scripted(Kube):
    """Lists and watches as scripted: each watch call takes the next script."""

    def __init__(
        self, lists: list[tuple[Objs, int]], watches: list[list[tuple[str, Obj]] | Exception]
    ):
        super().__init__(None)  # type: ignore[arg-type]
        self.lists, self.watches = lists, watches
        self.calls: list[tuple[str, str | None]] = []

    def pages(
        self, resource: Resource, selector: str | None, namespace: str | None
    ) -> Iterator[tuple[Objs, int]]:
        self.calls.append(("list", selector))
        yield self.lists.pop(0)

    def watch(
        self,
        resource: Resource,
        namespace: str | None,
        selector: str | None,
        resource_version: str,
        timeout_seconds: int,
    ) -> Iterator[tuple[str, Obj]]:
        self.calls.append(("watch", resource_version))
        script = self.watches.pop(0)
        if isinstance(script, Exception):
            raise script
        yield from script


def test_list_watch_resume_and_relist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(follow_module, "RETRY_SECONDS", 0)
    stopped = threading.Event()
    kube = Scripted(
        lists=[([body("v1", 3)], 10), ([body("v1", 3), body("v2", 40)], 50)],
        watches=[
            [("ADDED", body("v2", 11)), ("BOOKMARK", body("", 20))],  # ended by the server
            [("ERROR", {"code": 410, "message": "too old resource version"})],
            KubeError(500, "InternalError", "etcd"),  # after the relist's watch: list again
            [("DELETED", body("v2", 60))],
        ],
    )
    kube.lists.append(([], 55))
    seen: list[tuple[str | None, str]] = []

    def on_event(kind: str | None, obj: Obj) -> None:
        seen.append((kind, obj["metadata"]["name"]))
        if kind == "DELETED":
            stopped.set()

    follow(kube, MODEL_VERSIONS, "ml", "!modelloop.dev/shard", on_event, stopped)
    assert seen == [
        (None, "v1"),
        ("ADDED", "v2"),  # the bookmark is not an event
        (None, "v1"),  # listed again after the 410
        (None, "v2"),
        ("DELETED", "v2"),  # listed again after the failure: empty
    ]
    assert kube.calls == [
        ("list", "!modelloop.dev/shard"),
        ("watch", "10"),
        ("watch", "20"),  # resumed from the bookmark's version
        ("list", "!modelloop.dev/shard"),
        ("watch", "50"),
        ("list", "!modelloop.dev/shard"),
        ("watch", "55"),
    ]
