"""What a training creates, and how its outcome and result are read: a ``batch/v1`` Job,
or a workload — a custom resource that trains beyond one pod (Kubeflow Trainer's
TrainJob, Kubeflow's PyTorchJob, KubeRay's RayJob, or any kind with declared rules). Pure.

Every kind is named like a Job (``<model>-train-<n>``) and carries the same labels and
annotations (jobs.training_metadata), so sequence numbers, adoption after a lost status
and re-creation after a crash work the same for all of them.

A Job's trainer reports in its pod's termination message. A workload's cannot: it has
many pods (which one is "rank 0" is each kind's own convention), and a Ray job's driver
runs inside the head pod, whose container never terminates with it. So for a workload
ModelLoop creates, before the workload, a ConfigMap ``<name>-result`` (owned by the
Model) and a Role and RoleBinding of the same name (owned by the ConfigMap) that let the
workload's ServiceAccount(s) ``get`` and ``update`` that one ConfigMap; the trainer's
``modelloop.sdk.report`` writes the result there, found by MODELLOOP_RESULT_CONFIGMAP.
The operator reads it once the workload's rule says it succeeded, and deletes the
workload and the ConfigMap (the garbage collector takes the Role and RoleBinding) after
the result is recorded.

RayJob's two statuses can disagree (ray-project/kuberay#2314: jobDeploymentStatus
Failed while jobStatus is still RUNNING; #3553: jobStatus FAILED while the deployment is
still Running because the submitter has not finished). The preset waits for KubeRay's
own verdict, jobDeploymentStatus terminal — it accounts for the submitter and for
retries (backoffLimit: a failed attempt becomes Retrying in the same status write, so an
observed Failed is final), and KubeRay bounds the disagreement with its grace period —
and then succeeds only when the Ray job itself SUCCEEDED: Complete with STOPPED (or
any other jobStatus) is a failure, and so is Failed whatever jobStatus says.
"""

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from ..api.model import Retraining, Workload
from ..api.resources import owner_reference
from ..api.vocabulary import LABEL_MANAGED_BY, LABEL_MODEL
from ..kube.rest import Obj
from .jobs import LABEL_TRAINING, training_labels, with_env
from .result import RESULT_CONFIGMAP_ENV, RESULT_KEY

Path = tuple[str, ...]  # keys from the object's root; "*": every item of a list or map
Outcome = Literal["Complete", "Failed"]
DEFAULT_SERVICE_ACCOUNT = "default"


@dataclass(frozen=True)
class Condition:
    """Holds while status.conditions has this type with status True."""

    type: str


@dataclass(frozen=True)
class FieldIn:
    """Holds while the field at ``path`` has one of ``values`` (with ``negate``: none)."""

    path: Path
    values: frozenset[str]
    negate: bool = False


@dataclass(frozen=True)
class AllOf:
    rules: tuple["Rule", ...]


@dataclass(frozen=True)
class AnyOf:
    rules: tuple["Rule", ...]


Rule = Condition | FieldIn | AllOf | AnyOf


@dataclass(frozen=True)
class Kind:
    """A kind of training object: where ModelLoop writes its env and labels, who runs the
    trainer, and the rules that read its outcome (failure first)."""

    api_version: str
    kind: str
    success: Rule
    failure: Rule
    containers: tuple[Path, ...] = ()  # none: every item of every "containers" list
    pod_templates: tuple[Path, ...] = ()  # they get the labels; their spec names the account
    service_accounts: tuple[Path, ...] = ()  # none: every serviceAccountName in the spec
    result: Literal["terminationMessage", "configMap"] = "configMap"

    def owns(self, obj: Obj) -> bool:
        return bool(obj.get("apiVersion") == self.api_version and obj.get("kind") == self.kind)


