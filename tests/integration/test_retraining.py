"""From a trigger to a validated (or rejected) ModelVersion, on the real control plane:
the real Job controller, the harness finishing training pods as a kubelet would."""

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from localcluster.controlplane import ControlPlane
from localcluster.kubelet import TRAINING_JOB, finish_pod
from localcluster.waiting import wait_for
from tests.harness.admission import deny_operator_writes
from tests.harness.world import (
    BAD,
    GOOD,
    MODEL,
    PRECISION,
    SPARSE,
    World,
    slices,
    traffic,
)

from modelloop.api.resources import MODEL_VERSIONS, MODELS
from modelloop.api.vocabulary import GROUP, LABEL_MANAGED_BY, LABEL_MODEL, MANAGED_BY, VERSION
from modelloop.kube.rest import EVENTS, Kube, KubeError, Resource

JOBS = Resource("batch", "v1", "jobs")
PODS = Resource("", "v1", "pods")
QUOTAS = Resource("", "v1", "resourcequotas")
RETRAIN: dict[str, Any] = {
    "automation": "retrain",
    "retraining": {
        "triggers": {"onBreach": ["precision"]},
        "cooldown": "1h",
        "dataWindow": "7d",
        "outputURI": "s3://models/fraud",
        "job": TRAINING_JOB,
    },
    "validation": {"gates": [{"metric": "precision", "notWorseThan": {"absolute": 0.02}}]},
}


def result(us: float) -> str:
    rows = [("eu", 0.95, 0.95), ("us", us, 0.95)]
    return json.dumps(
        {
            "artifactURI": "s3://models/fraud/2/model.joblib",
            "metrics": {
                "candidate": [{"metric": "precision", "slice": s, "value": c} for s, c, _ in rows],
                "champion": [{"metric": "precision", "slice": s, "value": ch} for s, _, ch in rows],
            },
        }
    )


def jobs(w: World) -> list[dict[str, Any]]:
    return w.kube.list(JOBS, w.namespace, f"modelloop.dev/model={MODEL}")


def env_of(job: dict[str, Any]) -> dict[str, str]:
    container = job["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", "") for e in container["env"]}


def training(w: World) -> dict[str, Any]:
    return dict(w.status().get("training") or {})


def request_retraining(w: World, reason: str) -> None:
    w.kube.merge_patch(
        MODELS, w.namespace, MODEL, {"metadata": {"annotations": {"modelloop.dev/retrain": reason}}}
    )


def start_training(w: World, reason: str) -> None:
    request_retraining(w, reason)
    wait_for(lambda: jobs(w), 60, "the training Job")


def version_names(w: World) -> list[str]:
    return sorted(v["metadata"]["name"] for v in w.kube.list(MODEL_VERSIONS, w.namespace))


def finish_training(w: World, message: str) -> None:
    pod = wait_for(
        lambda: [
            p
            for p in w.kube.list(PODS, w.namespace, "modelloop.dev/training")
            if p["status"].get("phase") == "Running"
        ],
        60,
        "the training pod Running (kwok leaves it for the harness)",
    )[0]
    finish_pod(w.kube, w.namespace, pod["metadata"]["name"], message)


def quiet_world(world: Callable[..., World], **spec: Any) -> World:
    w = world(
        {"slices": slices("eu", "us"), "metrics": [PRECISION], **RETRAIN, **spec},
        traffic({"eu": GOOD, "us": GOOD}),
    )
    w.await_verdicts({"precision/eu": "pass", "precision/us": "pass"})
    return w


def training_condition(w: World, describe: str, **expected: Any) -> dict[str, Any]:
    """The Training condition, once it has the ``expected`` fields (reason, ...)."""

    def found() -> dict[str, Any]:
        condition = w.condition("Training")
        return condition if expected.items() <= condition.items() else {}

    return wait_for(found, 60, describe)


def looked(w: World) -> dict[str, Any]:
    """Edit the spec (the data window, by an hour) and return the Training condition that a
    reconcile of the edit wrote: proof that the operator looked, before a test asserts
    that nothing happened."""
    generation = (w.kube.get(MODELS, w.namespace, MODEL) or {})["metadata"]["generation"]
    patch = {"spec": {"retraining": {"dataWindow": f"{7 * 24 + generation}h"}}}
    edited = w.kube.merge_patch(MODELS, w.namespace, MODEL, patch)["metadata"]["generation"]
    return training_condition(
        w, f"the Training condition of generation {edited}", observedGeneration=edited
    )


