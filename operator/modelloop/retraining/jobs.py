"""Training Jobs and the ModelVersions they make, as manifests. Pure.

Names come from the Model and the training's sequence number, so a restarted
operator finds what it already made: ``<model>-train-<n>`` and ``<model>-v<n>``,
shortened with a hash where a name would pass 63 characters. Everything the
operator needs to record a finished training travels on the Job itself
(annotations; a training workload carries the same metadata and env, see
workloads.py), so a lost Model status loses nothing; the new-data counter at its
start travels on to the ModelVersion, where the new-data guard finds it again.

The trainer's env: MODELLOOP_FAILING_SLICES lists the failing slices with their
matchers, MODELLOOP_FAILING_SINCE maps each to the start of its trouble (RFC 3339):
the data of a slice before that time came from a world that has changed.
"""

import copy
import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..api.model import ModelSpec, Slice, TrainingRecord, TrainingTrigger
from ..api.resources import owner_reference
from ..api.vocabulary import API_VERSION, GROUP, LABEL_MANAGED_BY, LABEL_MODEL, MANAGED_BY
from ..conditions import stamp
from ..control.sharding import shard_label, version_labels
from ..kube.rest import Obj
from ..monitoring.promql import slice_matchers
from .result import TrainingResult

LABEL_TRAINING = f"{GROUP}/training"  # the sequence number, on the Job and its pods
ANNOTATION_TRIGGER = f"{GROUP}/trigger"
ANNOTATION_BASE_VERSION = f"{GROUP}/base-version"
ANNOTATION_DATA_START = f"{GROUP}/data-start"
ANNOTATION_DATA_END = f"{GROUP}/data-end"
ANNOTATION_STARTED = f"{GROUP}/started"
ANNOTATION_NEW_DATA_COUNT = f"{GROUP}/new-data-count"
MAX_NAME = 63


def _name(model: str, suffix: str) -> str:
    name = f"{model}{suffix}"
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(model.encode()).hexdigest()[:8]
    return f"{model[: MAX_NAME - len(suffix) - 9].rstrip('-')}-{digest}{suffix}"


def job_name(model: str, sequence: int) -> str:
    return _name(model, f"-train-{sequence}")


def version_name(model: str, sequence: int) -> str:
    return _name(model, f"-v{sequence}")


def failing_slices(spec: ModelSpec, names: list[str]) -> list[dict[str, Any]]:
    """The failing slices as structured matchers: the trainer gets what was measured."""
    by_name: dict[str, Slice] = {s.name: s for s in spec.slices}
    return [
        {
            "name": name,
            "matchers": [m.model_dump() for m in slice_matchers(by_name[name])]
            if name in by_name
            else [],
        }
        for name in names
    ]


def training_env(
    model: Obj,
    spec: ModelSpec,
    record: TrainingRecord,
    base_version: str | None,
    failing: list[str],
    base_uri: str | None = None,
    onset: Mapping[str, datetime] | None = None,
) -> list[dict[str, str]]:
    """The env every trainer gets (MODELLOOP_*), a Job's or a workload's."""
    assert spec.retraining is not None
    meta = model["metadata"]
    end = record.started
    start = end - spec.retraining.data_window.delta
    since = onset or {}
    return [
        {"name": "MODELLOOP_MODEL", "value": meta["name"]},
        {"name": "MODELLOOP_NAMESPACE", "value": meta["namespace"]},
        {"name": "MODELLOOP_BASE_VERSION", "value": base_version or ""},
        {"name": "MODELLOOP_BASE_URI", "value": base_uri or ""},
        {"name": "MODELLOOP_TRIGGER", "value": record.trigger.model_dump_json(exclude={"failing"})},
        {"name": "MODELLOOP_FAILING_SLICES", "value": json.dumps(failing_slices(spec, failing))},
        {
            "name": "MODELLOOP_FAILING_SINCE",
            "value": json.dumps({s: stamp(since[s]) for s in failing if s in since}),
        },
        {"name": "MODELLOOP_DATA_START", "value": stamp(start)},
        {"name": "MODELLOOP_DATA_END", "value": stamp(end)},
        {
            "name": "MODELLOOP_OUTPUT_URI",
            "value": f"{spec.retraining.output_uri.rstrip('/')}/{record.sequence}",
        },
    ]


def training_labels(model: str, sequence: int) -> dict[str, str]:
    """The labels of a training's object (and of its pods, where ModelLoop writes them)."""
    return {LABEL_MODEL: model, LABEL_TRAINING: str(sequence), LABEL_MANAGED_BY: MANAGED_BY}


def with_env(container: dict[str, Any], env: list[dict[str, str]]) -> None:
    """ModelLoop's env appended to a container's, replacing any variable of the same name."""
    reserved = {e["name"] for e in env}
    kept = [e for e in container.get("env") or [] if e.get("name") not in reserved]
    container["env"] = kept + env


