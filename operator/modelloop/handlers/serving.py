"""Reconcile a Model's serving: read the world, ask the planner, apply its actions."""

import logging
from datetime import UTC, datetime

from pydantic import ValidationError

from ..api.model import ModelSpec
from ..api.resources import (
    ANNOTATION_ROLE_SINCE,
    GROUP,
    LABEL_MANAGED_BY,
    LABEL_MODEL,
    LABEL_ROLE,
    MANAGED_BY,
    VERSION,
)
from ..conditions import condition, merge_conditions
from ..kube.events import post_event
from ..kube.rest import DEPLOYMENTS, SERVICES, Kube, Obj, Resource
from ..serving.plan import Apply, Delete, MarkVersion, VersionView, plan_serving

log = logging.getLogger(__name__)

MODELS = Resource(GROUP, VERSION, "models")
MODEL_VERSIONS = Resource(GROUP, VERSION, "modelversions")


def _timestamp(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def _owned_by(obj: Obj, model: Obj) -> bool:
    uid = model["metadata"]["uid"]
    return any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences") or [])


def versions_of(kube: Kube, namespace: str, model_name: str) -> list[Obj]:
    return [v for v in kube.list(MODEL_VERSIONS, namespace) if v["spec"]["model"] == model_name]


def _patch_status(kube: Kube, model: Obj, status: Obj) -> None:
    current = model.get("status") or {}
    if all(current.get(key) == status.get(key) for key in status):
        return
    meta = model["metadata"]
    kube.merge_patch(
        MODELS,
        meta["namespace"],
        meta["name"],
        {"metadata": {"resourceVersion": meta["resourceVersion"]}, "status": status},
        sub="status",
    )


def _mark_version(kube: Kube, namespace: str, mark: MarkVersion, now: datetime) -> None:
    stamp = _timestamp(now)
    kube.merge_patch(
        MODEL_VERSIONS,
        namespace,
        mark.version,
        {
            "metadata": {
                "labels": {LABEL_ROLE: mark.role},
                "annotations": {ANNOTATION_ROLE_SINCE: stamp if mark.role else None},
            }
        },
    )
    if mark.phase is not None:
        kube.merge_patch(
            MODEL_VERSIONS,
            namespace,
            mark.version,
            {
                "status": {
                    "phase": mark.phase,
                    "reason": mark.reason,
                    "message": mark.message,
                    "lastTransitionTime": stamp,
                }
            },
            sub="status",
        )


def _execute(kube: Kube, model: Obj, action: Apply | Delete | MarkVersion, now: datetime) -> None:
    namespace = model["metadata"]["namespace"]
    if isinstance(action, Apply):
        manifest = action.manifest
        resource = DEPLOYMENTS if manifest["kind"] == "Deployment" else SERVICES
        kube.apply(resource, namespace, manifest)
        verb = "Created" if action.created else "Updated"
        post_event(kube, model, verb, f"{verb} {manifest['kind']} {manifest['metadata']['name']}")
    elif isinstance(action, Delete):
        resource = DEPLOYMENTS if action.kind == "Deployment" else SERVICES
        if kube.delete(resource, namespace, action.name):
            post_event(
                kube, model, "Deleted", f"Deleted {action.kind} {action.name}: it no longer serves"
            )
    else:
        _mark_version(kube, namespace, action, now)


def _report_invalid(kube: Kube, model: Obj, error: ValidationError, now: datetime) -> None:
    message = "; ".join(
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
    )[:1000]
    status = model.get("status") or {}
    generation = model["metadata"].get("generation")
    ready = condition("Ready", "False", "InvalidSpec", message)
    conditions = merge_conditions(status.get("conditions") or [], [ready], now, generation)
    if conditions != status.get("conditions"):
        post_event(kube, model, "InvalidSpec", message, "Warning")
    _patch_status(kube, model, {"conditions": conditions, "observedGeneration": generation})


def reconcile_serving(kube: Kube, namespace: str, name: str, now: datetime | None = None) -> None:
    """Bring the world in line with the plan for one Model; idempotent and restart-safe."""
    now = now or datetime.now(UTC)
    model = kube.get(MODELS, namespace, name)
    if model is None or model["metadata"].get("deletionTimestamp"):
        return  # the garbage collector removes what the Model owned
    try:
        ModelSpec.model_validate(model["spec"])
    except ValidationError as error:
        _report_invalid(kube, model, error, now)
        return
    selector = f"{LABEL_MODEL}={name},{LABEL_MANAGED_BY}={MANAGED_BY}"
    deployments = [d for d in kube.list(DEPLOYMENTS, namespace, selector) if _owned_by(d, model)]
    services = [s for s in kube.list(SERVICES, namespace, selector) if _owned_by(s, model)]
    versions = [VersionView.of(v) for v in versions_of(kube, namespace, name)]
    plan = plan_serving(model, versions, deployments, services, now)
    for action in plan.actions:
        _execute(kube, model, action, now)
    for note in plan.events:
        post_event(kube, model, note.reason, note.message, note.type)
    _patch_status(kube, model, plan.status)
