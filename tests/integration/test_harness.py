"""The test cluster does what the other tests rely on: real controllers, kwok's
simulated node, admission policies that hold the operator, a real Prometheus."""

import threading
from http.server import HTTPServer
from typing import Any

import pytest
from localcluster.controlplane import ControlPlane
from localcluster.processes import free_port
from localcluster.prometheus import scrape_config
from localcluster.waiting import wait_for
from prometheus_api_client import PrometheusConnect
from prometheus_client import CollectorRegistry, Gauge, start_http_server
from tests.harness.admission import deny_operator_writes

from modelloop.control.leader import LEASES
from modelloop.kube.rest import DEPLOYMENTS, SERVICES, Kube, KubeError, Resource

JOBS = Resource("batch", "v1", "jobs")
PODS = Resource("", "v1", "pods")


def pod_template(labels: dict[str, str], restart_policy: str = "Never") -> dict[str, Any]:
    return {
        "metadata": {"labels": labels},
        "spec": {
            "restartPolicy": restart_policy,
            "containers": [{"name": "main", "image": "registry.invalid/none:1"}],
        },
    }


def condition_true(obj: dict[str, Any] | None, type_: str) -> bool:
    conditions = ((obj or {}).get("status") or {}).get("conditions") or []
    return any(c["type"] == type_ and c["status"] == "True" for c in conditions)


def test_deployment_becomes_available_on_the_simulated_node(kube: Kube, namespace: str) -> None:
    labels = {"app": "web"}
    kube.create(
        DEPLOYMENTS,
        namespace,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": labels},
                "template": pod_template(labels, restart_policy="Always"),
            },
        },
    )
    wait_for(
        lambda: condition_true(kube.get(DEPLOYMENTS, namespace, "web"), "Available"),
        60,
        "Deployment Available",
    )
    pods = kube.list(PODS, namespace, "app=web")
    assert len(pods) == 3
    assert {p["spec"]["nodeName"] for p in pods} == {"kwok-node-0"}
    assert all(p["status"]["phase"] == "Running" and p["status"].get("podIP") for p in pods)


def test_the_simulated_node_renews_its_lease(kube: Kube) -> None:
    """Its Lease is the node's heartbeat: were it not renewed, the node controller would
    mark every pod NotReady after the grace period (50 s) and Deployments would stall."""

    def renew_time() -> str:
        lease = kube.get(LEASES, "kube-node-lease", "kwok-node-0") or {}
        return str((lease.get("spec") or {}).get("renewTime") or "")

    first = renew_time()
    wait_for(lambda: renew_time() not in ("", first), 30, "the node's Lease renewed")


def test_job_pods_complete_but_training_pods_wait_for_the_harness(
    kube: Kube, namespace: str
) -> None:
    for name, labels in (
        ("plain", {"job": "plain"}),
        ("training", {"job": "training", "modelloop.dev/training": "t-1"}),
    ):
        kube.create(
            JOBS,
            namespace,
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {"name": name},
                "spec": {"backoffLimit": 0, "template": pod_template(labels)},
            },
        )
    wait_for(
        lambda: condition_true(kube.get(JOBS, namespace, "plain"), "Complete"),
        60,
        "the plain Job Complete (kwok's pod-complete stage, then the Job controller)",
    )

    def training_pod_running() -> bool:
        pods = kube.list(PODS, namespace, "job=training")
        return len(pods) == 1 and pods[0]["status"].get("phase") == "Running"

    wait_for(training_pod_running, 30, "the training pod Running")
    assert not condition_true(kube.get(JOBS, namespace, "training"), "Complete")


def test_operator_identity_is_its_own_user(control_plane: ControlPlane) -> None:
    with control_plane.operator.kube() as as_operator:
        review = as_operator.request(
            "POST",
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        )
    assert review["status"]["userInfo"]["username"] == control_plane.operator.user


def test_admission_policy_holds_only_the_operator(
    control_plane: ControlPlane, kube: Kube, namespace: str
) -> None:
    def create(kube: Kube, name: str) -> None:
        kube.create(
            SERVICES,
            namespace,
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name},
                "spec": {"ports": [{"port": 80}]},
            },
        )

    rules = [
        {
            "apiGroups": [""],
            "apiVersions": ["v1"],
            "resources": ["services"],
            "operations": ["CREATE"],
        }
    ]
    with control_plane.operator.kube() as as_operator:
        with deny_operator_writes(control_plane, "deny-services", rules, "held by the test"):
            with pytest.raises(KubeError, match="held by the test") as denied:
                create(as_operator, "by-operator")
            assert denied.value.status in (403, 422)
            create(kube, "by-admin")
        create(as_operator, "by-operator")


def test_prometheus_scrapes_and_answers_queries(prometheus: Any) -> None:
    registry = CollectorRegistry()
    Gauge("harness_answer", "A value the test sets", ["slice"], registry=registry).labels(
        slice="eu"
    ).set(42)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        prom = prometheus(scrape_config({"exporter": f"127.0.0.1:{port}"}))
        client = PrometheusConnect(url=prom.url, disable_ssl=True)
        result = wait_for(
            lambda: client.custom_query('harness_answer{slice="eu"}'), 30, "the scraped series"
        )
        assert float(result[0]["value"][1]) == 42.0
        assert result[0]["metric"]["job"] == "exporter"
    finally:
        _shutdown(server, thread)


def _shutdown(server: HTTPServer, thread: threading.Thread) -> None:
    server.shutdown()
    server.server_close()
    thread.join(5)
