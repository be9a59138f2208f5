"""What the planner asks for, scenario by scenario (pure)."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.unit.models import spec_of
from tests.unit.models import version_view as version

from modelloop.conditions import merge_conditions
from modelloop.serving.objects import build_deployment, build_model_service, build_version_service
from modelloop.serving.plan import (
    Apply,
    CanaryServing,
    Delete,
    MarkVersion,
    VersionView,
    plan_serving,
)

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def model(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "modelloop.dev/v1alpha1",
        "kind": "Model",
        "metadata": {"name": "m", "namespace": "ns", "uid": "uid-1", "generation": 3},
        "spec": {
            "serving": {
                "replicas": 2,
                "port": 9000,
                "template": {"spec": {"containers": [{"name": "s", "image": "img:1"}]}},
            },
            **spec,
        },
    }


def available(
    deployment: dict[str, Any], status: str = "True", reason: str = "MinimumReplicasAvailable"
) -> dict[str, Any]:
    return {
        **deployment,
        "status": {
            "conditions": [
                {
                    "type": "Available",
                    "status": status,
                    "reason": reason,
                    "message": "Deployment has minimum availability.",
                }
            ]
        },
    }


ISTIO = {"provider": "istio", "istio": {"hosts": ["m.example"]}}


@pytest.mark.parametrize(
    ("traffic", "version_services", "services"),
    [
        ({}, None, ["m"]),  # replicas: the Model's Service alone carries the traffic
        ({}, "Always", ["m-v1", "m"]),
        (ISTIO, None, ["m-v1", "m"]),  # a mesh weights the version's Service
        (ISTIO, "Always", ["m-v1", "m"]),
    ],
)
def test_bootstrap_creates_deployment_and_services_then_marks_the_version(
    traffic: dict[str, Any], version_services: str | None, services: list[str]
) -> None:
    m = model(**({"traffic": traffic} if traffic else {}))
    if version_services is not None:
        m["spec"]["serving"]["versionServices"] = version_services
    plan = plan_serving(m, spec_of(m), [version("m-v1")], [], [], NOW)
    kinds = [(type(a).__name__, getattr(a, "manifest", {}).get("kind")) for a in plan.actions]
    assert kinds == [
        ("Apply", "Deployment"),
        *[("Apply", "Service")] * len(services),
        ("MarkVersion", None),
    ]
    applied = [a.manifest["metadata"]["name"] for a in plan.actions if isinstance(a, Apply)]
    assert applied[1:] == services
    mark = plan.actions[-1]
    assert isinstance(mark, MarkVersion)
    assert (mark.version, mark.role, mark.phase, mark.reason) == (
        "m-v1",
        "stable",
        "Serving",
        "Bootstrap",
    )
    assert plan.status["phase"] == "Serving"
    assert plan.status["stableVersion"] == "m-v1"
    ready = next(c for c in plan.conditions if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "DeploymentPending")
    assert plan.status["observedGeneration"] == 3


@pytest.mark.parametrize(
    ("before", "pinned_version", "expected"),
    [
        # A new Model: Ready on its way to True (its Deployment is being created) is no
        # news, the Created Event tells it; nor is not being pinned.
        (None, None, []),
        # A new Model pinned from the start: the pin is news.
        (None, "m-v1", ["PinnedTrue"]),
        # Unpinned: the transition to False is told.
        ("True", None, ["PinnedFalse"]),
        # Still not pinned: nothing.
        ("False", None, []),
    ],
)
def test_condition_events_tell_transitions_not_a_new_models_resting_state(
    before: str | None, pinned_version: str | None, expected: list[str]
) -> None:
    m = model(**({"pinnedVersion": pinned_version} if pinned_version else {}))
    versions = [version("m-v1", "Serving", "stable")]
    if before is not None:  # the conditions of an earlier pass: Ready as this pass sets it
        reason = "Pinned" if before == "True" else "NotPinned"
        m["status"] = {
            "conditions": [
                {"type": "Ready", "status": "False", "reason": "DeploymentPending"},
                {"type": "Pinned", "status": before, "reason": reason},
            ]
        }
    plan = plan_serving(m, spec_of(m), versions, [], [], NOW)
    assert [e.reason for e in plan.events] == expected


@pytest.mark.parametrize(
    ("versions", "deployed", "expected"),
    [
        # No version to serve: not on its way, a Warning.
        ([], False, [("ReadyFalse", "Warning", "NoVersion")]),
        # Its Deployment is being created, or has no Available condition yet: no news.
        ([version("m-v1", "Serving", "stable")], False, []),
        ([version("m-v1", "Serving", "stable")], True, []),
    ],
)
def test_a_new_models_first_ready_is_told_unless_it_is_on_its_way(
    versions: list[VersionView], deployed: bool, expected: list[tuple[str, str, str]]
) -> None:
    m = model()
    deployments = [build_deployment(m, spec_of(m), "m-v1", "s3://m/m-v1", 2)] if deployed else []
    plan = plan_serving(m, spec_of(m), versions, deployments, [], NOW)
    told = [(e.reason, e.type, e.message.split(":")[0]) for e in plan.events]
    assert told == expected


def ready_was(status: str, reason: str) -> dict[str, Any]:
    return {"conditions": [{"type": "Ready", "status": status, "reason": reason}]}


@pytest.mark.parametrize(
    ("before", "available_status", "expected"),
    [
        # Coming up: the Deployment's first pods start (its Available=False).
        (ready_was("False", "DeploymentPending"), "False", []),
        (ready_was("Unknown", "DeploymentProgressing"), "False", []),
        # ... and come up: told.
        (ready_was("False", "MinimumReplicasUnavailable"), "True", ["ReadyTrue"]),
        # A Model that was Ready loses its pods: told, though the reason is the same.
        (ready_was("True", "MinimumReplicasAvailable"), "False", ["ReadyFalse"]),
        # A Deployment that had failed is tried again (its failure was told), or a Model
        # that had no version gets one (the Created Event tells it): ReadyTrue will be told.
        (ready_was("False", "ProgressDeadlineExceeded"), "False", []),
        (ready_was("False", "NoVersion"), "False", []),
    ],
)
def test_ready_moving_into_a_deployment_coming_up_is_told_only_when_it_was_true(
    before: dict[str, Any], available_status: str, expected: list[str]
) -> None:
    m = model()
    m["status"] = before
    reason = (
        "MinimumReplicasAvailable" if available_status == "True" else "MinimumReplicasUnavailable"
    )
    deployment = available(
        build_deployment(m, spec_of(m), "m-v1", "s3://m/m-v1", 2), available_status, reason
    )
    plan = plan_serving(
        m, spec_of(m), [version("m-v1", "Serving", "stable")], [deployment], [], NOW
    )
    assert [e.reason for e in plan.events if e.reason.startswith("Ready")] == expected


def test_converged_world_needs_no_action() -> None:
    m = model()
    deployment = available(build_deployment(m, spec_of(m), "m-v1", "s3://m/m-v1", 2))
    services = [build_version_service(m, spec_of(m), "m-v1"), build_model_service(m, spec_of(m))]
    first = plan_serving(
        m, spec_of(m), [version("m-v1", "Serving", "stable")], [deployment], services, NOW
    )
    assert first.actions == []
    m["status"] = first.status | {"conditions": merge_conditions([], first.conditions, NOW, 3)}
    again = plan_serving(
        m, spec_of(m), [version("m-v1", "Serving", "stable")], [deployment], services, NOW
    )
    assert again.actions == []
    assert again.events == []
    assert again.status == first.status
    ready = next(c for c in again.conditions if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "MinimumReplicasAvailable")


def test_template_change_reapplies_only_the_deployment() -> None:
    old = model()
    deployment = build_deployment(old, spec_of(old), "m-v1", "s3://m/m-v1", 2)
    services = [
        build_version_service(old, spec_of(old), "m-v1"),
        build_model_service(old, spec_of(old)),
    ]
    new = model()
    new["spec"]["serving"]["template"]["spec"]["containers"][0]["image"] = "img:2"
    plan = plan_serving(
        new, spec_of(new), [version("m-v1", "Serving", "stable")], [deployment], services, NOW
    )
    assert len(plan.actions) == 1
    action = plan.actions[0]
    assert isinstance(action, Apply)
    assert not action.created
    assert action.manifest["spec"]["template"]["spec"]["containers"][0]["image"] == "img:2"


def test_pinning_another_version_switches_and_retires_the_old_one() -> None:
    m = model(pinnedVersion="m-v2")
    deployment = build_deployment(m, spec_of(m), "m-v1", "s3://m/m-v1", 2)
    services = [build_version_service(m, spec_of(m), "m-v1"), build_model_service(m, spec_of(m))]
    versions = [version("m-v1", "Serving", "stable"), version("m-v2", "Validated")]
    plan = plan_serving(m, spec_of(m), versions, [deployment], services, NOW)
    applied = [
        (a.manifest["kind"], a.manifest["metadata"]["name"])
        for a in plan.actions
        if isinstance(a, Apply)
    ]
    assert applied == [("Deployment", "m-v2")]
    marks = [a for a in plan.actions if isinstance(a, MarkVersion)]
    assert [(a.version, a.role, a.phase) for a in marks] == [
        ("m-v2", "stable", "Serving"),
        ("m-v1", None, "Retired"),
    ]
    # The old version stays warm for the scale-down delay: nothing is deleted or scaled.
    assert [a for a in plan.actions if isinstance(a, Delete)] == []
    pinned = next(c for c in plan.conditions if c["type"] == "Pinned")
    assert (pinned["status"], pinned["reason"]) == ("True", "Pinned")


def labelled(name: str, phase: str, since: str | None) -> VersionView:
    return VersionView(name, f"s3://m/{name}", phase, "stable", since, name)


SINCE = "2026-11-24T11:00:00Z"


@pytest.mark.parametrize(
    ("case", "versions", "pin", "serves", "unlabelled", "warned"),
    [
        # A promotion cut short between its two label writes: the newer role-since wins,
        # and nothing needs telling (the operator wrote both).
        (
            "promotion-cut-short",
            [
                labelled("m-v1", "Serving", "2026-11-20T00:00:00Z"),
                labelled("m-v2", "Canary", SINCE),
            ],
            None,
            "m-v2",
            "m-v1",
            False,
        ),
        # A label set by hand carries no role-since: it loses, and the person is told.
        (
            "hand-label",
            [labelled("m-v1", "Retired", None), labelled("m-v2", "Serving", SINCE)],
            None,
            "m-v2",
            "m-v1",
            True,
        ),
        # Neither dated (labelled by hand, or by an operator before role-since): by name.
        (
            "neither-dated",
            [labelled("m-v1", "Retired", None), labelled("m-v2", "Serving", None)],
            None,
            "m-v2",
            "m-v1",
            True,
        ),
        # A pin is the person's choice: the other label goes without a warning.
        (
            "pinned",
            [labelled("m-v1", "Retired", None), labelled("m-v2", "Serving", SINCE)],
            "m-v1",
            "m-v1",
            "m-v2",
            False,
        ),
    ],
)
def test_two_versions_labelled_stable(
    case: str,
    versions: list[VersionView],
    pin: str | None,
    serves: str,
    unlabelled: str,
    warned: bool,
) -> None:
    m = model(**({"pinnedVersion": pin} if pin else {}))
    plan = plan_serving(m, spec_of(m), versions, [], [], NOW)
    assert plan.choice.version == serves
    removed = [a.version for a in plan.actions if isinstance(a, MarkVersion) and a.role is None]
    assert removed == [unlabelled]
    warnings = [e for e in plan.events if e.reason == "StableLabelOverruled"]
    assert len(warnings) == int(warned)
    if warned:
        assert warnings[0].type == "Warning"
        assert f"{unlabelled} was labelled" in warnings[0].message
        assert "spec.pinnedVersion" in warnings[0].message


def retired(name: str, ago: timedelta, phase: str = "Retired") -> VersionView:
    stamp = (NOW - ago).strftime("%Y-%m-%dT%H:%M:%SZ")
    return VersionView(name, f"s3://m/{name}", phase, None, None, name, stamp)


@pytest.mark.parametrize(
    ("other", "replicas"),
    [
        (retired("m-v0", timedelta(minutes=5)), None),  # warm: within the 10m default delay
        (retired("m-v0", timedelta(minutes=11)), 0),
        (retired("m-v0", timedelta(seconds=1), "RolledBack"), 0),
        (retired("m-v0", timedelta(seconds=1), "Rejected"), 0),
    ],
)
def test_versions_that_stopped_serving_scale_down(other: VersionView, replicas: int | None) -> None:
    m = model(traffic={"provider": "gatewayAPI", "gatewayAPI": {}})
    stable = version("m-v1", "Serving", "stable")
    deployments = [
        available(build_deployment(m, spec_of(m), "m-v1", "s3://m/m-v1", 2)),
        build_deployment(m, spec_of(m), "m-v0", "s3://m/m-v0", 2),
    ]
    services = [build_version_service(m, spec_of(m), v) for v in ("m-v1", "m-v0")] + [
        build_model_service(m, spec_of(m))
    ]
    plan = plan_serving(m, spec_of(m), [stable, other], deployments, services, NOW)
    scaled = [a.manifest["spec"]["replicas"] for a in plan.actions if isinstance(a, Apply)]
    assert scaled == ([] if replicas is None else [replicas])
    assert [a for a in plan.actions if isinstance(a, Delete)] == []


def test_no_warm_period_behind_the_one_service_of_the_replicas_provider() -> None:
    m = model(traffic={"provider": "replicas"})
    deployments = [
        available(build_deployment(m, spec_of(m), "m-v1", "s3://m/m-v1", 2)),
        build_deployment(m, spec_of(m), "m-v0", "s3://m/m-v0", 2),
    ]
    recent = retired("m-v0", timedelta(seconds=1))
    plan = plan_serving(
        m, spec_of(m), [version("m-v1", "Serving", "stable"), recent], deployments, [], NOW
    )
    scaled = {
        a.manifest["metadata"]["name"]: a.manifest["spec"]["replicas"]
        for a in plan.actions
        if isinstance(a, Apply) and a.manifest["kind"] == "Deployment"
    }
    assert scaled == {"m-v0": 0}


def test_objects_of_a_deleted_version_are_deleted_last() -> None:
    m = model()
    deployments = [
        available(build_deployment(m, spec_of(m), "m-v1", "s3://m/m-v1", 2)),
        build_deployment(m, spec_of(m), "m-gone", "s3://m/m-gone", 2),
    ]
    services = [build_version_service(m, spec_of(m), v) for v in ("m-v1", "m-gone")] + [
        build_model_service(m, spec_of(m))
    ]
    plan = plan_serving(
        m, spec_of(m), [version("m-v1", "Serving", "stable")], deployments, services, NOW
    )
    assert all(isinstance(a, Delete) for a in plan.actions)
    assert [(a.kind, a.name) for a in plan.actions if isinstance(a, Delete)] == [
        ("Deployment", "m-gone"),
        ("Service", "m-gone"),
    ]


def test_a_canary_is_served_beside_stable_with_the_replicas_asked() -> None:
    m = model()
    versions = [version("m-v1", "Serving", "stable"), version("m-v2", "Canary", "canary")]
    deployments = [available(build_deployment(m, spec_of(m), "m-v1", "s3://m/m-v1", 2))]
    services = [build_version_service(m, spec_of(m), "m-v1"), build_model_service(m, spec_of(m))]
    plan = plan_serving(
        m, spec_of(m), versions, deployments, services, NOW, CanaryServing("m-v2", 3, 1)
    )
    applied = [
        (a.manifest["kind"], a.manifest["metadata"]["name"], a.manifest["spec"].get("replicas"))
        for a in plan.actions
        if isinstance(a, Apply)
    ]
    assert applied == [("Deployment", "m-v1", 3), ("Deployment", "m-v2", 1)]
    assert plan.status["phase"] == "Progressing"


def test_a_version_service_made_before_stays_while_its_version_exists() -> None:
    """A replicas Model whose versions got Services (Always, or an earlier release) keeps
    them: nothing is deleted that a user may address; they go with their version."""
    m = model()
    deployments = [available(build_deployment(m, spec_of(m), "m-v1", "s3://m/m-v1", 2))]
    services = [build_version_service(m, spec_of(m), "m-v1"), build_model_service(m, spec_of(m))]
    plan = plan_serving(
        m, spec_of(m), [version("m-v1", "Serving", "stable")], deployments, services, NOW
    )
    assert plan.actions == []


def test_unexplained_world_is_reported_and_nothing_is_deleted() -> None:
    m = model()
    m["status"] = {"stableVersion": "m-v7"}
    deployment = build_deployment(m, spec_of(m), "m-v7", "s3://m/m-v7", 2)
    plan = plan_serving(m, spec_of(m), [version("m-v1")], [deployment], [], NOW)
    assert plan.actions == []
    assert plan.status["phase"] == "Failed"
    ready = next(c for c in plan.conditions if c["type"] == "Ready")
    assert ready["reason"] == "StableVersionMissing"
    assert any(e.type == "Warning" for e in plan.events)


def test_unknown_pin_is_a_condition_not_a_switch() -> None:
    m = model(pinnedVersion="m-v9")
    plan = plan_serving(m, spec_of(m), [version("m-v1", "Serving", "stable")], [], [], NOW)
    pinned = next(c for c in plan.conditions if c["type"] == "Pinned")
    assert (pinned["status"], pinned["reason"]) == ("False", "PinnedVersionNotFound")
    assert plan.status["stableVersion"] == "m-v1"
