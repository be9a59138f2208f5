"""The Helm chart as the tests use it: rendered by a real ``helm template`` (helm is
built from the Go module proxy by hack/helm/build.sh), and the operator's identity
made from it — the chart's ServiceAccount and RBAC applied, and a kubeconfig
carrying a token the TokenRequest API issued for that ServiceAccount. Every test
that runs the operator thereby proves the chart's RBAC is enough."""

import functools
import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from localcluster.apply import RESOURCES, apply
from localcluster.controlplane import ControlPlane, Identity
from localcluster.waiting import wait_for
from modelloop.kube.rest import Kube, KubeError

REPO = Path(__file__).parents[1]
CHART = REPO / "charts" / "modelloop"
RELEASE = "modelloop"
OPERATOR_NAMESPACE = "modelloop-system"
# The values the suites install with: the providers' Secrets they read, nothing more.
SUITE_VALUES = Path(__file__).with_name("chart-values.yaml")
RBAC_KINDS = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")

Obj = dict[str, Any]


@functools.cache
def helm() -> str:
    """``MODELLOOP_HELM``, else the cached build (built now when missing); asked once per run."""
    explicit = os.environ.get("MODELLOOP_HELM")
    if explicit:
        return explicit
    built = subprocess.run(
        [str(REPO / "hack" / "helm" / "build.sh")], capture_output=True, text=True, check=True
    )
    return built.stdout.strip()


def render(*args: str, values: Path | None = SUITE_VALUES, release: str = RELEASE) -> list[Obj]:
    """``helm template`` of the chart into the operator's namespace, as objects."""
    command = [helm(), "template", release, str(CHART), "--namespace", OPERATOR_NAMESPACE]
    if values is not None:
        command += ["--values", str(values)]
    result = subprocess.run([*command, *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise AssertionError(f"helm template failed: {result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def install_operator_identity(cluster: ControlPlane, workdir: Path) -> None:
    """The suites' operator speaks as the chart's ServiceAccount, with cluster-wide RBAC."""
    cluster.operator = operator_identity(cluster.admin, workdir)


def operator_identity(
    admin: Identity, workdir: Path, *helm_args: str, release: str = RELEASE
) -> Identity:
    """Apply a release's ServiceAccount and RBAC (rendered with ``helm_args``); return
    a kubeconfig speaking as that account, with a token from the TokenRequest API."""
    manifests = render(*helm_args, release=release)
    with admin.kube() as kube:
        namespaces = RESOURCES["Namespace"]
        if kube.get(namespaces, None, OPERATOR_NAMESPACE) is None:
            kube.create(
                namespaces,
                None,
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OPERATOR_NAMESPACE}},
            )
        for manifest in manifests:
            if manifest["kind"] in RBAC_KINDS:
                apply(kube, manifest)
    [account] = [m["metadata"]["name"] for m in manifests if m["kind"] == "ServiceAccount"]
    return service_account_identity(admin, OPERATOR_NAMESPACE, account, workdir)


def service_account_identity(
    admin: Identity, namespace: str, account: str, workdir: Path
) -> Identity:
    """A kubeconfig speaking as a ServiceAccount, with a token from the TokenRequest API."""
    with admin.kube() as kube:
        token = wait_for(lambda: _token(kube, namespace, account), 30, f"a token for {account}")
    config = yaml.safe_load(admin.kubeconfig.read_text())
    context = next(
        c["context"] for c in config["contexts"] if c["name"] == config["current-context"]
    )
    cluster = next(c for c in config["clusters"] if c["name"] == context["cluster"])
    path = workdir / f"{namespace}-{account}.kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [cluster],
                "users": [{"name": account, "user": {"token": token}}],
                "contexts": [
                    {"name": account, "context": {"cluster": cluster["name"], "user": account}}
                ],
                "current-context": account,
            }
        )
    )
    path.chmod(0o600)
    return Identity(f"system:serviceaccount:{namespace}:{account}", path)


def _token(admin: Kube, namespace: str, account: str) -> str | None:
    """A day-long token from the TokenRequest API (None while the account is not there)."""
    try:
        review = admin.request(
            "POST",
            f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token",
            body={
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"expirationSeconds": 86400},
            },
        )
    except KubeError as error:
        if error.not_found:
            return None
        raise
    return str(review["status"]["token"])
