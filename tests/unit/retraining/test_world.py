"""The training reconcile's world, assembled from what it read (retraining.world): the
Model's status and annotations, its Jobs, and its ModelVersions as the guards read them."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.unit.retraining.worlds import NOW, record, spec

from modelloop.api.model import ModelSpec, TrainingStatus
from modelloop.api.vocabulary import ANNOTATION_RETRAIN, TriggerKind, VersionPhase
from modelloop.conditions import stamp
from modelloop.retraining.decide import JobView
from modelloop.retraining.jobs import build_job, build_version
from modelloop.retraining.novelty import Candidate
from modelloop.retraining.result import TrainingResult
from modelloop.retraining.world import training_world

CREATED = datetime(2026, 11, 1, tzinfo=UTC)
COUNTED = {"newData": {"query": "sum(labelled)", "minimum": 500}}


def model(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "fd",
            "namespace": "ml",
            "uid": "u",
            "creationTimestamp": stamp(CREATED),
            "annotations": {ANNOTATION_RETRAIN: "new features"},
        },
        "status": status,
    }


def made(sequence: int, kind: str, phase: str | None, count: float | None) -> dict[str, Any]:
    """A ModelVersion one of ModelLoop's trainings made, as build_version makes it."""
    started = NOW - timedelta(days=10 - sequence)
    trained = record(sequence, started, kind, new_data_count=count)
    job = build_job(model(), spec(), trained, "fd-v1", [])
    result = TrainingResult.model_validate({"artifactURI": f"s3://m/fd/{sequence}"})
    version = build_version(model(), job, trained, result)
    version["metadata"]["creationTimestamp"] = stamp(started + timedelta(minutes=30))
    if phase is not None:
        version["status"] = {
            "phase": phase,
            "lastTransitionTime": stamp(started + timedelta(hours=1)),
        }
    return version


# fd-v1 made by hand (no lineage), v2 rejected, v3 serving, fd-v9 named by a pipeline.
BY_HAND = {"metadata": {"name": "fd-v1"}, "spec": {"model": "fd", "uri": "s3://m/fd/1"}}
PIPELINE = {"metadata": {"name": "fd-v9"}, "spec": {"model": "fd", "uri": "s3://p/9"}}
VERSIONS = [
    BY_HAND,
    made(2, "breach", "Rejected", 1000.0),
    made(3, "schedule", "Serving", 2500.0),
    PIPELINE,
]


def test_the_world_reads_the_models_status_annotations_and_versions() -> None:
    training = TrainingStatus(next_sequence=4, history=[record(3, NOW - timedelta(days=7))])
    verdicts = [{"metric": "precision", "slice": "eu", "version": "fd-v3", "verdict": "pass"}]
    job = JobView({"metadata": {"name": "fd-train-4"}}, None)
    world = training_world(
        model(verdicts=verdicts, stableVersion="fd-v3", canary={"version": "fd-v2"}),
        spec(retraining=COUNTED),
        training,
        iter(VERSIONS),  # any iterable: read once
        [job],
        3000.0,
        NOW,
    )
    assert (world.model, world.stable, world.canary, world.manual) == (
        "fd",
        "fd-v3",
        "fd-v2",
        "new features",
    )
    assert (world.verdicts, world.training, world.jobs) == (verdicts, training, [job])
    assert (world.created, world.now, world.new_data) == (CREATED, NOW, 3000.0)
    assert world.sequences_in_use == {1, 2, 3, 9}
    assert world.versions_made == {
        2: NOW - timedelta(days=8) + timedelta(minutes=30),
        3: NOW - timedelta(days=7) + timedelta(minutes=30),
    }
    assert world.candidates == [
        Candidate(
            2,
            TriggerKind.BREACH,
            VersionPhase.REJECTED,
            NOW - timedelta(days=8) + timedelta(hours=1),
            NOW - timedelta(days=8),
            1000.0,
        ),
        Candidate(
            3,
            TriggerKind.SCHEDULE,
            VersionPhase.SERVING,
            NOW - timedelta(days=7) + timedelta(hours=1),
            NOW - timedelta(days=7),
            2500.0,
        ),
    ]


@pytest.mark.parametrize(
    ("policy", "reading", "expected"),
    [
        (spec(retraining=COUNTED), 3000.0, 3000.0),
        (spec(retraining=COUNTED), None, None),  # the last reading failed
        (spec(), 3000.0, None),  # no counter declared: a reading is not the guard's
        (
            spec(retraining={"triggers": {"newData": {"query": "sum(labelled)", "volume": 100}}}),
            3000.0,
            3000.0,
        ),
    ],
)
def test_the_new_data_counter_counts_only_when_the_spec_declares_one(
    policy: ModelSpec, reading: float | None, expected: float | None
) -> None:
    world = training_world(model(), policy, TrainingStatus(), [], [], reading, NOW)
    assert world.new_data == expected


def test_a_model_without_status_or_annotations_has_no_versions_and_no_request() -> None:
    body = model()
    del body["status"], body["metadata"]["annotations"]
    world = training_world(body, spec(), TrainingStatus(), [], [], None, NOW)
    assert (world.stable, world.canary, world.manual, world.verdicts) == (None, None, None, [])
    assert (world.sequences_in_use, world.versions_made, world.candidates) == (set(), {}, [])
