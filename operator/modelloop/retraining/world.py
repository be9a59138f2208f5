"""The training reconcile's world, assembled from what it read. Pure.

One assembly for the training handler and for anything that replays its decisions (the
loop benchmark), so both read the same fields the same way: the Model's status (verdicts,
stable and canary versions, the training bookkeeping as parsed), its manual annotation
and creation time, its training Jobs, and its ModelVersions — the sequences they take,
the trainings that made them, and their trigger kinds and phases, which the per-kind
guards read (the new-data guard, the backoff after rejected candidates).
"""

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from ..api.model import ModelSpec, TrainingStatus
from ..api.vocabulary import ANNOTATION_RETRAIN
from .decide import JobView, TrainingWorld, sequences_taken, versions_made
from .novelty import candidates


def training_world(
    model: dict[str, Any],
    spec: ModelSpec,
    training: TrainingStatus,
    versions: Iterable[dict[str, Any]],
    jobs: list[JobView],
    new_data: float | None,
    now: datetime,
) -> TrainingWorld:
    """``spec`` and ``training``: the Model's, parsed; ``versions``: the Model's
    ModelVersions; ``new_data``: the new-data counter's last reading (None when it failed),
    ignored when the spec declares no counter."""
    meta, status = model["metadata"], model.get("status") or {}
    made = list(versions)
    counted = spec.retraining is not None and spec.retraining.new_data_query() is not None
    return TrainingWorld(
        model=meta["name"],
        spec=spec,
        training=training,
        verdicts=status.get("verdicts") or [],
        stable=status.get("stableVersion"),
        canary=(status.get("canary") or {}).get("version"),
        manual=(meta.get("annotations") or {}).get(ANNOTATION_RETRAIN),
        created=datetime.fromisoformat(meta["creationTimestamp"]),
        jobs=jobs,
        sequences_in_use=sequences_taken(meta["name"], made),
        now=now,
        new_data=new_data if counted else None,
        versions_made=versions_made(made),
        candidates=candidates(made),
    )
