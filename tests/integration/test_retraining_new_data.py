"""Trainings that bring something new, on the real control plane and a real Prometheus: a
candidate the offline gate rejects is not trained again on the same data — the breach
that started it backs off, and the new-data guard waits for new labelled examples — and
the Job is told since when each failing slice fails."""

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from localcluster.waiting import wait_for
from tests.harness.world import BAD, GOOD, MODEL, PRECISION, World, slices, traffic
from tests.integration.test_retraining import (
    RETRAIN,
    env_of,
    finish_training,
    jobs,
    looked,
    result,
    training,
    training_condition,
)

from modelloop.api.resources import MODEL_VERSIONS, MODELS

MINIMUM = 100
GUARDED: dict[str, Any] = RETRAIN | {
    "retraining": RETRAIN["retraining"]
    | {
        "cooldown": "1s",
        "maxPerDay": 30,
        "newData": {"query": 'sum(fraud_labelled_total{model="$model"})', "minimum": MINIMUM},
    }
}


def labelled(rate: float) -> dict[str, Any]:
    """The breached world, with the counter of labelled examples growing at ``rate``/s."""
    state = traffic({"eu": GOOD, "us": BAD})
    state["counters"].append(
        {"name": "fraud_labelled_total", "labels": {"model": MODEL}, "rate": rate}
    )
    return state


def phase(w: World, name: str) -> str | None:
    version = w.kube.get(MODEL_VERSIONS, w.namespace, name) or {}
    found: str | None = (version.get("status") or {}).get("phase")
    return found


def onset(w: World, slice_: str) -> datetime:
    """Since when the slice fails, as the breach verdict in status says."""
    [verdict] = [v for v in w.status()["verdicts"] if v["slice"] == slice_]
    return datetime.fromisoformat(verdict.get("failingSince") or verdict["since"])


def failing_since(job: dict[str, Any]) -> dict[str, datetime]:
    found = json.loads(env_of(job)["MODELLOOP_FAILING_SINCE"])
    return {name: datetime.fromisoformat(when) for name, when in found.items()}


def test_a_rejected_candidate_is_not_retrained_on_the_same_data(
    world: Callable[..., World],
) -> None:
    w = world({"slices": slices("eu", "us"), "metrics": [PRECISION], **GUARDED}, labelled(0.0))
    w.await_verdicts({"precision/eu": "pass", "precision/us": "breach"})
    [job] = wait_for(lambda: jobs(w), 60, "the breach's training Job")
    assert json.loads(env_of(job)["MODELLOOP_TRIGGER"])["kind"] == "breach"
    assert failing_since(job) == {"us": onset(w, "us")}
    assert training(w)["running"]["newDataCount"] == 0.0

    finish_training(w, result(us=0.90))  # us worse than the champion by 0.05 > 0.02
    wait_for(lambda: phase(w, "fraud-v2") == "Rejected", 60, "fraud-v2 rejected")
    wait_for(lambda: not jobs(w), 60, "the recorded Job deleted")
    held = training_condition(w, "the breach backing off", reason="RejectedBackoff")
    assert held["status"] == "False"
    assert held["message"].startswith(
        "breach trigger held: backoff after 1 rejected candidate(s) in a row: 0:05:00 from "
        "the last rejection, until "
    )
    assert held["message"].endswith(f" or {MINIMUM} new labelled examples (0 so far)")
    [state] = training(w)["triggers"]
    assert (state["kind"], state["sequence"], state["newDataCount"]) == ("breach", 2, 0.0)
    assert (state["rejections"], state["judgedThrough"]) == (1, 2)
    [event] = w.await_events("TriggerBackoff")
    assert event.startswith("breach trigger backs off after 1 rejected candidate(s) in a row: ")
    # A later reconcile (of an edit) still holds, and still starts nothing.
    assert looked(w)["reason"] == "RejectedBackoff"
    assert jobs(w) == []

    # Status lost (a restore from backup): the rejected ModelVersion still tells the
    # backoff, and the counter at its training's start.
    w.kube.merge_patch(MODELS, w.namespace, MODEL, {"status": {"training": None}}, sub="status")
    generation = w.kube.merge_patch(
        MODELS, w.namespace, MODEL, {"spec": {"retraining": {"dataWindow": "6d"}}}
    )["metadata"]["generation"]
    training_condition(
        w,
        "the backoff, rebuilt from the ModelVersion",
        reason="RejectedBackoff",
        observedGeneration=generation,
    )
    [state] = training(w)["triggers"]
    assert (state["sequence"], state["newDataCount"], state["rejections"]) == (2, 0.0, 1)
    assert jobs(w) == []

    # New labelled examples arrive: the backoff ends early, and the breach trains again.
    w.exporter.update(labelled(50.0))
    [job] = wait_for(lambda: jobs(w), 60, "the training on new labelled data")
    assert job["metadata"]["name"] == "fraud-train-3"
    assert json.loads(env_of(job)["MODELLOOP_TRIGGER"])["kind"] == "breach"
    assert training(w)["running"]["newDataCount"] >= MINIMUM
    assert failing_since(job) == {"us": onset(w, "us")}  # the same trouble, since the start


def test_no_reading_of_the_counter_trains_nothing(world: Callable[..., World]) -> None:
    """The counter has no series yet (a feedback service not deployed, a wrong query): the
    breach is held, saying so; once the series exists, it trains."""
    w = world(
        {"slices": slices("eu", "us"), "metrics": [PRECISION], **GUARDED},
        traffic({"eu": GOOD, "us": BAD}),
    )
    w.await_verdicts({"precision/eu": "pass", "precision/us": "breach"})
    held = training_condition(w, "the breach held for want of a count", reason="NewDataUnknown")
    assert held["message"] == (
        "breach trigger held: the new-data counter has no reading: no training on data it "
        "cannot count"
    )
    assert looked(w)["reason"] == "NewDataUnknown"
    assert jobs(w) == []

    w.exporter.update(labelled(0.0))
    [job] = wait_for(lambda: jobs(w), 60, "the training, once the counter reads")
    assert json.loads(env_of(job)["MODELLOOP_TRIGGER"])["kind"] == "breach"
