"""Which Models the periodic resync takes again: those whose inputs changed, those that
wait on time, and every one after FULL_RESYNC."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from modelloop.api.resources import MODEL_VERSIONS
from modelloop.api.vocabulary import LABEL_MODEL, LABEL_VERSION
from modelloop.handlers.resync import (
    FULL_RESYNC,
    SPREAD,
    Seen,
    due,
    full_resync_bound,
    inputs_of,
    keeps_warm,
)
from modelloop.kube.cache import ObjectCache
from modelloop.kube.rest import DEPLOYMENTS, Obj

NOW = datetime(2026, 12, 2, 10, 0, 20, tzinfo=UTC)
LAST = NOW - timedelta(seconds=30)
NS = "ml"


def model(status: dict[str, Any] | None = None, retraining: dict[str, Any] | None = None) -> Obj:
    spec = {"retraining": retraining} if retraining else {}
    return {
        "metadata": {"name": "churn", "resourceVersion": "7"},
        "spec": spec,
        "status": status or {},
    }


def training(reason: str) -> dict[str, Any]:
    return {"conditions": [{"type": "Training", "status": "False", "reason": reason}]}


AT_REST = model({"stableVersion": "churn-v1", **training("Idle")})


@pytest.mark.parametrize(
    ("body", "warm", "expected"),
    [
        (AT_REST, False, False),
        (model(training("NoNewData")), False, False),  # waits on data: its change wakes it
        (model({"canary": {"version": "churn-v2"}}), False, True),
        (model({"labelsPending": [{"version": "churn-v2"}]}), False, True),
        (model({"training": {"running": {"sequence": 3}}}), False, True),
        (model(training("Cooldown")), False, True),
        (model(training("RejectedBackoff")), False, True),
        (model(training("MaxPerDay")), False, True),
        (model(training("RolloutInProgress")), False, True),
        (AT_REST, True, True),  # a retired version's replicas wait for scaleDownDelay
        # A schedule that fired since the last reconcile (09:59:50), and one that did not.
        (model(training("Idle"), {"triggers": {"schedule": "0 10 * * *"}}), False, True),
        (model(training("Idle"), {"triggers": {"schedule": "0 3 * * *"}}), False, False),
    ],
)
def test_a_model_with_the_same_inputs_is_taken_only_when_it_waits_on_time(
    body: Obj, warm: bool, expected: bool
) -> None:
    assert due(body, "inputs", Seen("inputs", LAST), warm, NOW) is expected


@pytest.mark.parametrize(
    ("seen", "expected"),
    [
        (None, True),  # never reconciled by this replica
        (Seen("before", LAST), True),  # a change whose event went missing
        # The bound on anything this misses: within FULL_RESYNC ± SPREAD for every Model.
        (Seen("inputs", NOW - FULL_RESYNC * (1 + SPREAD)), True),
        (Seen("inputs", NOW - FULL_RESYNC * (1 - SPREAD) + timedelta(seconds=1)), False),
        (Seen("inputs", LAST), False),
    ],
)
def test_a_model_at_rest_is_taken_when_its_inputs_changed_or_it_was_long_ago(
    seen: Seen | None, expected: bool
) -> None:
    assert due(AT_REST, "inputs", seen, False, NOW) is expected


def test_a_fleet_reconciled_at_once_is_not_taken_again_all_in_one_resync() -> None:
    """After a start every Model was reconciled in the same minute; their full resyncs
    fall over ten or more 30 s resyncs, none taking more than a sixth of the fleet."""
    fleet = [{"metadata": {"namespace": NS, "name": f"m{i}"}} for i in range(2500)]
    bounds = [full_resync_bound(m) for m in fleet]
    assert all(FULL_RESYNC * (1 - SPREAD) <= b < FULL_RESYNC * (1 + SPREAD) for b in bounds)
    assert full_resync_bound(fleet[7]) == bounds[7]  # the same Model, the same bound
    ticks: dict[int, int] = {}
    for bound in bounds:
        tick = -(-bound // timedelta(seconds=30))  # the first resync at or after it
        ticks[tick] = ticks.get(tick, 0) + 1
    assert len(ticks) >= 10
    assert max(ticks.values()) <= len(fleet) / 6


def child(name: str, rv: int, replicas: int = 1, version: str = "churn-v1") -> Obj:
    labels = {LABEL_MODEL: "churn", LABEL_VERSION: version}
    meta = {"namespace": NS, "name": name, "resourceVersion": str(rv), "labels": labels}
    return {"metadata": meta, "spec": {"replicas": replicas}}


def version(name: str, phase: str) -> Obj:
    meta = {"namespace": NS, "name": name, "resourceVersion": "1"}
    return {"metadata": meta, "spec": {"model": "churn"}, "status": {"phase": phase}}


def test_inputs_change_with_any_child_and_with_the_evaluation() -> None:
    cache = ObjectCache()
    cache.remember(DEPLOYMENTS, None, child("churn-v1", 5))
    body = {"metadata": {"name": "churn", "resourceVersion": "7"}}
    first = inputs_of(cache, (DEPLOYMENTS, MODEL_VERSIONS), NS, body, 12.0)
    assert inputs_of(cache, (DEPLOYMENTS, MODEL_VERSIONS), NS, body, 12.0) == first
    assert inputs_of(cache, (DEPLOYMENTS, MODEL_VERSIONS), NS, body, 13.0) != first
    cache.remember(DEPLOYMENTS, None, child("churn-v1", 6))
    assert inputs_of(cache, (DEPLOYMENTS, MODEL_VERSIONS), NS, body, 12.0) != first


@pytest.mark.parametrize(
    ("phases", "replicas", "warm"),
    [
        ({"churn-v1": "Serving"}, 2, False),
        ({"churn-v1": "Retired"}, 2, True),  # retired, still up: scaleDownDelay runs
        ({"churn-v1": "Retired"}, 0, False),
        ({"churn-v1": "Canary"}, 1, False),
    ],
)
def test_a_deployment_of_a_version_that_no_longer_serves_keeps_the_model_warm(
    phases: dict[str, str], replicas: int, warm: bool
) -> None:
    cache = ObjectCache()
    for name, phase in phases.items():
        cache.remember(MODEL_VERSIONS, None, version(name, phase))
    cache.remember(DEPLOYMENTS, None, child("churn-v1", 5, replicas))
    assert keeps_warm(cache, NS, "churn") is warm
