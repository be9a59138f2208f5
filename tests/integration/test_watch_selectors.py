"""The API server filters what the operator watches: objects that are not ModelLoop's
never reach it, whatever their number."""

import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from localcluster.chart import OPERATOR_NAMESPACE
from localcluster.controlplane import ControlPlane
from localcluster.operator_process import start_operator
from localcluster.processes import Process, free_port
from localcluster.waiting import wait_for
from tests.conftest import NAMESPACES
from tests.harness.world import sample

from modelloop.api.vocabulary import LABEL_MANAGED_BY, MANAGED_BY
from modelloop.kube.rest import SERVICES, Kube, Obj, Resource
from modelloop.retraining.jobs import LABEL_TRAINING

PODS = Resource("", "v1", "pods")
UNRELATED = 1000


def pod(name: str, labels: dict[str, str]) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        # Bound to a node no kubelet plays: no status update follows the creation.
        "spec": {"nodeName": "nowhere", "containers": [{"name": "c", "image": "x:1"}]},
    }


@pytest.fixture
def cluster_wide_operator(control_plane: ControlPlane, tmp_path: Path) -> Iterator[int]:
    """The operator watching every namespace, as the chart installs it; its metrics port."""
    port = free_port()
    process: Process = start_operator(
        control_plane.operator.kubeconfig,
        tmp_path,
        [],
        args=(f"--metrics-address=127.0.0.1:{port}",),
        env={"MODELLOOP_NAMESPACE": OPERATOR_NAMESPACE},
    )
    yield port
    process.stop()
    print(f"--- {process.log} (last lines)\n{process.log_tail(40)}")


def watch_events(port: int) -> dict[str, float] | None:
    """The watch events the operator received, by kind, and how many of them it timed
    from their write (``delayed services``); None until it serves its metrics and acts."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return None
    if sample(text, "modelloop_leader") != 1.0:
        return None
    seen = {
        kind: sample(text, "modelloop_watch_events_total", resource=kind) or 0.0
        for kind in ("pods", "services")
    }
    delayed = sample(text, "modelloop_watch_delay_seconds_count", resource="services")
    return seen | {"delayed services": delayed or 0.0}


def fence(name: str) -> Obj:
    """A Service labelled as ModelLoop's: its watch event comes after those of everything
    created before it."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": {LABEL_MANAGED_BY: MANAGED_BY}},
        "spec": {"ports": [{"port": 80}]},
    }


def test_a_thousand_unrelated_pods_cause_no_watch_event(
    kube: Kube, cluster_wide_operator: int
) -> None:
    """Pods are not watched at all (a training's result is read from its pods once, when
    its Job has completed): neither unrelated Pods nor one labelled as a training's reach
    the operator."""
    namespace = f"unrelated-{uuid.uuid4().hex[:5]}"
    kube.create(NAMESPACES, None, {"metadata": {"name": namespace}})
    try:
        before = wait_for(lambda: watch_events(cluster_wide_operator), 60, "the operator acting")
        assert before is not None
        with ThreadPoolExecutor(8) as pool:
            created = pool.map(
                lambda i: kube.create(PODS, namespace, pod(f"web-{i}", {"app": "web"})),
                range(UNRELATED),
            )
        assert len(list(created)) == UNRELATED
        kube.create(PODS, namespace, pod("training", {LABEL_TRAINING: "1"}))
        kube.create(SERVICES, namespace, fence("fence"))

        def fenced() -> dict[str, float] | None:
            """Once a Service's creation has come by the watch (timed: an earlier test's
            Service deleted with its namespace comes as an untimed DELETED event)."""
            seen = watch_events(cluster_wide_operator)
            timed = "delayed services"
            return seen if seen is not None and seen[timed] > before[timed] else None

        after = wait_for(fenced, 60, "the fence Service's event")
        assert after is not None
        assert after["services"] > before["services"], (before, after)
        assert after["pods"] == before["pods"] == 0, (before, after)
    finally:
        kube.delete(NAMESPACES, None, namespace)
