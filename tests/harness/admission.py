"""Crash tests hold the operator between two writes with real API machinery: a
ValidatingAdmissionPolicy that denies the operator's next write of a kind.

A policy takes effect a moment after it is created (the API server compiles it
and its binding asynchronously), so the context manager proves it is in force
before handing over, and proves it is gone after removing it: the same policy
also denies a dry-run ConfigMap with a probe name, and the harness polls that.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from localcluster.controlplane import ControlPlane
from localcluster.waiting import wait_for

from modelloop.kube.rest import Kube, KubeError, Resource

POLICIES = Resource("admissionregistration.k8s.io", "v1", "validatingadmissionpolicies")
BINDINGS = Resource("admissionregistration.k8s.io", "v1", "validatingadmissionpolicybindings")
CONFIG_MAPS = Resource("", "v1", "configmaps")
PROBE_MESSAGE = "admission probe"


def _probe_denied(kube: Kube, probe: str) -> bool:
    try:
        kube.request(
            "POST",
            CONFIG_MAPS.path("default"),
            body={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": probe}},
            query={"dryRun": "All"},
        )
    except KubeError as error:
        if PROBE_MESSAGE in error.message:
            return True
        raise
    return False


@contextmanager
def deny_operator_writes(
    control_plane: ControlPlane, name: str, rules: list[dict[str, Any]], message: str
) -> Iterator[None]:
    """While inside, the operator's requests matching ``rules`` are denied with ``message``."""
    kube = control_plane.admin.kube()
    probe = f"probe-{name}"
    user = control_plane.operator.user
    probe_rule = {
        "apiGroups": [""],
        "apiVersions": ["v1"],
        "resources": ["configmaps"],
        "operations": ["CREATE"],
    }
    is_probe = f"(object != null && object.metadata.name == '{probe}')"
    kube.create(
        POLICIES,
        None,
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {"resourceRules": [*rules, probe_rule]},
                "validations": [
                    {
                        "expression": f"!{is_probe}",
                        "message": PROBE_MESSAGE,
                    },
                    {
                        "expression": f"{is_probe} || request.userInfo.username != '{user}'",
                        "message": message,
                    },
                ],
            },
        },
    )
    kube.create(
        BINDINGS,
        None,
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": name},
            "spec": {"policyName": name, "validationActions": ["Deny"]},
        },
    )
    try:
        wait_for(lambda: _probe_denied(kube, probe), 30, f"policy {name} in force")
        yield
    finally:
        kube.delete(BINDINGS, None, name)
        kube.delete(POLICIES, None, name)
        wait_for(lambda: not _probe_denied(kube, probe), 30, f"policy {name} lifted")
        kube.close()  # its sockets are not left to the garbage collector
