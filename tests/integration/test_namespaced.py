"""Namespaced mode: the operator under the chart's RBAC with ``watchNamespaces`` — Roles
bound in a fixed pool of namespaces, known in advance — serves Models there and
cannot touch anything elsewhere."""

from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from localcluster.apply import REPO, load
from localcluster.chart import operator_identity
from localcluster.controlplane import ControlPlane, Identity
from localcluster.operator_process import start_operator
from localcluster.waiting import wait_for

from modelloop.api.resources import MODEL_VERSIONS, MODELS
from modelloop.kube.rest import DEPLOYMENTS, Kube, KubeError, Resource

pytestmark = pytest.mark.namespaced

POOL = ("modelloop-pool-a", "modelloop-pool-b")
NAMESPACES = Resource("", "v1", "namespaces")
EXAMPLES = REPO / "examples"


def ready(kube: Kube, namespace: str) -> bool:
    model = kube.get(MODELS, namespace, "fraud-detector") or {}
    conditions = (model.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


@pytest.fixture(scope="module")
def namespaced(
    kube: Kube, control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Identity:
    """The pool's namespaces exist first: a RoleBinding needs its namespace."""
    for name in POOL:
        if kube.get(NAMESPACES, None, name) is None:
            kube.create(
                NAMESPACES,
                None,
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
            )
    pool = "{" + ",".join(POOL) + "}"
    return operator_identity(
        control_plane.admin,
        tmp_path_factory.mktemp("namespaced"),
        "--set",
        f"watchNamespaces={pool}",
        release="modelloop-ns",
    )


@pytest.fixture
def pool(kube: Kube) -> Iterator[tuple[str, ...]]:
    """The pool, emptied of Models after the test (their children go with them)."""
    yield POOL
    for namespace in POOL:
        for model in kube.list(MODELS, namespace):
            kube.delete(MODELS, namespace, model["metadata"]["name"])
        for version in kube.list(MODEL_VERSIONS, namespace):
            kube.delete(MODEL_VERSIONS, namespace, version["metadata"]["name"])


def test_models_in_the_pool_are_served_and_nothing_else_is_reachable(
    kube: Kube, namespaced: Identity, pool: tuple[str, ...], namespace: str, tmp_path: Path
) -> None:
    operator = start_operator(namespaced.kubeconfig, tmp_path, list(pool))
    try:
        for name in pool:
            [model] = load(EXAMPLES / "fraud-detector.yaml")
            [version] = load(EXAMPLES / "fraud-detector-v1.yaml")
            kube.create(MODELS, name, model)
            kube.create(MODEL_VERSIONS, name, version)
        for name in pool:
            wait_for(partial(ready, kube, name), 90, f"the Model in {name} Ready")
            assert kube.get(DEPLOYMENTS, name, "fraud-detector-v1") is not None
        operator.check_running()
    finally:
        operator.stop()
    # Outside the pool (the test's own namespace) the account may do nothing.
    with namespaced.kube() as as_operator:
        for resource in (MODELS, DEPLOYMENTS):
            with pytest.raises(KubeError) as denied:
                as_operator.list(resource, namespace)
            assert denied.value.status == 403