def test_a_manual_request_trains_once_and_a_good_result_is_validated(
    world: Callable[..., World],
) -> None:
    w = quiet_world(world)
    request_retraining(w, "new labels from the fraud team")
    [job] = wait_for(lambda: jobs(w), 60, "the training Job")
    assert job["metadata"]["name"] == "fraud-train-2"  # fraud-v1 holds number 1
    env = env_of(job)
    assert env["MODELLOOP_MODEL"] == MODEL
    assert env["MODELLOOP_NAMESPACE"] == w.namespace
    assert env["MODELLOOP_BASE_VERSION"] == "fraud-v1"
    assert json.loads(env["MODELLOOP_TRIGGER"]) == {
        "kind": "manual",
        "reason": "new labels from the fraud team",
    }
    assert env["MODELLOOP_OUTPUT_URI"] == "s3://models/fraud/2"
    assert env["MODELLOOP_DATA_START"] < env["MODELLOOP_DATA_END"]
    assert job["metadata"]["ownerReferences"][0]["kind"] == "Model"
    # The request is consumed: the annotation goes once the Job exists (just after it).
    wait_for(
        lambda: (
            "modelloop.dev/retrain"
            not in (
                (w.kube.get(MODELS, w.namespace, MODEL) or {})["metadata"].get("annotations") or {}
            )
        ),
        30,
        "the retrain annotation removed",
    )

    finish_training(w, result(us=0.94))
    version = wait_for(
        lambda: w.kube.get(MODEL_VERSIONS, w.namespace, "fraud-v2"), 60, "the ModelVersion"
    )
    assert version is not None
    lineage = version["spec"]["lineage"]
    assert (lineage["sequence"], lineage["job"], lineage["baseVersion"]) == (
        2,
        "fraud-train-2",
        "fraud-v1",
    )
    assert lineage["trigger"]["kind"] == "manual"
    wait_for(
        lambda: (
            ((w.kube.get(MODEL_VERSIONS, w.namespace, "fraud-v2") or {}).get("status") or {}).get(
                "phase"
            )
            == "Validated"
        ),
        60,
        "Validated",
    )
    wait_for(lambda: not jobs(w), 60, "the recorded Job deleted")
    [record] = training(w)["history"]
    assert (record["outcome"], record["version"]) == ("Succeeded", "fraud-v2")
    assert training(w).get("running") is None
    assert len(jobs(w)) == 0
    totals = training(w)["totals"]
    took = datetime.fromisoformat(record["finished"]) - datetime.fromisoformat(record["started"])
    assert (totals["trainings"], totals["failed"]) == (1, 0)
    assert totals["seconds"] == took.total_seconds() >= 0


def test_a_result_that_regresses_one_slice_is_rejected_naming_it(
    world: Callable[..., World],
) -> None:
    w = quiet_world(world)
    start_training(w, "try")
    finish_training(w, result(us=0.90))
    wait_for(
        lambda: (
            ((w.kube.get(MODEL_VERSIONS, w.namespace, "fraud-v2") or {}).get("status") or {}).get(
                "phase"
            )
            == "Rejected"
        ),
        60,
        "Rejected",
    )
    status = (w.kube.get(MODEL_VERSIONS, w.namespace, "fraud-v2") or {})["status"]
    assert status["message"] == (
        "precision on slice us: 0.9 vs champion 0.95: worse by 0.05 > 0.02"
    )
    assert [(g["slice"], g["passed"]) for g in status["gates"]] == [("eu", True), ("us", False)]


def test_a_malformed_result_makes_no_version_and_says_why(world: Callable[..., World]) -> None:
    w = quiet_world(world)
    start_training(w, "try")
    finish_training(w, "{not json")
    wait_for(lambda: training(w).get("history"), 60, "the failure recorded")
    [record] = training(w)["history"]
    assert record["outcome"] == "Failed"
    assert "the result is not JSON" in record["message"]
    assert training(w)["consecutiveFailures"] == 1
    assert w.kube.get(MODEL_VERSIONS, w.namespace, "fraud-v2") is None
    events = [
        e["message"] for e in w.kube.list(EVENTS, w.namespace) if e["reason"] == "TrainingFailed"
    ]
    assert events == [
        "training 2 made no ModelVersion: the result is not JSON: "
        "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"
    ]


