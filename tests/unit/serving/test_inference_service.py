"""The InferenceService ModelLoop writes, and what it reads back from one (pure)."""

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from tests.unit.inference_services import isvc
from tests.unit.models import spec_of
from tests.unit.models import version_view as view

from modelloop.api.model import KServeServing
from modelloop.serving.kserve import (
    ANNOTATION_REPLACED,
    ANNOTATION_STABLE,
    Serve,
    Served,
    adopt_patch,
    build_inference_service,
    deployment_mode,
    ready_condition,
    replaced_revision,
    revision_ready,
    rolled_out,
    served,
    serves_ready,
    with_serving,
)
from modelloop.serving.objects import applied_hash
from modelloop.serving.plan import Delete, MarkVersion, plan_serving

Obj = dict[str, Any]
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
PREDICTOR = {"minReplicas": 1, "model": {"modelFormat": {"name": "sklearn"}, "runtime": "rt"}}
MODEL: Obj = {
    "metadata": {"name": "churn", "namespace": "ns", "uid": "uid-1", "generation": 2},
    "spec": {"serving": {"kserve": {"predictor": PREDICTOR}}},
}


def test_served_reads_the_spec_and_the_recorded_stable_version() -> None:
    assert served(isvc("churn-v2", 10, "churn-v1")) == Served(
        "churn-v2", "s3://m/churn-v2", 10, "churn-v1"
    )
    assert served({"metadata": {}, "spec": {}}) == Served(None, None, None, None)


@pytest.mark.parametrize(
    ("created", "ready", "replaced", "expected"),
    [
        (None, None, None, False),  # KServe made no revision yet
        ("p-00001", None, None, False),  # created, not ready
        ("p-00001", "p-00001", None, True),
        ("p-00002", "p-00001", "p-00001", False),  # the new one starts
        ("p-00002", "p-00002", "p-00001", True),
        ("p-00001", "p-00001", "p-00001", False),  # status not past the change yet
    ],
)
def test_revision_ready(
    created: str | None, ready: str | None, replaced: str | None, expected: bool
) -> None:
    assert revision_ready(isvc(created=created, ready=ready, replaced=replaced)) is expected


@pytest.mark.parametrize(
    ("current", "expected"),
    [
        (isvc(created="p-00001", ready="p-00001", rolled="p-00001"), True),
        (isvc(created="p-00001", ready="p-00001"), False),  # KServe has not rolled it out
        (isvc(percent=0, created="p-00001", ready="p-00001", rolled="p-00001"), False),
        (isvc(created="p-00002", ready="p-00001", rolled="p-00001"), False),  # starting
    ],
)
def test_rolled_out(current: Obj, expected: bool) -> None:
    assert rolled_out(current) is expected


def test_serves_ready_needs_the_version_in_a_ready_revision() -> None:
    running = isvc("churn-v2", 0, "churn-v1", "p-00002", "p-00002", "p-00001")
    assert serves_ready(running, "churn-v2")
    assert not serves_ready(running, "churn-v3")
    assert not serves_ready(None, "churn-v2")


@pytest.mark.parametrize(
    ("current", "serve", "expected"),
    [
        (None, Serve("churn-v1", "s3://m/churn-v1", None, "churn-v1"), ""),
        # Same artifact: the recorded revision stays, whatever KServe created since.
        (
            isvc("churn-v1", created="p-00003", replaced="p-00001"),
            Serve("churn-v1", "s3://m/churn-v1", None, "churn-v1"),
            "p-00001",
        ),
        # Another artifact: the revision created last is the one replaced.
        (
            isvc("churn-v1", created="p-00003", replaced="p-00001"),
            Serve("churn-v2", "s3://m/churn-v2", 0, "churn-v1"),
            "p-00003",
        ),
    ],
)
def test_replaced_revision(current: Obj | None, serve: Serve, expected: str) -> None:
    assert replaced_revision(current, serve) == expected


def test_with_serving_sets_only_modelloops_fields() -> None:
    predictor = {**PREDICTOR, "labels": {"team": "a"}, "canaryTrafficPercent": 30}
    result = with_serving(predictor, "churn", Serve("churn-v2", "s3://v2", None, "churn-v1"))
    assert result == {
        "minReplicas": 1,
        "model": {"modelFormat": {"name": "sklearn"}, "runtime": "rt", "storageUri": "s3://v2"},
        "labels": {
            "team": "a",
            "modelloop.dev/model": "churn",
            "modelloop.dev/version": "churn-v2",
        },
        "annotations": {"modelloop.dev/version": "churn-v2"},
    }
    assert predictor["canaryTrafficPercent"] == 30  # the input is not changed
    canary = with_serving(predictor, "churn", Serve("churn-v2", "s3://v2", 10, "churn-v1"))
    assert canary["canaryTrafficPercent"] == 10


