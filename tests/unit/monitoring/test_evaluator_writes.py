"""The evaluation writes its Models' statuses side by side: one slow write does not hold
the cycle's other Models behind it; each write wakes its Model's reconcile, urgently
when a verdict turned. A tick with more Models due than one cycle reads at once runs
cycles in turn, each asking for its own Models only."""

import re
import threading
from collections.abc import Callable
from typing import Any, cast

import pytest

from modelloop.kube.rest import Kube, Resource
from modelloop.kube.status import write_status
from modelloop.monitoring import evaluator as evaluator_module
from modelloop.monitoring.evaluator import CONCLUDERS, CYCLE_MODELS, Evaluator, WatchCache
from modelloop.monitoring.readings import Answer
from modelloop.monitoring.series import BoundedRegistry
from modelloop.monitoring.telemetry import Telemetry

Obj = dict[str, Any]


class SideBySide:
    """Status writes that each wait until ``width`` of them are in flight at once (a
    barrier: one after another, the first would wait in vain and fail)."""

    def __init__(self, width: int) -> None:
        self.barrier = threading.Barrier(width, timeout=10)
        self.patched: list[str] = []
        self.written: Obj = {}  # the last status patched
        self.lock = threading.Lock()

    @property
    def live(self) -> "SideBySide":
        return self

    def after_writes(self, action: Callable[[], None]) -> None:
        action()

    def get(self, resource: Resource, namespace: str | None, name: str) -> Obj | None:
        return None

    def merge_patch(
        self, resource: Resource, namespace: str | None, name: str, patch: Obj, sub: str = ""
    ) -> Obj:
        self.barrier.wait()
        with self.lock:
            self.patched.append(name)
            self.written = patch["status"]
        meta = {"name": name, "namespace": namespace, "resourceVersion": "2", "generation": 1}
        written = {"apiVersion": "modelloop.dev/v1alpha1", "kind": "Model", "metadata": meta}
        return written | {"status": patch["status"]}

    def create(self, resource: Resource, namespace: str | None, body: Obj) -> Obj:
        return body  # an Event


def model(name: str) -> Obj:
    return {
        "apiVersion": "modelloop.dev/v1alpha1",
        "kind": "Model",
        "metadata": {"name": name, "namespace": "ns", "generation": 1, "resourceVersion": "1"},
        "spec": {
            "metricsProvider": "prometheus",  # not configured: every verdict inconclusive
            "serving": {"template": {"spec": {"containers": [{"name": "s", "image": "x"}]}}},
            "metrics": [{"name": "accuracy", "query": 'acc{version="$version"}'}],
        },
        "status": {"stableVersion": f"{name}-v1"},
    }


def test_the_models_of_a_cycle_are_written_side_by_side() -> None:
    kube = SideBySide(CONCLUDERS)
    evaluator = Evaluator(cast(Kube, kube), {}, Telemetry(BoundedRegistry()))
    names = [f"m{i}" for i in range(CONCLUDERS)]
    cache = WatchCache(models={("ns", n): model(n) for n in names})
    try:
        assert evaluator.tick(cache) == CONCLUDERS
    finally:
        evaluator.close()
    assert sorted(kube.patched) == names
    assert evaluator.failures == {}


def test_a_written_status_wakes_its_model_urgently_only_when_a_verdict_turned() -> None:
    kube = SideBySide(1)
    evaluator = Evaluator(cast(Kube, kube), {}, Telemetry(BoundedRegistry()))
    woken: list[tuple[tuple[str, str], bool]] = []
    evaluator.wake = lambda key, urgent: woken.append((key, urgent))
    body = model("m")
    cache = WatchCache(models={("ns", "m"): body})
    try:
        evaluator.tick(cache)  # a first verdict: inconclusive, said in an Event
        assert woken == [(("ns", "m"), True)]
        written = body | {"status": body["status"] | kube.written}
        edited = written | {"metadata": written["metadata"] | {"generation": 2}}
        cache.models[("ns", "m")] = edited
        evaluator.due.clear()
        evaluator.tick(cache)  # the same verdicts, of a newer generation: no turn
        assert woken[1:] == [(("ns", "m"), False)]
    finally:
        evaluator.close()


