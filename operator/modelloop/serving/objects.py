"""Pure builders of the Deployment and Services that serve a version."""

import copy
import hashlib
import json
from typing import Any

from ..api.model import ModelSpec
from ..api.resources import owner_reference
from ..api.vocabulary import (
    GROUP,
    LABEL_MANAGED_BY,
    LABEL_MODEL,
    LABEL_VERSION,
    MANAGED_BY,
)
from ..control.sharding import shard_label

ANNOTATION_APPLIED_HASH = f"{GROUP}/applied-hash"
Obj = dict[str, Any]


def model_labels(model_name: str) -> dict[str, str]:
    return {LABEL_MODEL: model_name, LABEL_MANAGED_BY: MANAGED_BY}


def version_labels(model_name: str, version: str) -> dict[str, str]:
    return {**model_labels(model_name), LABEL_VERSION: version}


def with_hash(manifest: Obj) -> Obj:
    """Stamp the manifest with a hash of itself, so an unchanged object is not re-applied."""
    digest = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:16]
    manifest["metadata"].setdefault("annotations", {})[ANNOTATION_APPLIED_HASH] = digest
    return manifest


def applied_hash(obj: Obj | None) -> str | None:
    if obj is None:
        return None
    annotations = obj.get("metadata", {}).get("annotations") or {}
    value = annotations.get(ANNOTATION_APPLIED_HASH)
    return str(value) if value is not None else None


def _serving_env(model_name: str, version: str, uri: str) -> list[Obj]:
    return [
        {"name": "MODEL_NAME", "value": model_name},
        {"name": "MODEL_VERSION", "value": version},
        {"name": "MODEL_URI", "value": uri},
    ]


def build_deployment(model: Obj, spec: ModelSpec, version: str, uri: str, replicas: int) -> Obj:
    """The Deployment of one version: the user's pod template plus ModelLoop's labels and env.

    The version is part of the selector (selectors are immutable), so each
    version has its own Deployment and traffic moves without restarting pods.
    """
    name = model["metadata"]["name"]
    labels = version_labels(name, version)
    template = copy.deepcopy(spec.serving.template or {})
    meta = template.setdefault("metadata", {})
    meta["labels"] = {**(meta.get("labels") or {}), **labels}
    env = _serving_env(name, version, uri)
    reserved = {e["name"] for e in env}
    for container in template.get("spec", {}).get("containers", []):
        kept = [e for e in container.get("env") or [] if e.get("name") not in reserved]
        container["env"] = kept + env
    return with_hash(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": version,
                "namespace": model["metadata"]["namespace"],
                "labels": labels | shard_label(model),
                "ownerReferences": [owner_reference(model)],
            },
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {LABEL_MODEL: name, LABEL_VERSION: version}},
                "template": template,
            },
        }
    )


def _service(
    model: Obj, port: int, name: str, labels: dict[str, str], selector: dict[str, str]
) -> Obj:
    return with_hash(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": name,
                "namespace": model["metadata"]["namespace"],
                "labels": labels | shard_label(model),
                "ownerReferences": [owner_reference(model)],
            },
            "spec": {
                "selector": selector,
                "ports": [{"name": "http", "port": port, "targetPort": port, "protocol": "TCP"}],
            },
        }
    )


def build_version_service(model: Obj, spec: ModelSpec, version: str) -> Obj:
    """A Service for one version: the backend that traffic providers weight."""
    name = model["metadata"]["name"]
    return _service(
        model,
        spec.serving.port,
        version,
        version_labels(name, version),
        {LABEL_MODEL: name, LABEL_VERSION: version},
    )


def build_model_service(model: Obj, spec: ModelSpec) -> Obj:
    """The Model's own Service, selecting every serving version's pods."""
    name = model["metadata"]["name"]
    return _service(model, spec.serving.port, name, model_labels(name), {LABEL_MODEL: name})
