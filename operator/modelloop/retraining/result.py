"""The training's result contract, as the operator reads it.

The trainer writes one JSON object (at most 4 KiB): the artifact, and offline metrics
per metric and slice for the candidate and, recomputed on the same held-out data, for
the champion. ``modelloop.sdk.report`` writes it where the training's kind has it read:
a Job's trainer to its termination message (``/dev/termination-log``, which the kubelet
caps at 4 KiB); a workload's (TrainJob, RayJob, ... — many pods, or a Ray driver with
no pod of its own) to the key ``result`` of the ConfigMap named in
MODELLOOP_RESULT_CONFIGMAP, which the operator creates per training and lets only the
workload's ServiceAccount get and update. A missing, malformed or oversized result is a
``ResultError`` whose message says which — it never becomes a ModelVersion.
"""

import json

from pydantic import Field, ValidationError

from ..api.base import ApiModel
from ..api.modelversion import OfflineMetrics

MAX_BYTES = 4096
RESULT_CONFIGMAP_ENV = "MODELLOOP_RESULT_CONFIGMAP"  # a workload's: where to report
RESULT_KEY = "result"  # the ConfigMap's key holding the result


class TrainingResult(ApiModel):
    artifact_uri: str = Field(alias="artifactURI", min_length=1, max_length=2048)
    digest: str | None = Field(
        default=None, pattern=r"^[a-z0-9]+:[a-fA-F0-9]{32,128}$", max_length=140
    )
    metrics: OfflineMetrics = Field(default_factory=OfflineMetrics)


class ResultError(ValueError):
    pass


def parse_result(message: str | None, source: str | None = None) -> TrainingResult:
    """``source``: where the result was read, when not a termination message (named
    when there is none)."""
    if not message or not message.strip():
        raise ResultError(
            f"the trainer wrote no result to {source}"
            if source
            else "the training pod wrote no result to its termination message"
        )
    size = len(message.encode())
    if size > MAX_BYTES:
        raise ResultError(f"the result is {size} bytes; a termination message holds {MAX_BYTES}")
    try:
        data = json.loads(message)
    except json.JSONDecodeError as error:
        raise ResultError(f"the result is not JSON: {error}") from None
    if not isinstance(data, dict):
        raise ResultError("the result must be one JSON object")
    try:
        return TrainingResult.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'result'}: {e['msg']}" for e in error.errors()
        )
        raise ResultError(f"the result is malformed: {problems}") from None
