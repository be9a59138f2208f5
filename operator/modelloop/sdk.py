"""For trainers: report a training's result to ModelLoop.

    from modelloop.sdk import report
    report(
        "s3://models/fraud/7/model.joblib",
        candidate={("precision", "eu"): 0.91, ("precision", "us"): 0.88},
        champion={("precision", "eu"): 0.90, ("precision", "us"): 0.89},
        samples={("precision", "eu"): 1200, ("precision", "us"): 800},
    )

For a proportion over the held-out examples (accuracy), also give the paired counts —
``pairs={("accuracy", "eu"): count_pairs(candidate_right, champion_right)}`` — and the
gate judges a regression by the examples where the two disagree: a paired test, much
more sensitive than comparing the two values.

It writes one compact JSON object to the termination message, which the operator
reads from the finished pod, and refuses a result the kubelet would truncate.
"""

import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import NamedTuple

from .retraining.result import MAX_BYTES, parse_result

TERMINATION_LOG = "/dev/termination-log"
"""Where the kubelet reads the termination message (a container's default
terminationMessagePath). The variable MODELLOOP_TERMINATION_LOG overrides it, for
running a trainer outside a pod."""
Metrics = Mapping[tuple[str, str], float]


class Pairs(NamedTuple):
    """Where the candidate and the champion disagree on the same held-out examples."""

    candidate_only: int  # counted for the candidate only (accuracy: only it is right)
    champion_only: int  # counted for the champion only (accuracy: only it is right)


def count_pairs(candidate_hits: Iterable[bool], champion_hits: Iterable[bool]) -> Pairs:
    """The paired counts of a proportion from each example's outcome for both models (for
    accuracy: whether each predicted it right), in the same order of examples."""
    candidate_only = champion_only = 0
    for mine, theirs in zip(candidate_hits, champion_hits, strict=True):
        candidate_only += bool(mine and not theirs)
        champion_only += bool(theirs and not mine)
    return Pairs(candidate_only, champion_only)


def _rows(
    metrics: Metrics,
    samples: Mapping[tuple[str, str], int] | None,
    pairs: Mapping[tuple[str, str], Pairs] | None = None,
) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for (metric, slice_), value in sorted(metrics.items()):
        if not math.isfinite(value):
            raise ValueError(f"{metric} on slice {slice_} is {value}: report finite values")
        row: dict[str, object] = {"metric": metric, "slice": slice_, "value": value}
        if samples and (metric, slice_) in samples:
            row["samples"] = samples[(metric, slice_)]
        if pairs and (metric, slice_) in pairs:
            counted = pairs[(metric, slice_)]
            row["pairs"] = {
                "candidateOnly": counted.candidate_only,
                "championOnly": counted.champion_only,
            }
        rows.append(row)
    return rows


def report(
    artifact_uri: str,
    candidate: Metrics,
    champion: Metrics | None = None,
    *,
    digest: str | None = None,
    samples: Mapping[tuple[str, str], int] | None = None,
    pairs: Mapping[tuple[str, str], Pairs] | None = None,
    path: str | None = None,
) -> str:
    """Write the result; returns the JSON written. ``pairs`` go on the candidate's rows and
    need the champion's value and the samples of the same metric and slice. Raises
    ValueError when it would not fit in a termination message or would not pass the
    operator's validation."""
    unpaired = sorted(set(pairs or {}) - (set(candidate) & set(champion or {})))
    if unpaired:
        raise ValueError(f"pairs for {unpaired}: report both values of each pair")
    result: dict[str, object] = {
        "artifactURI": artifact_uri,
        "metrics": {
            "candidate": _rows(candidate, samples, pairs),
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
