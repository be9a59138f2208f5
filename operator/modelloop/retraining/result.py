"""The training Job's result contract, as the operator reads it.

The trainer writes one JSON object to its termination message
(``/dev/termination-log``, which the kubelet caps at 4 KiB): the artifact, and
offline metrics per metric and slice for the candidate and, recomputed on the
same held-out data, for the champion. ``modelloop.sdk.report`` writes it.
A missing, malformed or oversized result is a ``ResultError`` whose message says
which — it never becomes a ModelVersion.
"""

import json

from pydantic import Field, ValidationError

from ..api.base import ApiModel
from ..api.modelversion import OfflineMetrics

MAX_BYTES = 4096


class TrainingResult(ApiModel):
    artifact_uri: str = Field(alias="artifactURI", min_length=1, max_length=2048)
    digest: str | None = Field(
        default=None, pattern=r"^[a-z0-9]+:[a-fA-F0-9]{32,128}$", max_length=140
    )
    metrics: OfflineMetrics = Field(default_factory=OfflineMetrics)


class ResultError(ValueError):
    pass


def parse_result(message: str | None) -> TrainingResult:
    if not message or not message.strip():
        raise ResultError("the training pod wrote no result to its termination message")
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