def test_a_breach_that_holds_starts_exactly_one_training(world: Callable[..., World]) -> None:
    w = world(
        {"slices": slices("eu", "us"), "metrics": [PRECISION], **RETRAIN},
        traffic({"eu": GOOD, "us": BAD}),
    )
    w.await_verdicts({"precision/eu": "pass", "precision/us": "breach"})
    [job] = wait_for(lambda: jobs(w), 60, "the training Job")
    env = env_of(job)
    trigger = json.loads(env["MODELLOOP_TRIGGER"])
    assert trigger["kind"] == "breach"
    assert trigger["reason"].startswith("precision on slice us = 0.")
    assert json.loads(env["MODELLOOP_FAILING_SLICES"]) == [
        {"name": "us", "matchers": [{"label": "region", "op": "=", "value": "us"}]}
    ]
    assert looked(w)["reason"] == "Running"  # the breach holds on: still one training
    assert len(jobs(w)) == 1

    finish_training(w, result(us=0.95))
    wait_for(lambda: training(w).get("history"), 60, "the training recorded")
    wait_for(lambda: not jobs(w), 60, "the recorded Job deleted")
    # Still breached, but within the 1h cooldown: a reconcile after the training says so.
    held = training_condition(w, "the breach trigger held by the cooldown", reason="Cooldown")
    assert jobs(w) == []
    assert w.verdicts()["precision/us"] == "breach"
    assert held["status"] == "False"
    assert held["message"].startswith("breach trigger held: cooldown 1h since the training of ")


def test_observe_only_never_trains(world: Callable[..., World]) -> None:
    w = world(
        {
            "slices": slices("eu", "us"),
            "metrics": [PRECISION],
            **(RETRAIN | {"automation": "observe"}),
        },
        traffic({"eu": GOOD, "us": BAD}),
    )
    w.await_verdicts({"precision/eu": "pass", "precision/us": "breach"})
    request_retraining(w, "please")
    disabled = looked(w)  # a reconcile of the breached, annotated Model
    assert jobs(w) == []
    assert training(w).get("running") is None
    assert (disabled["reason"], disabled["message"]) == (
        "Disabled",
        "automation is observe: no retraining",
    )


def test_a_crash_between_the_reservation_and_the_job_makes_exactly_one_job(
    world: Callable[..., World], control_plane: ControlPlane, kube: Kube
) -> None:
    rules = [
        {
            "apiGroups": ["batch"],
            "apiVersions": ["v1"],
            "resources": ["jobs"],
            "operations": ["CREATE"],
        }
    ]
    with deny_operator_writes(control_plane, "deny-job-create", rules, "crash test: no Jobs"):
        w = quiet_world(world)
        request_retraining(w, "crash")
        wait_for(lambda: "crash test: no Jobs" in w.operator.log_text(), 60, "the denied Job")
        running = training(w)["running"]
        assert (running["sequence"], running["job"]) == (2, "fraud-train-2")
        assert jobs(w) == []
        w.operator.kill()
    w.start_operator_again()
    [job] = wait_for(lambda: jobs(w), 60, "the Job after the restart")
    assert job["metadata"]["name"] == "fraud-train-2"
    assert looked(w)["reason"] == "Running"
    assert len(jobs(w)) == 1
    assert kube.get(MODELS, w.namespace, MODEL) is not None


def _rule(group: str, resource: str, operation: str) -> list[dict[str, Any]]:
    return [
        {
            "apiGroups": [group],
            "apiVersions": ["*"],
            "resources": [resource],
            "operations": [operation],
        }
    ]