def training_metadata(
    model: Obj,
    spec: ModelSpec,
    record: TrainingRecord,
    base_version: str | None,
    template_meta: Mapping[str, Any],
) -> Obj:
    """The metadata of a training's object: its name, ModelLoop's labels, and in
    annotations everything needed to record the training when status is lost."""
    assert spec.retraining is not None
    meta = model["metadata"]
    end = record.started
    start = end - spec.retraining.data_window.delta
    labels = training_labels(meta["name"], record.sequence) | shard_label(model)
    return {
        "name": record.job,
        "namespace": meta["namespace"],
        "labels": {**(template_meta.get("labels") or {}), **labels},
        "annotations": {
            **(template_meta.get("annotations") or {}),
            ANNOTATION_TRIGGER: record.trigger.model_dump_json(),
            ANNOTATION_BASE_VERSION: base_version or "",
            ANNOTATION_DATA_START: stamp(start),
            ANNOTATION_DATA_END: stamp(end),
            ANNOTATION_STARTED: stamp(record.started),
            **_counted(record.new_data_count),
        },
        "ownerReferences": [owner_reference(model)],
    }


def build_job(
    model: Obj,
    spec: ModelSpec,
    record: TrainingRecord,
    base_version: str | None,
    failing: list[str],
    base_uri: str | None = None,
    onset: Mapping[str, datetime] | None = None,
) -> Obj:
    """The training Job from ``spec.retraining.job`` with ModelLoop's names, labels and env;
    ``onset``: since when each failing slice has failed."""
    assert spec.retraining is not None
    assert spec.retraining.job is not None
    env = training_env(model, spec, record, base_version, failing, base_uri, onset)
    template = copy.deepcopy(spec.retraining.job)
    job_spec = copy.deepcopy(template.get("spec") or {})
    job_spec.pop("ttlSecondsAfterFinished", None)  # deleted only after its result is recorded
    pod = job_spec.setdefault("template", {})
    pod_meta = pod.setdefault("metadata", {})
    labels = training_labels(model["metadata"]["name"], record.sequence)
    pod_meta["labels"] = {**(pod_meta.get("labels") or {}), **labels}
    for container in (pod.get("spec") or {}).get("containers") or []:
        with_env(container, env)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": training_metadata(
            model, spec, record, base_version, template.get("metadata") or {}
        ),
        "spec": job_spec,
    }


def _counted(count: float | None) -> dict[str, str]:
    """The new-data counter at a training's start, as an annotation (none when unread)."""
    return {ANNOTATION_NEW_DATA_COUNT: repr(count)} if count is not None else {}


def record_of_job(job: Obj) -> TrainingRecord | None:
    """Rebuild a training's record from its Job (when status was lost); None if not ours."""
    meta = job["metadata"]
    annotations = meta.get("annotations") or {}
    try:
        count = annotations.get(ANNOTATION_NEW_DATA_COUNT)
        return TrainingRecord(
            sequence=int((meta.get("labels") or {})[LABEL_TRAINING]),
            job=meta["name"],
            trigger=TrainingTrigger.model_validate_json(annotations[ANNOTATION_TRIGGER]),
            started=datetime.fromisoformat(annotations[ANNOTATION_STARTED]),
            new_data_count=float(count) if count is not None else None,
        )
    except (KeyError, ValueError):
        return None


def build_version(model: Obj, job: Obj, record: TrainingRecord, result: TrainingResult) -> Obj:
    """The ModelVersion a successful training makes: not owned by the Model (it outlives it)."""
    meta = model["metadata"]
    annotations = job["metadata"].get("annotations") or {}
    spec: dict[str, Any] = {
        "model": meta["name"],
        "uri": result.artifact_uri,
        "lineage": {
            "trigger": record.trigger.model_dump(),
            "job": record.job,
            "sequence": record.sequence,
            "dataWindow": {
                "start": annotations.get(ANNOTATION_DATA_START),
                "end": annotations.get(ANNOTATION_DATA_END),
            },
        },
        "metrics": result.metrics.model_dump(by_alias=True, exclude_none=True),
    }
    if annotations.get(ANNOTATION_BASE_VERSION):
        spec["lineage"]["baseVersion"] = annotations[ANNOTATION_BASE_VERSION]
    if result.digest:
        spec["digest"] = result.digest
    return {
        "apiVersion": API_VERSION,
        "kind": "ModelVersion",
        "metadata": {
            "name": version_name(meta["name"], record.sequence),
            "namespace": meta["namespace"],
            # Its shard's watch selects it from the start (control.sharding).
            "labels": {LABEL_MANAGED_BY: MANAGED_BY} | version_labels(model),
            "annotations": _counted(record.new_data_count),
        },
        "spec": spec,
    }


def termination_message(pods: list[Obj]) -> str | None:
    """The result the trainer wrote: the first container's termination message of the
    pod that succeeded."""
    for pod in pods:
        if (pod.get("status") or {}).get("phase") != "Succeeded":
            continue
        for status in pod["status"].get("containerStatuses") or []:
            message = ((status.get("state") or {}).get("terminated") or {}).get("message")
            if message:
                return str(message)
    return None