JOB = Kind(
    "batch/v1",
    "Job",
    Condition("Complete"),
    Condition("Failed"),
    containers=(("spec", "template", "spec", "containers", "*"),),
    pod_templates=(("spec", "template"),),
    result="terminationMessage",
)
_DEPLOYMENT = ("status", "jobDeploymentStatus")
_RAY_JOB = ("status", "jobStatus")
PRESETS = {
    # Kubeflow Trainer v2: the runtime (a ClusterTrainingRuntime) holds the pod templates;
    # spec.trainer is merged into its trainer container on every node.
    "trainJob": Kind(
        "trainer.kubeflow.org/v1alpha1",
        "TrainJob",
        Condition("Complete"),
        Condition("Failed"),
        containers=(("spec", "trainer"),),
        service_accounts=(("spec", "podSpecOverrides", "*", "serviceAccountName"),),
    ),
    "pyTorchJob": Kind(
        "kubeflow.org/v1",
        "PyTorchJob",
        Condition("Succeeded"),
        Condition("Failed"),
        containers=(("spec", "pytorchReplicaSpecs", "*", "template", "spec", "containers", "*"),),
        pod_templates=(("spec", "pytorchReplicaSpecs", "*", "template"),),
    ),
    # The driver runs on the head (or, with entrypoint resources, on a worker) and
    # inherits its container's env.
    "rayJob": Kind(
        "ray.io/v1",
        "RayJob",
        AllOf(
            (
                FieldIn(_DEPLOYMENT, frozenset({"Complete"})),
                FieldIn(_RAY_JOB, frozenset({"SUCCEEDED"})),
            )
        ),
        AnyOf(
            (
                FieldIn(_DEPLOYMENT, frozenset({"Failed", "ValidationFailed"})),
                AllOf(
                    (
                        FieldIn(_DEPLOYMENT, frozenset({"Complete"})),
                        FieldIn(_RAY_JOB, frozenset({"SUCCEEDED"}), negate=True),
                    )
                ),
            )
        ),
        containers=(
            ("spec", "rayClusterSpec", "headGroupSpec", "template", "spec", "containers", "*"),
            (
                "spec",
                "rayClusterSpec",
                "workerGroupSpecs",
                "*",
                "template",
                "spec",
                "containers",
                "*",
            ),
        ),
        pod_templates=(
            ("spec", "rayClusterSpec", "headGroupSpec", "template"),
            ("spec", "rayClusterSpec", "workerGroupSpecs", "*", "template"),
        ),
    ),
}


def kind_of(retraining: Retraining) -> Kind:
    """The kind a Model's trainings create."""
    workload = retraining.workload
    if workload is None:
        return JOB
    if workload.preset is not None:
        return PRESETS[workload.preset]
    assert workload.success is not None
    assert workload.failure is not None
    return Kind(
        workload.api_version,
        workload.kind,
        _rule(workload.success.condition, workload.success.field, workload.success.values),
        _rule(workload.failure.condition, workload.failure.field, workload.failure.values),
    )


def _rule(condition: str | None, field: str | None, values: list[str] | None) -> Rule:
    if condition is not None:
        return Condition(condition)
    assert field is not None
    return FieldIn(tuple(field.split(".")), frozenset(values or ()))


def _at(node: Any, path: Path) -> Iterator[Any]:
    """The values at ``path`` below ``node``."""
    if not path:
        yield node
        return
    key, rest = path[0], path[1:]
    if key == "*":
        children = node if isinstance(node, list) else (node or {}).values()
        for child in children if isinstance(node, list | dict) else ():
            yield from _at(child, rest)
    elif isinstance(node, dict) and key in node:
        yield from _at(node[key], rest)


def _containers(node: Any) -> Iterator[dict[str, Any]]:
    """Every item of every list named ``containers`` below ``node``."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "containers" and isinstance(value, list):
                yield from (c for c in value if isinstance(c, dict))
            else:
                yield from _containers(value)
    elif isinstance(node, list):
        for item in node:
            yield from _containers(item)


def _named(node: Any, name: str) -> Iterator[Any]:
    """Every value of a key ``name`` below ``node``."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from [value] if key == name else _named(value, name)
    elif isinstance(node, list):
        for item in node:
            yield from _named(item, name)


def holds(rule: Rule, obj: Obj) -> bool:
    if isinstance(rule, Condition):
        return _true_condition(obj, rule.type) is not None
    if isinstance(rule, FieldIn):
        found = {str(v) for v in _at(obj, rule.path) if isinstance(v, str | int | float | bool)}
        return bool(found & rule.values) != rule.negate
    if isinstance(rule, AllOf):
        return all(holds(r, obj) for r in rule.rules)
    return any(holds(r, obj) for r in rule.rules)


def _true_condition(obj: Obj, type_: str) -> dict[str, Any] | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == type_ and c.get("status") == "True":
            return c
    return None


def outcome(kind: Kind, obj: Obj) -> Outcome | None:
    """'Complete' or 'Failed' once the kind's rule says so, else None (running)."""
    if holds(kind.failure, obj):
        return "Failed"
    if holds(kind.success, obj):
        return "Complete"
    return None


def _conditions(rule: Rule) -> Iterator[str]:
    if isinstance(rule, Condition):
        yield rule.type
    elif isinstance(rule, AllOf | AnyOf):
        for r in rule.rules:
            yield from _conditions(r)


def _fields(rule: Rule) -> Iterator[Path]:
    if isinstance(rule, FieldIn):
        yield rule.path
    elif isinstance(rule, AllOf | AnyOf):
        for r in rule.rules:
            yield from _fields(r)


