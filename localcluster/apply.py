"""``kubectl apply`` for the few kinds the tests and the demo apply from YAML files."""

from functools import partial
from pathlib import Path
from typing import Any

import yaml

from localcluster.waiting import wait_for
from modelloop.api.resources import MODEL_VERSIONS, MODELS
from modelloop.api.vocabulary import GROUP, VERSION
from modelloop.kube.rest import Kube, Resource

REPO = Path(__file__).parents[1]
CRDS = Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions")
RESOURCES = {
    "CustomResourceDefinition": CRDS,
    "Namespace": Resource("", "v1", "namespaces"),
    "Model": MODELS,
    "ModelVersion": MODEL_VERSIONS,
    "MetricTemplate": Resource(GROUP, VERSION, "metrictemplates"),
    "ServiceAccount": Resource("", "v1", "serviceaccounts"),
    "ConfigMap": Resource("", "v1", "configmaps"),
    "Service": Resource("", "v1", "services"),
    "Deployment": Resource("apps", "v1", "deployments"),
    "ClusterRole": Resource("rbac.authorization.k8s.io", "v1", "clusterroles"),
    "ClusterRoleBinding": Resource("rbac.authorization.k8s.io", "v1", "clusterrolebindings"),
    "Role": Resource("rbac.authorization.k8s.io", "v1", "roles"),
    "RoleBinding": Resource("rbac.authorization.k8s.io", "v1", "rolebindings"),
}
CLUSTER_SCOPED = {"CustomResourceDefinition", "Namespace", "ClusterRole", "ClusterRoleBinding"}


def load(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def apply(kube: Kube, manifest: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
    """Namespaced objects go to their own namespace, else to ``namespace``."""
    kind = manifest["kind"]
    namespace = manifest["metadata"].get("namespace", namespace)
    return kube.apply(RESOURCES[kind], None if kind in CLUSTER_SCOPED else namespace, manifest)


def apply_files(kube: Kube, paths: list[Path], namespace: str | None = None) -> None:
    for path in paths:
        for manifest in load(path):
            apply(kube, manifest, namespace)


def _established(kube: Kube, name: str) -> bool:
    crd = kube.get(CRDS, None, name) or {}
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)


def install_crds(kube: Kube, directory: Path = REPO / "crds") -> list[str]:
    """Apply the CRDs of a directory (default: the generated ones) and wait until the API
    server serves them."""
    manifests = [m for path in sorted(directory.glob("*.yaml")) for m in load(path)]
    for manifest in manifests:
        apply(kube, manifest)
    for manifest in manifests:
        _wait_established(kube, manifest["metadata"]["name"])
    return [m["metadata"]["name"] for m in manifests]


def install_crd(kube: Kube, manifest: dict[str, Any]) -> None:
    """Apply one CRD (a new one, or a change of one) and wait until it is Established."""
    apply(kube, manifest)
    _wait_established(kube, manifest["metadata"]["name"])


def _wait_established(kube: Kube, name: str) -> None:
    wait_for(partial(_established, kube, name), 30, f"CRD {name} Established")
