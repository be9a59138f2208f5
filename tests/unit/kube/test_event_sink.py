"""Every Event posted also goes to the process' sink (the notifier), with its evidence:
even when the API server refused the Event, and a failing sink never reaches the caller."""

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from modelloop.api.gvr import Resource
from modelloop.kube import events
from modelloop.kube.rest import KubeError

Obj = dict[str, Any]
MODEL = {
    "apiVersion": "modelloop.dev/v1alpha1",
    "kind": "Model",
    "metadata": {"name": "fraud", "namespace": "risk", "uid": "u1", "resourceVersion": "7"},
}


class FakeKube:
    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse
        self.created: list[Obj] = []

    def after_writes(self, action: Callable[[], None]) -> None:
        action()

    def create(self, resource: Resource, namespace: str | None, body: Obj) -> Obj:
        if self.refuse:
            raise KubeError(403, "Forbidden", "events is forbidden")
        self.created.append(body)
        return body


@pytest.fixture
def sunk() -> Iterator[list[tuple[Obj, Obj, Obj | None]]]:
    received: list[tuple[Obj, Obj, Obj | None]] = []
    events.set_sink(lambda event, involved, evidence: received.append((event, involved, evidence)))
    yield received
    events.set_sink(None)


@pytest.mark.parametrize("refused", [False, True])
def test_the_sink_gets_the_event_and_its_evidence(
    sunk: list[tuple[Obj, Obj, Obj | None]], refused: bool
) -> None:
    kube = FakeKube(refuse=refused)
    evidence = {"verdicts": [{"metric": "precision", "slice": "us", "value": 0.5}]}
    events.post_event(kube, MODEL, "Breach", "precision on slice us", "Warning", evidence)  # type: ignore[arg-type]
    [(event, involved, given)] = sunk
    assert (event["reason"], event["type"], event["message"]) == (
        "Breach",
        "Warning",
        "precision on slice us",
    )
    assert event["involvedObject"]["uid"] == "u1"
    assert involved is MODEL
    assert given == evidence
    assert kube.created == ([] if refused else [event])


def test_a_failing_sink_never_reaches_the_caller() -> None:
    def broken(event: Obj, involved: Obj, evidence: Obj | None) -> None:
        raise RuntimeError("a bug in the notifier")

    events.set_sink(broken)
    try:
        kube = FakeKube()
        events.post_event(kube, MODEL, "Promoted", "fraud-v2 promoted")  # type: ignore[arg-type]
        assert [e["reason"] for e in kube.created] == ["Promoted"]
    finally:
        events.set_sink(None)