def test_a_status_that_already_says_what_the_evaluation_would_is_not_compared_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Compared once per resourceVersion and verdicts: at rest, a cycle reads the status
    of none of its Models; another writer's change is compared (and mended) at once."""
    compared: list[str] = []

    def counting(kube: Any, resource: Resource, body: Obj, change: Any) -> Any:
        compared.append(body["metadata"]["resourceVersion"])
        return write_status(kube, resource, body, change)

    monkeypatch.setattr(evaluator_module, "write_status", counting)
    kube = SideBySide(1)
    evaluator = Evaluator(cast(Kube, kube), {}, Telemetry(BoundedRegistry()))
    body = model("m")
    cache = WatchCache(models={("ns", "m"): body})

    def tick(held: Obj) -> None:
        cache.models[("ns", "m")] = held
        evaluator.due.clear()
        evaluator.tick(cache)

    try:
        tick(body)  # a first verdict: written at resourceVersion 2
        written = body | {"metadata": body["metadata"] | {"resourceVersion": "2"}}
        written |= {"status": body["status"] | kube.written}
        tick(written)
        tick(written)
        assert (compared, kube.patched) == (["1"], ["m"])
        wiped = written | {"metadata": written["metadata"] | {"resourceVersion": "3"}}
        wiped |= {"status": {"stableVersion": "m-v1"}}  # someone else's write
        tick(wiped)
        assert (compared, kube.patched) == (["1", "3"], ["m", "m"])
        assert [v["verdict"] for v in kube.written["verdicts"]] == ["inconclusive"]
    finally:
        evaluator.close()


class GroupedAnswers:
    """A Prometheus that answers a grouped template's query with a value for each Model
    its ``$models`` regex names (0.9 for even-numbered Models, 0.1 for odd), and keeps the
    names each query asked for."""

    name, url, max_concurrency = "prometheus", "http://prometheus", 2

    def __init__(self) -> None:
        self.asked: list[list[str]] = []
        self.lock = threading.Lock()

    def problem(self) -> str | None:
        return None

    def query(self, promql: str) -> Answer:
        [names] = re.findall(r'model=~"([^"]*)"', promql)
        models = names.split("|")
        with self.lock:
            self.asked.append(models)
        return Answer(
            result=[
                {
                    "metric": {"model": m, "version": f"{m}-v1", "modelloop_part": "0"},
                    "value": [0, "0.9" if int(m[1:]) % 2 == 0 else "0.1"],
                }
                for m in models
            ]
        )


def test_a_tick_with_more_models_due_than_a_cycle_reads_asks_for_them_in_turn() -> None:
    """After a restart every Model is due at the first tick: its answers are read a
    cycle's worth of Models at a time, each Model's verdict from its own cycle's answer."""
    count = 2 * CYCLE_MODELS + 1
    names = [f"m{i}" for i in range(count)]
    grouped = {
        "metricsProvider": "prometheus",
        "metrics": [
            {"name": "accuracy", "templateRef": {"name": "acc"}, "objective": {"min": 0.5}}
        ],
    }
    models = {("ns", n): model(n) for n in names}
    for body in models.values():
        body["spec"] |= grouped
    template = {
        "query": 'acc{model=~"$models"}',
        "groupBy": ["model", "version"],
    }
    cache = WatchCache(models=models, templates={("ns", "acc"): {"spec": template}})
    source = GroupedAnswers()
    evaluator = Evaluator(
        cast(Kube, SideBySide(1)), {"prometheus": cast(Any, source)}, Telemetry(BoundedRegistry())
    )
    try:
        assert evaluator.tick(cache, "prometheus") == count
    finally:
        evaluator.close()
    assert [len(asked) for asked in source.asked] == [CYCLE_MODELS, CYCLE_MODELS, 1]
    assert sorted(n for asked in source.asked for n in asked) == sorted(names)
    verdicts = {
        key[1]: [e.verdict for e in snapshot.evaluated]
        for key, snapshot in evaluator.snapshots.items()
    }
    assert verdicts == {n: ["pass" if int(n[1:]) % 2 == 0 else "breach"] for n in names}