def test_the_created_inference_service_is_owned_labelled_and_hashed() -> None:
    settings = KServeServing.model_validate({"predictor": PREDICTOR})
    serve = Serve("churn-v2", "s3://v2", 10, "churn-v1")
    built = build_inference_service(MODEL, settings, serve, "p-00001")
    meta = built["metadata"]
    assert (built["apiVersion"], built["kind"], meta["name"]) == (
        "serving.kserve.io/v1beta1",
        "InferenceService",
        "churn",
    )
    assert meta["ownerReferences"][0]["uid"] == "uid-1"
    assert meta["labels"] == {
        "modelloop.dev/model": "churn",
        "app.kubernetes.io/managed-by": "modelloop",
    }
    assert {k: v for k, v in meta["annotations"].items() if "applied-hash" not in k} == {
        "serving.kserve.io/deploymentMode": "Serverless",
        ANNOTATION_STABLE: "churn-v1",
        ANNOTATION_REPLACED: "p-00001",
    }
    assert built["spec"]["predictor"]["canaryTrafficPercent"] == 10
    again = build_inference_service(MODEL, settings, serve, "p-00001")
    moved = build_inference_service(MODEL, settings, replace(serve, percent=50), "p-00001")
    assert applied_hash(again) == applied_hash(built) != applied_hash(moved)


def test_adopting_patches_the_predictor_guarded_and_adds_labels_and_annotations() -> None:
    current = isvc("churn-v1", created="p-00001", ready="p-00001")
    current["metadata"]["labels"] = {"app": "churn"}
    serve = Serve("churn-v2", "s3://m/churn-v2", 0, "churn-v1")
    ops = adopt_patch(current, "churn", serve, "p-00001")
    assert ops[0] == {
        "op": "test",
        "path": "/spec/predictor",
        "value": current["spec"]["predictor"],
    }
    assert ops[1]["op"] == "replace"
    assert ops[1]["value"]["canaryTrafficPercent"] == 0
    assert ops[1]["value"]["model"]["storageUri"] == "s3://m/churn-v2"
    assert [(op["op"], op["path"], op["value"]) for op in ops[2:]] == [
        ("add", "/metadata/labels/app.kubernetes.io~1managed-by", "modelloop"),
        ("add", "/metadata/labels/modelloop.dev~1model", "churn"),
        ("add", "/metadata/annotations/modelloop.dev~1replaced-revision", "p-00001"),
        ("add", "/metadata/annotations/modelloop.dev~1stable-version", "churn-v1"),
    ]


SERVING_V1 = Serve("churn-v1", "s3://m/churn-v1", None, "churn-v1")


def adopted(**labels: str) -> Obj:
    """A user's InferenceService as ModelLoop left it serving churn-v1, with these labels
    beside ModelLoop's."""
    current = isvc("churn-v1", stable="churn-v1", replaced="p-00001")
    current["spec"]["predictor"] = with_serving(
        current["spec"]["predictor"], "churn", Serve("churn-v1", "s3://m/churn-v1", None, "x")
    )
    current["metadata"]["labels"] = {
        "modelloop.dev/model": "churn",
        "app.kubernetes.io/managed-by": "modelloop",
        **labels,
    }
    return current


def test_adopting_what_is_already_written_changes_nothing() -> None:
    assert adopt_patch(adopted(), "churn", SERVING_V1, "p-00001") == []


def test_adopting_one_without_labels_adds_the_whole_map() -> None:
    current = isvc("churn-v1")
    ops = adopt_patch(current, "churn", Serve("churn-v1", "s3://m/churn-v1", None, "churn-v1"), "")
    labels = {"modelloop.dev/model": "churn", "app.kubernetes.io/managed-by": "modelloop"}
    assert {"op": "add", "path": "/metadata/labels", "value": labels} in ops


