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

from modelloop.kube.rest import Kube, Obj, Resource
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


def pod_events(port: int) -> tuple[float] | None:
    """Pod watch events the operator received (a tuple: 0 is an answer); None until it
    serves its metrics and acts."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return None
    if sample(text, "modelloop_leader") != 1.0:
        return None
    return (sample(text, "modelloop_watch_events_total", resource="pods") or 0.0,)


def more_pod_events(port: int, than: float) -> float | None:
    seen = pod_events(port)
    return seen[0] if seen is not None and seen[0] > than else None


def test_a_thousand_unrelated_pods_cause_no_watch_event(
    kube: Kube, cluster_wide_operator: int
) -> None:
    namespace = f"unrelated-{uuid.uuid4().hex[:5]}"
    kube.create(NAMESPACES, None, {"metadata": {"name": namespace}})
    try:
        acting = wait_for(lambda: pod_events(cluster_wide_operator), 60, "the operator acting")
        assert acting is not None
        before = acting[0]
        with ThreadPoolExecutor(8) as pool:
            created = pool.map(
                lambda i: kube.create(PODS, namespace, pod(f"web-{i}", {"app": "web"})),
                range(UNRELATED),
            )
        assert len(list(created)) == UNRELATED
        # A training pod after them, on the same watch: once its event has arrived, so
        # would have every earlier one.
        kube.create(PODS, namespace, pod("training", {LABEL_TRAINING: "1"}))
        after = wait_for(
            lambda: more_pod_events(cluster_wide_operator, than=before),
            60,
            "the training pod's event",
        )
        assert after is not None
        assert after - before == 1, (before, after)  # the training pod's ADDED, nothing else
    finally:
        kube.delete(NAMESPACES, None, namespace)
