"""The KServe InferenceService a Model serves through (``spec.serving.kserve``). Pure: no I/O.

ModelLoop writes only these parts of the InferenceService:

- ``spec.predictor.model.storageUri``: the artifact of the version its latest revision
  serves, and the predictor labels ``modelloop.dev/model`` and ``modelloop.dev/version``,
  which KServe puts on the predictor's pods (per-version series come from them), the
  version also as a predictor annotation (for KServe's inference logger);
- ``spec.predictor.canaryTrafficPercent``: the latest revision's share while a canary
  runs or a revision replaces another, the rest going to the last revision that had all
  the traffic (KServe's ``latestRolledoutRevision``); left out, the latest ready
  revision takes everything;
- two annotations: ``modelloop.dev/stable-version``, the version that rolled-out
  revision serves (so the split can be read back after a restart), and
  ``modelloop.dev/replaced-revision``, KServe's latest created revision when the
  predictor last changed: the predictor's own revision is a later one. (KServe's
  ``status.observedGeneration`` is the Knative Service's, not the InferenceService's,
  so it cannot say whether the status describes the predictor as written.)
"""

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..api.model import KServeServing
from ..api.resources import owner_reference
from ..api.vocabulary import GROUP, LABEL_MODEL, LABEL_SHARD, LABEL_VERSION
from ..conditions import ConditionStatus, condition, find
from ..control.sharding import shard_label
from .objects import model_labels, with_hash

Obj = dict[str, Any]
API_VERSION = "serving.kserve.io/v1beta1"
ANNOTATION_MODE = "serving.kserve.io/deploymentMode"
ANNOTATION_STABLE = f"{GROUP}/stable-version"
ANNOTATION_REPLACED = f"{GROUP}/replaced-revision"
READY_REASONS = {
    "True": "InferenceServiceReady",
    "False": "InferenceServiceNotReady",
    "Unknown": "InferenceServiceProgressing",
}


@dataclass(frozen=True)
class Serve:
    """What the predictor serves: ``version`` (artifact ``uri``) in its latest revision,
    at ``percent`` of the traffic (None: all of it once ready), ``stable`` the version of
    the rolled-out revision taking the rest."""

    version: str
    uri: str
    percent: int | None
    stable: str


@dataclass(frozen=True)
class Served:
    """What an InferenceService's spec says it serves (None where it says nothing)."""

    version: str | None
    uri: str | None
    percent: int | None
    stable: str | None


def inference_service_name(model: Obj, settings: KServeServing) -> str:
    """The adopted InferenceService, else the one named after the Model."""
    return settings.adopt or str(model["metadata"]["name"])


def _annotations(isvc: Obj) -> dict[str, str]:
    return dict(isvc.get("metadata", {}).get("annotations") or {})


def _predictor_status(isvc: Obj) -> Obj:
    components = (isvc.get("status") or {}).get("components") or {}
    predictor: Obj = components.get("predictor") or {}
    return predictor


def served(isvc: Obj) -> Served:
    predictor = (isvc.get("spec") or {}).get("predictor") or {}
    percent = predictor.get("canaryTrafficPercent")
    return Served(
        version=(predictor.get("labels") or {}).get(LABEL_VERSION),
        uri=(predictor.get("model") or {}).get("storageUri"),
        percent=int(percent) if percent is not None else None,
        stable=_annotations(isvc).get(ANNOTATION_STABLE),
    )


def deployment_mode(isvc: Obj) -> str | None:
    """The mode KServe serves it in: its annotation, else what its status reports."""
    mode = _annotations(isvc).get(ANNOTATION_MODE) or (isvc.get("status") or {}).get(
        "deploymentMode"
    )
    return str(mode) if mode else None


def revision_ready(isvc: Obj) -> bool:
    """The predictor as written runs: KServe created a revision since it last changed, and
    that latest created revision is its latest ready one."""
    status = _predictor_status(isvc)
    created, ready = status.get("latestCreatedRevision"), status.get("latestReadyRevision")
    replaced = _annotations(isvc).get(ANNOTATION_REPLACED, "")
    return bool(created) and created != replaced and created == ready


def rolled_out(isvc: Obj) -> bool:
    """The predictor as written has all the traffic: no percent, its revision ready, and
    KServe counts that revision as rolled out (so a canary's rest would go to it)."""
    status = _predictor_status(isvc)
    return (
        served(isvc).percent is None
        and revision_ready(isvc)
        and status.get("latestRolledoutRevision") == status.get("latestCreatedRevision")
    )


def serves_ready(isvc: Obj | None, version: str) -> bool:
    """``version`` is the predictor's, and its revision is ready to take traffic."""
    return isvc is not None and served(isvc).version == version and revision_ready(isvc)


def replaced_revision(current: Obj | None, serve: Serve) -> str:
    """The revision the predictor as ``serve`` writes it replaces: the recorded one while
    the predictor serves the same artifact, else KServe's latest created revision now."""
    if current is None:
        return ""
    now = served(current)
    if (now.version, now.uri) == (serve.version, serve.uri):
        return _annotations(current).get(ANNOTATION_REPLACED, "")
    return str(_predictor_status(current).get("latestCreatedRevision") or "")