def test_deployment_mode_from_the_annotation_else_the_status() -> None:
    raw = isvc()
    raw["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] = "RawDeployment"
    assert deployment_mode(raw) == "RawDeployment"
    reported = isvc()
    reported["status"]["deploymentMode"] = "Serverless"
    assert deployment_mode(reported) == "Serverless"
    assert deployment_mode(isvc()) is None


@pytest.mark.parametrize(
    ("kserve_ready", "status", "reason"),
    [
        (None, "Unknown", "InferenceServiceProgressing"),
        ({"status": "True"}, "True", "InferenceServiceReady"),
        ({"status": "False", "reason": "RevisionFailed"}, "False", "InferenceServiceNotReady"),
        ({"status": "Unknown", "reason": "Deploying"}, "Unknown", "InferenceServiceProgressing"),
    ],
)
def test_ready_follows_the_inference_service(
    kserve_ready: Obj | None, status: str, reason: str
) -> None:
    conditions = [{"type": "Ready", **kserve_ready}] if kserve_ready else []
    ready = ready_condition(isvc(conditions=conditions), "churn")
    assert (ready["status"], ready["reason"]) == (status, reason)
    assert ready["message"].startswith("InferenceService churn")
    if kserve_ready and kserve_ready.get("reason"):
        assert kserve_ready["reason"] in ready["message"]


def test_a_missing_inference_service_is_not_ready() -> None:
    ready = ready_condition(None, "churn")
    assert (ready["status"], ready["reason"]) == ("False", "InferenceServicePending")


# --------------------------------------------------------------------------- the plan


LEFTOVERS = (
    [{"metadata": {"name": "churn-v1", "labels": {"modelloop.dev/version": "churn-v1"}}}],
    [{"metadata": {"name": "churn"}}, {"metadata": {"name": "churn-v1"}}],
)


def test_kserve_mode_makes_no_deployment_and_marks_the_stable_version() -> None:
    plan = plan_serving(MODEL, spec_of(MODEL), [view("churn-v1")], [], [], NOW)
    assert plan.actions == [
        MarkVersion("churn-v1", "stable", "Serving", "Bootstrap", plan.choice.message)
    ]
    ready = plan.conditions[0]
    assert (ready["type"], ready["reason"]) == ("Ready", "InferenceServicePending")
    assert plan.status["phase"] == "Serving"


def test_deployments_left_from_the_template_mode_go_once_the_service_is_ready() -> None:
    versions = [view("churn-v1", "Serving", "stable")]
    deployments, services = LEFTOVERS
    waiting = isvc(conditions=[{"type": "Ready", "status": "Unknown"}])
    plan = plan_serving(MODEL, spec_of(MODEL), versions, deployments, services, NOW, None, waiting)
    assert plan.actions == []
    ready = isvc(conditions=[{"type": "Ready", "status": "True"}])
    plan = plan_serving(MODEL, spec_of(MODEL), versions, deployments, services, NOW, None, ready)
    assert plan.actions == [
        Delete("Deployment", "churn-v1"),
        Delete("Service", "churn"),
        Delete("Service", "churn-v1"),
    ]
    assert plan.conditions[0]["status"] == "True"


@pytest.mark.parametrize(
    ("held", "shard", "ops"),
    [
        ({}, {}, []),
        ({}, {"modelloop.dev/shard": "a"}, [("add", "/metadata/labels/modelloop.dev~1shard", "a")]),
        ({"modelloop.dev/shard": "a"}, {"modelloop.dev/shard": "a"}, []),
        (
            {"modelloop.dev/shard": "a"},
            {"modelloop.dev/shard": "b"},
            [("add", "/metadata/labels/modelloop.dev~1shard", "b")],
        ),
        (
            {"modelloop.dev/shard": "a"},
            {},
            [("remove", "/metadata/labels/modelloop.dev~1shard", None)],
        ),
    ],
)
def test_an_adopted_inference_service_carries_its_models_shard_label(
    held: dict[str, str], shard: dict[str, str], ops: list[tuple[str, str, str | None]]
) -> None:
    """ModelLoop's labels on the user's InferenceService make its shard's watch select it:
    the Model's shard label is added, changed when the Model moves, and removed when it
    moves to the default shard."""
    patch = adopt_patch(adopted(**held), "churn", SERVING_V1, "p-00001", shard)
    assert [(op["op"], op["path"], op.get("value")) for op in patch] == ops


def test_the_created_inference_service_carries_its_models_shard_label() -> None:
    settings = KServeServing.model_validate({"predictor": PREDICTOR})
    sharded = {**MODEL, "metadata": {**MODEL["metadata"], "labels": {"modelloop.dev/shard": "a"}}}
    built = build_inference_service(sharded, settings, Serve("churn-v1", "s3://v1", None, "x"), "")
    assert built["metadata"]["labels"]["modelloop.dev/shard"] == "a"