def why_failed(kind: Kind, obj: Obj) -> str:
    """Why a failed workload failed, in its controller's words: the failure condition's
    reason and message, else the fields the rules read and status.reason/message."""
    name = f"{kind.kind} {obj['metadata']['name']} failed"
    for type_ in _conditions(kind.failure):
        c = _true_condition(obj, type_)
        if c is not None:
            return f"{name}: {c.get('reason')}: {c.get('message')}"
    paths = list(dict.fromkeys([*_fields(kind.failure), *_fields(kind.success)]))
    read = [f"{p[-1]} {v}" for p in paths for v in _at(obj, p)]
    status = obj.get("status") or {}
    said = ": ".join(str(status[k]) for k in ("reason", "message") if status.get(k))
    return name + (f": {', '.join(read)}" if read else "") + (f" ({said})" if said else "")


def result_name(name: str) -> str:
    """The ConfigMap (and its Role and RoleBinding) of a workload's result."""
    return f"{name}-result"


def service_accounts(kind: Kind, workload: Workload, template: Obj) -> list[str]:
    """Who runs the trainer: the workload's serviceAccountName, else every account the
    template names (at the kind's paths), else the namespace's default."""
    if workload.service_account_name:
        return [workload.service_account_name]
    if kind.service_accounts or kind.pod_templates:
        paths = [
            *kind.service_accounts,
            *((*p, "spec", "serviceAccountName") for p in kind.pod_templates),
        ]
        named = [v for p in paths for v in _at(template, p)]
    else:
        named = list(_named(template.get("spec"), "serviceAccountName"))
    found = sorted({v for v in named if isinstance(v, str) and v})
    return found or [DEFAULT_SERVICE_ACCOUNT]


def build_workload(kind: Kind, workload: Workload, metadata: Obj, env: list[dict[str, str]]) -> Obj:
    """The workload from its template: ``metadata`` as a Job's (jobs.training_metadata),
    ModelLoop's labels on its pod templates, and ``env`` with where to report on every
    container at the kind's paths."""
    built: Obj = {
        "apiVersion": workload.api_version,
        "kind": workload.kind,
        "metadata": metadata,
        "spec": copy.deepcopy(workload.template["spec"]),
    }
    env = [*env, {"name": RESULT_CONFIGMAP_ENV, "value": result_name(metadata["name"])}]
    if kind.containers:
        for path in kind.containers:
            for container in _ensured(built, path):
                with_env(container, env)
    else:
        for container in _containers(built["spec"]):
            with_env(container, env)
    labels = {k: metadata["labels"][k] for k in (LABEL_MODEL, LABEL_TRAINING, LABEL_MANAGED_BY)}
    for path in kind.pod_templates:
        for pod in _at(built, path):
            if isinstance(pod, dict):
                pod_meta = pod.setdefault("metadata", {})
                pod_meta["labels"] = {**(pod_meta.get("labels") or {}), **labels}
    return built


def _ensured(obj: Obj, path: Path) -> Iterator[dict[str, Any]]:
    """The objects at ``path``; a path without "*" is made when missing (TrainJob's
    spec.trainer may be left to the runtime, but ModelLoop's env must reach it)."""
    if "*" not in path:
        node = obj
        for key in path:
            node = node.setdefault(key, {})
        yield node
        return
    yield from (c for c in _at(obj, path) if isinstance(c, dict))


def result_configmap(model: Obj, name: str, sequence: int) -> Obj:
    """The empty ConfigMap a workload's trainer writes its result to, owned by the Model."""
    meta = model["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": result_name(name),
            "namespace": meta["namespace"],
            "labels": training_labels(meta["name"], sequence),
            "ownerReferences": [owner_reference(model)],
        },
        "data": {RESULT_KEY: ""},
    }


def _owned_by(configmap: Obj) -> list[dict[str, Any]]:
    meta = configmap["metadata"]
    return [{"apiVersion": "v1", "kind": "ConfigMap", "name": meta["name"], "uid": meta["uid"]}]


def result_role(configmap: Obj) -> Obj:
    """get and update on that one ConfigMap, owned by it."""
    meta = configmap["metadata"]
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "labels": meta["labels"],
            "ownerReferences": _owned_by(configmap),
        },
        "rules": [
            {
                "apiGroups": [""],
                "resources": ["configmaps"],
                "resourceNames": [meta["name"]],
                "verbs": ["get", "update"],
            }
        ],
    }


def result_binding(configmap: Obj, accounts: list[str]) -> Obj:
    """The role bound to the accounts that run the trainer, owned by the ConfigMap."""
    meta = configmap["metadata"]
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "labels": meta["labels"],
            "ownerReferences": _owned_by(configmap),
        },
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": meta["name"]},
        "subjects": [
            {"kind": "ServiceAccount", "name": account, "namespace": meta["namespace"]}
            for account in accounts
        ],
    }


def configmap_result(configmap: Obj | None) -> str | None:
    """The result a trainer wrote to its ConfigMap (None: no ConfigMap, or nothing yet)."""
    return ((configmap or {}).get("data") or {}).get(RESULT_KEY) or None
