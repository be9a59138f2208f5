"""For trainers: report a training's result to ModelLoop.

    from modelloop.sdk import report
    report(
        "s3://models/fraud/7/model.joblib",
        candidate={("precision", "eu"): 0.91, ("precision", "us"): 0.88},
        champion={("precision", "eu"): 0.90, ("precision", "us"): 0.89},
    )

It writes one compact JSON object to the termination message, which the operator
reads from the finished pod, and refuses a result the kubelet would truncate.
"""

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path

from .retraining.result import MAX_BYTES, parse_result

TERMINATION_LOG = "/dev/termination-log"
"""Where the kubelet reads the termination message (a container's default
terminationMessagePath). The variable MODELLOOP_TERMINATION_LOG overrides it, for
running a trainer outside a pod."""
Metrics = Mapping[tuple[str, str], float]


def _rows(
    metrics: Metrics, samples: Mapping[tuple[str, str], int] | None
) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for (metric, slice_), value in sorted(metrics.items()):
        if not math.isfinite(value):
            raise ValueError(f"{metric} on slice {slice_} is {value}: report finite values")
        row: dict[str, object] = {"metric": metric, "slice": slice_, "value": value}
        if samples and (metric, slice_) in samples:
            row["samples"] = samples[(metric, slice_)]
        rows.append(row)
    return rows


def report(
    artifact_uri: str,
    candidate: Metrics,
    champion: Metrics | None = None,
    *,
    digest: str | None = None,
    samples: Mapping[tuple[str, str], int] | None = None,
    path: str | None = None,
) -> str:
    """Write the result; returns the JSON written. Raises ValueError when it would not fit
    in a termination message or would not pass the operator's validation."""
    result: dict[str, object] = {
        "artifactURI": artifact_uri,
        "metrics": {
            "candidate": _rows(candidate, samples),
            "champion": _rows(champion or {}, samples),
        },
    }
    if digest is not None:
        result["digest"] = digest
    text = json.dumps(result, separators=(",", ":"))
    if len(text.encode()) > MAX_BYTES:
        raise ValueError(
            f"the result is {len(text.encode())} bytes; a termination message holds {MAX_BYTES}: "
            "report fewer metrics or slices"
        )
    parse_result(text)  # the same check the operator makes
    Path(path or os.environ.get("MODELLOOP_TERMINATION_LOG") or TERMINATION_LOG).write_text(text)
    return text