def with_serving(predictor: Obj, model_name: str, serve: Serve) -> Obj:
    """The predictor with ModelLoop's fields set: everything else kept as written."""
    result = copy.deepcopy(predictor)
    result["model"] = {**(result.get("model") or {}), "storageUri": serve.uri}
    labels = {LABEL_MODEL: model_name, LABEL_VERSION: serve.version}
    result["labels"] = {**(result.get("labels") or {}), **labels}
    # As an annotation too: KServe's inference logger forwards pod annotations
    # (logger.metadataAnnotations), which is how the feedback service names the version.
    result["annotations"] = {**(result.get("annotations") or {}), LABEL_VERSION: serve.version}
    result.pop("canaryTrafficPercent", None)
    if serve.percent is not None:
        result["canaryTrafficPercent"] = serve.percent
    return result


def _our_annotations(serve: Serve, replaced: str) -> dict[str, str]:
    return {ANNOTATION_STABLE: serve.stable, ANNOTATION_REPLACED: replaced}


def build_inference_service(
    model: Obj, settings: KServeServing, serve: Serve, replaced: str
) -> Obj:
    """The InferenceService ModelLoop creates: named after the Model, owned by it, the
    user's predictor serving ``serve``, server-side applied when its hash changes."""
    meta = model["metadata"]
    annotations = {ANNOTATION_MODE: settings.deployment_mode, **_our_annotations(serve, replaced)}
    return with_hash(
        {
            "apiVersion": API_VERSION,
            "kind": "InferenceService",
            "metadata": {
                "name": meta["name"],
                "namespace": meta["namespace"],
                "labels": model_labels(meta["name"]) | shard_label(model),
                "annotations": annotations,
                "ownerReferences": [owner_reference(model)],
            },
            "spec": {"predictor": with_serving(settings.predictor or {}, meta["name"], serve)},
        }
    )


def _escaped(key: str) -> str:
    """A map key as a JSON pointer token (RFC 6901)."""
    return key.replace("~", "~0").replace("/", "~1")


def _map_ops(path: str, current: dict[str, str] | None, wanted: dict[str, str]) -> list[Obj]:
    """Ops that set ``wanted``'s keys in the map at ``path``, leaving its other keys."""
    if current is None:
        return [{"op": "add", "path": path, "value": wanted}]
    return [
        {"op": "add", "path": f"{path}/{_escaped(key)}", "value": value}
        for key, value in sorted(wanted.items())
        if current.get(key) != value
    ]


def adopt_patch(
    isvc: Obj, model_name: str, serve: Serve, replaced: str, shard: Mapping[str, str] | None = None
) -> list[Obj]:
    """The guarded JSON patch that makes the user's InferenceService serve ``serve``: the
    predictor is replaced whole after a ``test`` of it as read (a concurrent edit fails the
    patch, and the next pass reads again); ModelLoop's labels (so its changes wake the
    Model's reconcile; ``shard``, the Model's shard label, so that its shard's watch
    selects it) and annotations are added. [] when nothing must change."""
    meta = isvc["metadata"]
    predictor = isvc["spec"]["predictor"]
    desired = with_serving(predictor, model_name, serve)
    ops: list[Obj] = []
    if desired != predictor:
        ops.append({"op": "test", "path": "/spec/predictor", "value": predictor})
        ops.append({"op": "replace", "path": "/spec/predictor", "value": desired})
    labels = meta.get("labels")
    ops += _map_ops("/metadata/labels", labels, model_labels(model_name) | dict(shard or {}))
    if LABEL_SHARD in (labels or {}) and LABEL_SHARD not in (shard or {}):  # to the default
        ops.append({"op": "remove", "path": f"/metadata/labels/{_escaped(LABEL_SHARD)}"})
    ops += _map_ops(
        "/metadata/annotations", meta.get("annotations"), _our_annotations(serve, replaced)
    )
    return ops


def ready_condition(isvc: Obj | None, name: str) -> Obj:
    """The Model's Ready: the InferenceService's own, in ModelLoop's reason codes."""
    if isvc is None:
        return condition(
            "Ready", "False", "InferenceServicePending", f"InferenceService {name} is being created"
        )
    ready = find((isvc.get("status") or {}).get("conditions") or [], "Ready")
    if ready is None:
        return condition(
            "Ready",
            "Unknown",
            "InferenceServiceProgressing",
            f"InferenceService {name} reports no Ready condition yet",
        )
    status: ConditionStatus = "Unknown"
    if ready.get("status") in ("True", "False"):
        status = "True" if ready["status"] == "True" else "False"
    said = ": ".join(str(p) for p in (ready.get("reason"), ready.get("message")) if p)
    message = f"InferenceService {name}" + (f": {said}" if said else f" Ready {status}")
    return condition("Ready", status, READY_REASONS[status], message[:1000])