def test_a_crash_before_the_request_is_cleared_does_not_train_twice(
    world: Callable[..., World], control_plane: ControlPlane
) -> None:
    w = quiet_world(world)
    message = "crash test: the Model's metadata is frozen"
    with deny_operator_writes(
        control_plane, "deny-model-update", _rule("modelloop.dev", "models", "UPDATE"), message
    ):
        request_retraining(w, "once")
        wait_for(lambda: message in w.operator.log_text(), 60, "the denied annotation removal")
        assert len(jobs(w)) == 1
        w.operator.kill()
    w.start_operator_again()
    finish_training(w, result(us=0.95))
    wait_for(lambda: training(w).get("history"), 60, "the training recorded")
    wait_for(
        lambda: (
            not (
                (
                    (w.kube.get(MODELS, w.namespace, MODEL) or {})["metadata"].get("annotations")
                    or {}
                ).get("modelloop.dev/retrain")
            )
        ),
        60,
        "the request cleared",
    )
    assert looked(w)["reason"] == "Idle"
    assert jobs(w) == []  # the request was consumed by the first training
    assert len(training(w)["history"]) == 1


def test_a_crash_after_the_version_before_the_record_keeps_one_version(
    world: Callable[..., World], control_plane: ControlPlane
) -> None:
    w = quiet_world(world)
    start_training(w, "record")
    message = "crash test: the Model's status is frozen"
    with deny_operator_writes(
        control_plane, "deny-status", _rule("modelloop.dev", "models/status", "UPDATE"), message
    ):
        finish_training(w, result(us=0.95))
        wait_for(lambda: w.kube.get(MODEL_VERSIONS, w.namespace, "fraud-v2"), 60, "the version")
        wait_for(lambda: message in w.operator.log_text(), 60, "the denied record")
        assert training(w)["running"]["sequence"] == 2
        assert len(jobs(w)) == 1  # not deleted before its result is recorded
        w.operator.kill()
    w.start_operator_again()
    wait_for(lambda: training(w).get("history"), 60, "the training recorded after the restart")
    [entry] = training(w)["history"]
    assert (entry["outcome"], entry["version"]) == ("Succeeded", "fraud-v2")
    assert version_names(w) == ["fraud-v1", "fraud-v2"]


def version_quota(count: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "modelversions"},
        "spec": {"hard": {"count/modelversions.modelloop.dev": str(count)}},
    }


def version_creatable(kube: Kube, namespace: str) -> bool:
    """A ModelVersion may be created now (a dry run passes admission, the quota included)."""
    probe = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelVersion",
        "metadata": {"name": "probe"},
        "spec": {"model": MODEL, "uri": "s3://probe"},
    }
    try:
        kube.request("POST", MODEL_VERSIONS.path(namespace), body=probe, query={"dryRun": "All"})
    except KubeError as error:
        if error.status == 403:
            return False
        raise
    return True


def test_a_crash_before_the_version_loses_nothing(world: Callable[..., World], kube: Kube) -> None:
    """The Job finished, but its ModelVersion cannot be made for now: a ResourceQuota on
    ModelVersions forbids it (a 403, retried; unlike a 422, no verdict on the result).
    The operator crashes meanwhile; once the quota is gone, the version is made once."""
    w = quiet_world(world)
    start_training(w, "version")
    kube.create(QUOTAS, w.namespace, version_quota(1))  # fraud-v1 takes it
    wait_for(lambda: not version_creatable(kube, w.namespace), 30, "the quota in force")
    finish_training(w, result(us=0.95))
    refused = 'modelversions.modelloop.dev "fraud-v2" is forbidden'  # by the quota: a 403
    wait_for(lambda: refused in w.operator.log_text(), 60, "the quota refusing fraud-v2")
    assert w.kube.get(MODEL_VERSIONS, w.namespace, "fraud-v2") is None
    assert training(w)["running"]["sequence"] == 2
    w.operator.kill()
    kube.delete(QUOTAS, w.namespace, "modelversions")
    wait_for(lambda: version_creatable(kube, w.namespace), 30, "the quota lifted")
    w.start_operator_again()
    wait_for(
        lambda: (
            ((w.kube.get(MODEL_VERSIONS, w.namespace, "fraud-v2") or {}).get("status") or {}).get(
                "phase"
            )
            == "Validated"
        ),
        60,
        "the version, once",
    )
    assert version_names(w) == ["fraud-v1", "fraud-v2"]


