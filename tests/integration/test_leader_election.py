"""Two operator replicas under the chart's RBAC with leader election: exactly one
acts, and the other takes over when the first is killed."""

import time
import urllib.request
from collections.abc import Callable

from localcluster.apply import REPO, load
from localcluster.chart import OPERATOR_NAMESPACE, RELEASE
from localcluster.processes import Process, free_port
from localcluster.waiting import wait_for
from tests.harness.world import sample

from modelloop.api.resources import MODEL_VERSIONS, MODELS
from modelloop.control.leader import LEASES
from modelloop.kube.rest import DEPLOYMENTS, Kube

LEASE = f"{OPERATOR_NAMESPACE}/{RELEASE}"  # the one the chart's Role names


def acted(process: Process, namespace: str) -> bool:
    """Whether it explained a decision about the Model (every action posts an Event)."""
    return f"{namespace}/fraud-detector:" in process.log_text()


def leading(port: int) -> float | None:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return sample(response.read().decode(), "modelloop_leader")


def holder(kube: Kube) -> str:
    lease = kube.get(LEASES, OPERATOR_NAMESPACE, RELEASE) or {}
    return str((lease.get("spec") or {}).get("holderIdentity") or "")


def test_two_replicas_one_actor_and_a_takeover(
    kube: Kube, namespace: str, operator: Callable[..., Process]
) -> None:
    kube.delete(LEASES, OPERATOR_NAMESPACE, RELEASE)  # none left by an earlier run
    ports = [free_port(), free_port()]
    replicas = [
        operator(f"--leader-elect={LEASE}", f"--metrics-address=127.0.0.1:{port}") for port in ports
    ]
    wait_for(lambda: kube.get(LEASES, OPERATOR_NAMESPACE, RELEASE), 30, "a leader elected")
    [model] = load(REPO / "examples" / "fraud-detector.yaml")
    [version] = load(REPO / "examples" / "fraud-detector-v1.yaml")
    kube.create(MODELS, namespace, model)
    kube.create(MODEL_VERSIONS, namespace, version)
    wait_for(lambda: kube.get(DEPLOYMENTS, namespace, "fraud-detector-v1"), 60, "served")
    [leader] = [r for r in replicas if holder(kube).endswith(f"-{r.pid}")]
    [standby] = [r for r in replicas if r is not leader]
    wait_for(lambda: acted(leader, namespace), 30, "the leader's Events")
    assert not acted(standby, namespace), standby.log_tail()
    # The standby may still be starting when the leader acts: wait for its word.
    wait_for(lambda: "waiting to lead" in standby.log_text(), 30, "the standby waiting to lead")
    port_of = dict(zip([r.pid for r in replicas], ports, strict=True))
    assert leading(port_of[leader.pid]) == 1.0
    assert leading(port_of[standby.pid]) == 0.0  # a standby serves /metrics too

    leader.kill()
    killed = time.monotonic()
    kube.delete(DEPLOYMENTS, namespace, "fraud-detector-v1")  # work only a leader does
    wait_for(lambda: "leading as" in standby.log_text(), 40, "the standby takes over the Lease")
    wait_for(
        lambda: kube.get(DEPLOYMENTS, namespace, "fraud-detector-v1"), 30, "the new leader acts"
    )
    # Bounded by the Lease's 15 s and a renewal period; reported, not asserted.
    print(f"takeover: {time.monotonic() - killed:.1f} s from SIGKILL to the Deployment back")
    assert holder(kube).endswith(f"-{standby.pid}")
    assert leading(port_of[standby.pid]) == 1.0
    lease = kube.get(LEASES, OPERATOR_NAMESPACE, RELEASE) or {}
    assert lease["spec"]["leaseTransitions"] >= 1
