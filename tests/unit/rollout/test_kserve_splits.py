"""Splits on an InferenceService: what the predictor must serve, what is read back, and
the refused canaries of RawDeployment mode (pure)."""

from datetime import UTC, datetime
from typing import Any

import pytest
from tests.unit.inference_services import isvc

from modelloop.api.model import ModelSpec
from modelloop.rollout.kserve import canary_refused, observed_split, serve_for
from modelloop.rollout.machine import RolloutWorld
from modelloop.rollout.router import KServeRouter, router_for
from modelloop.rollout.traffic import RouteError, Split
from modelloop.serving.kserve import Serve
from modelloop.serving.plan import VersionView

Obj = dict[str, Any]
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
URIS = {f"churn-v{n}": f"s3://m/churn-v{n}" for n in (1, 2, 3)}
STEADY = isvc("churn-v1", created="p-00001", ready="p-00001", rolled="p-00001")
FRESH = isvc("churn-v1", created="p-00001", ready="p-00001")  # not rolled out yet
STARTING = isvc("churn-v2", 0, "churn-v1", "p-00002", "p-00001", "p-00001", rolled="p-00001")
CANARY = isvc("churn-v2", 10, "churn-v1", "p-00002", "p-00002", "p-00001", rolled="p-00001")
# After a rollback: v1's artifact again, in a new revision still starting, at 0%.
RESTORING = isvc("churn-v1", 0, "churn-v1", "p-00003", "p-00002", "p-00002", rolled="p-00001")
RESTORED = isvc("churn-v1", 0, "churn-v1", "p-00003", "p-00003", "p-00002", rolled="p-00001")


def serve(version: str, percent: int | None, stable: str = "churn-v1") -> Serve:
    return Serve(version, f"s3://m/{version}", percent, stable)


@pytest.mark.parametrize(
    ("split", "current", "expected"),
    [
        # The first write creates it serving stable: no revision to keep traffic on.
        (Split("churn-v1", None, 0), None, serve("churn-v1", None)),
        (Split("churn-v1", None, 0), STEADY, serve("churn-v1", None)),
        # A canary starts at 0% while its revision starts, then takes its weight.
        (Split("churn-v1", "churn-v2", 0), STEADY, serve("churn-v2", 0)),
        (Split("churn-v1", "churn-v2", 10), STARTING, serve("churn-v2", 10)),
        # Not before stable's revision has all the traffic: the predictor stays stable's.
        (Split("churn-v1", "churn-v2", 0), None, serve("churn-v1", None)),
        (Split("churn-v1", "churn-v2", 0), FRESH, serve("churn-v1", None)),
        (Split("churn-v1", "churn-v2", 0), RESTORING, serve("churn-v1", 0)),
        (Split("churn-v1", "churn-v2", 0), RESTORED, serve("churn-v1", None)),
        # Promotion: the canary's revision takes everything.
        (Split("churn-v2", None, 0), CANARY, serve("churn-v2", None, "churn-v2")),
        # Rollback: stable's artifact at 0% (traffic stays on the rolled-out revision)...
        (Split("churn-v1", None, 0), CANARY, serve("churn-v1", 0)),
        # ...kept at 0% until its revision is ready, then all of it.
        (Split("churn-v1", None, 0), RESTORING, serve("churn-v1", 0)),
        (Split("churn-v1", None, 0), RESTORED, serve("churn-v1", None)),
        # Another stable version (a pin) is brought in the same way.
        (Split("churn-v3", None, 0), STEADY, serve("churn-v3", 0, "churn-v3")),
    ],
)
def test_serve_for(split: Split, current: Obj | None, expected: Serve) -> None:
    assert serve_for(split, URIS, current) == expected


def test_raw_mode_serves_stable_without_a_percent_and_refuses_a_canary() -> None:
    assert serve_for(Split("churn-v3", None, 0), URIS, STEADY, raw=True) == serve(
        "churn-v3", None, "churn-v3"
    )
    with pytest.raises(RouteError, match="RawDeployment mode cannot split traffic"):
        serve_for(Split("churn-v1", "churn-v2", 10), URIS, STEADY, raw=True)


def test_a_version_without_an_artifact_is_a_route_error() -> None:
    with pytest.raises(RouteError, match="ModelVersion churn-v9 is gone"):
        serve_for(Split("churn-v9", None, 0), URIS, None)


@pytest.mark.parametrize(
    ("current", "expected"),
    [
        (isvc(None), None),
        (STEADY, Split("churn-v1", None, 0)),
        (STARTING, Split("churn-v1", "churn-v2", 0)),
        (CANARY, Split("churn-v1", "churn-v2", 10)),
        (RESTORING, Split("churn-v1", None, 0)),
        (isvc("churn-v2", 10), Split("churn-v2", None, 0)),  # no stable recorded
        (isvc("churn-v2", 150, "churn-v1"), None),  # not a percent
    ],
)
def test_observed_split(current: Obj, expected: Split | None) -> None:
    assert observed_split(current) == expected


TEMPLATE_SPEC = ModelSpec.model_validate(
    {"serving": {"template": {"spec": {"containers": [{"name": "s"}]}}}, "automation": "promote"}
)


def spec(mode: str = "RawDeployment", **overrides: Any) -> ModelSpec:
    return ModelSpec.model_validate(
        {
            "serving": {"kserve": {"adopt": "churn", "deploymentMode": mode}},
            "automation": "promote",
            **overrides,
        }
    )


def world(model_spec: ModelSpec, *phases: str | None, canary: bool = False) -> RolloutWorld:
    versions = [
        VersionView(f"churn-v{n}", f"s3://m/churn-v{n}", phase, None, None, str(n))
        for n, phase in enumerate(("Serving", *phases), start=1)
    ]
    return RolloutWorld(
        name="churn",
        spec=model_spec,
        stable="churn-v1",
        canary=None,
        versions=versions,
        canary_ready=False,
        observed_weight=None,
        snapshot=None,
        approval=None,
        abort=None,
        now=NOW,
    )


def test_raw_mode_starts_no_rollout_and_says_why() -> None:
    decision = canary_refused(world(spec(), "Validated", "Validated"))
    assert decision is not None
    assert (decision.canary, decision.marks, decision.weight) == (None, [], 0)
    [progressing] = decision.conditions
    assert (progressing["status"], progressing["reason"]) == ("False", "CanaryUnsupported")
    assert progressing["message"].startswith("churn-v3 waits")  # the newest candidate
    assert "churn-v1 serves alone" in progressing["message"]


@pytest.mark.parametrize(
    "case",
    [
        world(spec("Serverless"), "Validated"),  # canaries are Serverless's
        world(spec(), None),  # nothing to start
        world(spec(), "Canary"),  # a running canary is the machine's to take back
        world(spec(automation="observe"), "Validated"),
        world(spec(pinnedVersion="churn-v1"), "Validated"),
        world(spec(paused=True), "Validated"),
        world(TEMPLATE_SPEC, "Validated"),
    ],
    ids=["serverless", "no-candidate", "running", "observe", "pinned", "paused", "template"],
)
def test_otherwise_the_machine_decides(case: RolloutWorld) -> None:
    assert canary_refused(case) is None


def test_router_for_kserve_carries_the_artifacts() -> None:
    router = router_for(spec("Serverless"), URIS)
    assert isinstance(router, KServeRouter)
    assert router.uris == URIS
