"""Worlds the retraining tables share: a fraud-detection Model ``fd`` serving fd-v1, a
breach verdict, training records."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from modelloop.api.model import ModelSpec, TrainingRecord, TrainingStatus, TrainingTrigger
from modelloop.retraining.decide import TrainingWorld

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
JOB_TEMPLATE = {"spec": {"template": {"spec": {"containers": [{"name": "t", "image": "t"}]}}}}


def spec(**overrides: Any) -> ModelSpec:
    retraining = {
        "triggers": {"onBreach": ["precision"], "onDrift": ["amount"], "schedule": "0 3 * * *"},
        "cooldown": "1h",
        "maxPerDay": 2,
        "outputURI": "s3://m/fd",
        "job": JOB_TEMPLATE,
    } | overrides.pop("retraining", {})
    return ModelSpec.model_validate(
        {
            "serving": {"template": {"spec": {"containers": [{"name": "s", "image": "x"}]}}},
            "automation": "retrain",
            "slices": [{"name": "eu", "matchLabels": {"region": "eu"}}],
            "metrics": [{"name": "precision", "query": "x"}],
            "drift": [{"name": "amount", "histogram": "amount", "threshold": 0.2}],
            "retraining": retraining,
            **overrides,
        }
    )


BREACH = {
    "kind": "metric",
    "metric": "precision",
    "slice": "eu",
    "version": "fd-v1",
    "verdict": "breach",
    "value": 0.7,
    "reason": "below min 0.8",
}


def world(**changes: Any) -> TrainingWorld:
    base = TrainingWorld(
        model="fd",
        spec=spec(),
        training=TrainingStatus(),
        verdicts=[],
        stable="fd-v1",
        canary=None,
        manual=None,
        created=NOW - timedelta(hours=1),  # after today's 03:00: the schedule has not fired
        jobs=[],
        sequences_in_use={1},
        now=NOW,
    )
    return replace(base, **changes)


def record(sequence: int, started: datetime, kind: str = "breach", **fields: Any) -> TrainingRecord:
    return TrainingRecord(
        sequence=sequence,
        job=f"fd-train-{sequence}",
        trigger=TrainingTrigger(kind=kind, reason="r"),
        started=started,
        **fields,
    )


def history(*records: TrainingRecord, failures: int = 0) -> TrainingStatus:
    return TrainingStatus(
        next_sequence=max(r.sequence for r in records) + 1,
        history=list(records),
        consecutive_failures=failures,
    )