def test_new_labelled_data_starts_a_training(world: Callable[..., World]) -> None:
    retrain = RETRAIN | {
        "retraining": RETRAIN["retraining"]
        | {
            "triggers": {
                "newData": {"query": 'sum(fraud_labelled_total{model="$model"})', "volume": 1000}
            }
        }
    }
    state = traffic({"eu": GOOD, "us": GOOD})
    state["counters"].append(
        {"name": "fraud_labelled_total", "labels": {"model": MODEL}, "rate": 200.0}
    )
    w = world({"slices": slices("eu", "us"), "metrics": [PRECISION], **retrain}, state)
    [job] = wait_for(lambda: jobs(w), 90, "the training Job")
    trigger = json.loads(env_of(job)["MODELLOOP_TRIGGER"])
    assert trigger["kind"] == "newData"
    assert trigger["reason"].endswith("new labelled examples since the last training (volume 1000)")
    assert training(w)["newDataBaseline"] > 0
    assert training(w)["running"]["newDataCount"] >= training(w)["newDataBaseline"] + 1000


def test_the_schedule_starts_a_training(world: Callable[..., World]) -> None:
    retrain = RETRAIN | {
        "retraining": RETRAIN["retraining"] | {"triggers": {"schedule": "* * * * *"}}
    }
    w = world(
        {"slices": slices("eu", "us"), "metrics": [PRECISION], **retrain},
        traffic({"eu": GOOD, "us": GOOD}),
    )
    # The schedule fires at the next minute; the operator looks again within 30 s.
    [job] = wait_for(lambda: jobs(w), 120, "the scheduled training Job")
    trigger = json.loads(env_of(job)["MODELLOOP_TRIGGER"])
    assert trigger["kind"] == "schedule"
    assert trigger["reason"].startswith("schedule * * * * * fired at ")


def test_inconclusive_data_never_trains(world: Callable[..., World]) -> None:
    w = world(
        {"slices": slices("eu", "us"), "metrics": [PRECISION], **RETRAIN},
        traffic({"eu": SPARSE, "us": SPARSE}),
    )
    w.await_verdicts({"precision/eu": "inconclusive", "precision/us": "inconclusive"})
    assert looked(w)["reason"] == "Idle"
    assert jobs(w) == []


def test_a_failed_job_makes_no_version_and_backs_off(world: Callable[..., World]) -> None:
    w = quiet_world(world)
    start_training(w, "try")
    pod = wait_for(lambda: w.kube.list(PODS, w.namespace, "modelloop.dev/training"), 60, "pod")[0]
    finish_pod(w.kube, w.namespace, pod["metadata"]["name"], "out of memory", exit_code=137)
    wait_for(lambda: training(w).get("history"), 60, "the failure recorded")
    [record] = training(w)["history"]
    assert record["outcome"] == "Failed"
    assert record["message"].startswith("Job fraud-train-2 failed: ")
    assert training(w)["consecutiveFailures"] == 1
    assert w.kube.get(MODEL_VERSIONS, w.namespace, "fraud-v2") is None


def stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def made_version(sequence: int) -> dict[str, Any]:
    """A ModelVersion as one of ModelLoop's trainings makes it: the operator's labels and
    the training's lineage."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelVersion",
        "metadata": {
            "name": f"{MODEL}-v{sequence}",
            "labels": {LABEL_MODEL: MODEL, LABEL_MANAGED_BY: MANAGED_BY},
        },
        "spec": {
            "model": MODEL,
            "uri": f"s3://models/fraud/{sequence}/model.joblib",
            "lineage": {
                "sequence": sequence,
                "job": f"{MODEL}-train-{sequence}",
                "trigger": {"kind": "manual", "reason": f"training {sequence}"},
            },
        },
    }


def train(w: World, reason: str) -> dict[str, Any]:
    """One whole training, finished by the harness; returns its history entry."""
    request_retraining(w, reason)
    [job] = wait_for(lambda: jobs(w), 60, f"the Job of {reason!r}")
    finish_training(w, result(us=0.95))
    sequence = int(job["metadata"]["name"].rsplit("-", 1)[1])
    recorded: dict[str, Any] = wait_for(
        lambda: next(
            (r for r in training(w).get("history") or [] if r["sequence"] == sequence), {}
        ),
        60,
        f"training {sequence} recorded",
    )
    return recorded


def test_max_per_day_30_holds_the_31st_training_of_the_day(world: Callable[..., World]) -> None:
    """maxPerDay counts the trainings of the last 24 hours as the cluster shows them — the
    history in status, the Jobs, and the ModelVersions trainings made — whatever its value
    (it used to count a history capped at 20). 27 trainings of the last hours are in the
    cluster as the ModelVersions they made, status recalls only the last 3 of them, then
    3 real trainings run: the 31st of the day is held."""
    retraining = RETRAIN["retraining"] | {"cooldown": "1s", "maxPerDay": 30}
    w = quiet_world(world, retraining=retraining, history={"keep": 50})
    for sequence in range(2, 29):
        w.kube.create(MODEL_VERSIONS, w.namespace, made_version(sequence))
    now = datetime.now(UTC)
    recalled = [
        {
            "sequence": n,
            "job": f"{MODEL}-train-{n}",
            "trigger": {"kind": "manual", "reason": f"training {n}"},
            "started": stamp(now - timedelta(hours=29 - n)),
            "finished": stamp(now - timedelta(hours=29 - n, minutes=-5)),
            "outcome": "Succeeded",
            "version": f"{MODEL}-v{n}",
        }
        for n in (26, 27, 28)
    ]
    w.kube.merge_patch(
        MODELS,
        w.namespace,
        MODEL,
        {"status": {"training": {"history": recalled, "nextSequence": 29}}},
        sub="status",
    )
    for n in (29, 30, 31):
        assert train(w, f"training {n}")["outcome"] == "Succeeded"
    wait_for(lambda: not jobs(w), 60, "the recorded Jobs deleted")

    request_retraining(w, "one too many")
    held = training_condition(w, "the 31st training held by maxPerDay", reason="MaxPerDay")
    assert held["status"] == "False"
    assert held["message"] == "manual trigger held: maxPerDay 30 reached (30 in the last 24h)"
    assert jobs(w) == []
    assert len(training(w)["history"]) == 6  # status alone recalls 6 of the 30

    # Status lost (a restore from backup): the ModelVersions still say 30.
    w.kube.merge_patch(MODELS, w.namespace, MODEL, {"status": {"training": None}}, sub="status")
    held = looked(w)
    assert (held["reason"], held["message"]) == (
        "MaxPerDay",
        "manual trigger held: maxPerDay 30 reached (30 in the last 24h)",
    )
    assert jobs(w) == []
    assert training(w).get("running") is None


def test_retention_deletes_only_versions_modelloop_made_newest_by_sequence(
    world: Callable[..., World],
) -> None:
    """history.keep 2: of the versions ModelLoop's trainings made, the two with the highest
    sequence stay, whatever the order they were created in; versions applied from outside
    (kubectl apply, Argo CD) are never deleted, though they are the oldest objects."""
    w = quiet_world(world, history={"keep": 2})
    # From Git, first: a copy of a trained version re-applied with kubectl apply (which
    # records what it applied), and one a pipeline made, tracked by Argo CD's label.
    applied = made_version(3)
    applied["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/last-applied-configuration": json.dumps(applied)
    }
    w.kube.create(MODEL_VERSIONS, w.namespace, applied)
    tracked = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelVersion",
        "metadata": {
            "name": f"{MODEL}-champion",
            "labels": {LABEL_MODEL: MODEL, "app.kubernetes.io/instance": "fraud-models"},
        },
        "spec": {"model": MODEL, "uri": "s3://models/fraud/champion/model.joblib"},
    }
    w.kube.create(MODEL_VERSIONS, w.namespace, tracked)
    # Made by ModelLoop's trainings, created out of order (e.g. restored from a backup).
    for sequence in (7, 5, 6):
        w.kube.create(MODEL_VERSIONS, w.namespace, made_version(sequence))
    wait_for(
        lambda: (
            version_names(w) == ["fraud-champion", "fraud-v1", "fraud-v3", "fraud-v6", "fraud-v7"]
        ),
        60,
        "fraud-v5 expired",
    )
    assert train(w, "one more")["version"] == "fraud-v8"
    wait_for(
        lambda: (
            version_names(w) == ["fraud-champion", "fraud-v1", "fraud-v3", "fraud-v7", "fraud-v8"]
        ),
        60,
        "fraud-v6 expired",
    )
    expired = [
        "deleted ModelVersion fraud-v5: history.keep is 2",
        "deleted ModelVersion fraud-v6: history.keep is 2",
    ]
    wait_for(lambda: sorted(w.events("VersionExpired")) == expired, 30, "an Event per deletion")


def test_a_job_the_api_server_refuses_is_a_condition_and_one_event_until_fixed(
    world: Callable[..., World],
) -> None:
    """A training Job template the Model's schema accepts (the template is kept as written)
    but the API server refuses: the Training condition and one Warning Event say why, the
    reserved training is retried, and fixing the template is enough."""
    refused = copy.deepcopy(TRAINING_JOB)
    refused["spec"]["template"]["spec"]["containers"][0]["resources"] = {
        "requests": {"memory": "2Gi"},
        "limits": {"memory": "1Gi"},
    }
    w = quiet_world(world, retraining=RETRAIN["retraining"] | {"job": refused})
    request_retraining(w, "a template the API server refuses")
    condition = training_condition(w, "the Training condition JobRefused", reason="JobRefused")
    assert condition["status"] == "False"
    assert condition["message"].startswith("the API server refused Job fraud-train-2: ")
    assert "resources.requests" in condition["message"]  # the field, in the API server's words
    # A reconcile after an unrelated edit retries the Job, refused again, announced once.
    assert looked(w)["reason"] == "JobRefused"
    [event] = [
        e
        for e in w.kube.list(EVENTS, w.namespace)
        if e["reason"] == "JobRefused" and e["involvedObject"]["name"] == MODEL
    ]
    assert event["type"] == "Warning"
    assert event["message"] == condition["message"]
    assert jobs(w) == []
    assert training(w)["running"]["job"] == "fraud-train-2"

    w.kube.merge_patch(MODELS, w.namespace, MODEL, {"spec": {"retraining": {"job": TRAINING_JOB}}})
    [job] = wait_for(lambda: jobs(w), 60, "the Job, once the template is fixed")
    assert job["metadata"]["name"] == "fraud-train-2"
    finish_training(w, result(us=0.95))
    wait_for(lambda: training(w).get("history"), 60, "the training recorded")
    [record] = training(w)["history"]
    assert (record["outcome"], record["version"]) == ("Succeeded", "fraud-v2")
    assert len(w.events("JobRefused")) == 1


def test_a_version_registered_by_hand_is_validated_and_its_canary_starts_without_a_resync(
    world: Callable[..., World],
) -> None:
    """The pass that validates a candidate served before it judged; the canary starts on a
    pass that pass asks for (its own write's echo wakes nothing), not on the periodic
    resync, here an hour away."""
    steps = [{"weight": 10, "duration": "1h"}, {"weight": 100, "duration": "0s"}]
    rollout = {"steps": steps, "analysis": {"interval": "1s"}}
    w = world(
        {
            "slices": slices("eu", "us"),
            "metrics": [PRECISION],
            **RETRAIN,
            "automation": "promote",
            "traffic": {"provider": "replicas"},
            "rollout": rollout,
        },
        traffic({"eu": GOOD, "us": GOOD}),
        operator_args=["--resync-period=3600"],
    )
    # Settled: the evaluation writes no more, and its writes would wake the Model too.
    w.await_verdicts({"precision/eu": "pass", "precision/us": "pass"})
    wait_for(lambda: w.condition("Ready").get("status") == "True", 60, "fraud-v1 serving")
    offline = [{"metric": "precision", "slice": s, "value": 0.95} for s in ("eu", "us")]
    w.kube.create(
        MODEL_VERSIONS,
        w.namespace,
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ModelVersion",
            "metadata": {"name": "fraud-v2"},
            "spec": {
                "model": MODEL,
                "uri": "s3://models/fraud/2",
                "metrics": {"candidate": offline, "champion": offline},
            },
        },
    )
    # The pass that starts the rollout writes status.canary at weight 0; the next one (the
    # evaluation of the new canary's series wakes it) writes the first step's weight.
    canary = wait_for(
        lambda: (w.status().get("canary") or {}).get("weight"), 60, "fraud-v2 at its first step"
    )
    assert (w.status()["canary"]["version"], canary) == ("fraud-v2", 10)
    assert w.await_events("Validated")
    assert w.await_events("RolloutStarted")
