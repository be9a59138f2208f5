"""The loop with a training workload, end to end: a breach on one slice starts a training
that is a Kubeflow TrainJob or a KubeRay RayJob (their CRDs from the projects' Go
modules), whose controller the harness plays openly (tests/harness/trainers.py); its
result, written by ``modelloop.sdk.report`` into the result ConfigMap with the token of
the workload's ServiceAccount, makes a Validated ModelVersion, which is rolled out
through the canary steps on live model servers and promoted.

The trainer here is not the example trainer: the canary world's versions are
``s3://`` URIs with no artifact behind them, served by model servers whose accuracy the
test sets, so there is nothing to train on. The workload's command reports a fixed
result instead (better than the champion on the failing slice, like test_kserve's
``trained``), through the same SDK call and the same ConfigMap a real trainer uses.

The crash tests of workloads (held by an admission policy) are integration tests:
tests/integration/test_training_workloads.py."""

import shlex
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from localcluster.controlplane import ControlPlane
from localcluster.waiting import wait_for
from tests.harness.canary import (
    CANARY,
    MODEL,
    STABLE,
    CanaryWorld,
    StatusLog,
    breach_loop,
    forward_only,
)
from tests.harness.trainers import RAYJOBS, TRAINJOBS, TrainingControllers, rayjob, trainjob

from modelloop.api.resources import MODEL_VERSIONS
from modelloop.kube.rest import Resource

JOBS = Resource("batch", "v1", "jobs")
# Web stays far above the objective (min 0.75): at 0.92, five standard deviations at the
# ~60 samples of the first windows, so the breach's trigger names mobile alone. At 0.85 a
# run of unlucky draws (the server's seeded stream) once read 0.74 on web over 185 samples.
GOOD = {"mobile": 0.92, "web": 0.92}
BETTER = {"mobile": 0.95, "web": 0.95}
BROKEN_ON_MOBILE = {"mobile": 0.6, "web": 0.92}
TRAINING = "churn-train-2"

# The trainer's offline evaluation: the candidate as good as the champion on web and
# far better on mobile, where the champion broke.
CANDIDATE = {("accuracy", "mobile"): 0.95, ("accuracy", "web"): 0.95}
CHAMPION = {("accuracy", "mobile"): 0.6, ("accuracy", "web"): 0.95}
SAMPLES = {key: 2000 for key in CANDIDATE}
REPORT = [
    "python",
    "-c",
    "import os; from modelloop.sdk import report; "
    f"report(os.environ['MODELLOOP_OUTPUT_URI'], {CANDIDATE!r}, {CHAMPION!r}, "
    f"samples={SAMPLES!r})",
]

TRAINJOB = trainjob(REPORT)
RAYJOB = rayjob(shlex.join(REPORT))
WORKLOADS = {"TrainJob": (TRAINJOBS, TRAINJOB), "RayJob": (RAYJOBS, RAYJOB)}


@pytest.fixture
def held_controllers(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> Iterator[TrainingControllers]:
    """The training controllers, running nothing until released."""
    played = TrainingControllers(control_plane.admin, namespace, tmp_path, held=True)
    yield played
    played.stop()


@pytest.mark.usefixtures("training_crds")
@pytest.mark.parametrize("kind", list(WORKLOADS))
def test_a_breach_trains_with_a_workload_whose_candidate_is_rolled_out_and_promoted(
    canary_world: Callable[..., CanaryWorld],
    held_controllers: TrainingControllers,
    control_plane: ControlPlane,
    kind: str,
) -> None:
    resource, workload = WORKLOADS[kind]
    world = canary_world("gateway-managed", GOOD, BETTER, **breach_loop(workload=workload))
    kube, namespace = world.kube, world.namespace
    log = StatusLog(control_plane.admin.kubeconfig, namespace, MODEL)
    try:
        world.servers[STABLE].set_accuracy(BROKEN_ON_MOBILE)  # the concept turns on mobile
        [job] = wait_for(
            lambda: kube.list(resource, namespace), 90, f"a {kind} started by the breach"
        )
        assert job["metadata"]["name"] == TRAINING
        running = (world.status().get("training") or {}).get("running") or {}
        trigger = running.get("trigger") or {}
        assert trigger.get("kind") == "breach", running
        assert [(f["metric"], f["slice"]) for f in trigger.get("failing", [])] == [
            ("accuracy", "mobile")
        ], running
        held_controllers.release()  # the workload's controller runs its trainer now

        world.await_phase(CANARY, "Canary", timeout=60)  # Validated, then rolled out
        world.await_phase(CANARY, "Serving", timeout=120)
        world.await_phase(STABLE, "Retired", timeout=30)
        wait_for(
            lambda: world.condition("Healthy").get("status") == "True",
            60,
            "accuracy within its objective again",
        )
    finally:
        log.stop()

    [(name, done)] = held_controllers.runs.items()  # one workload, run once
    assert (name, done.code) == (f"{resource.plural}/{TRAINING}", 0), done
    assert kube.list(JOBS, namespace) == []  # no batch/v1 Job beside the workload
    [record] = (world.status().get("training") or {}).get("history") or []
    assert (record["outcome"], record["version"], record["job"]) == (
        "Succeeded",
        CANARY,
        TRAINING,
    )
    version = kube.get(MODEL_VERSIONS, namespace, CANARY) or {}
    assert version["spec"]["uri"] == f"s3://models/{MODEL}/2"  # the reported artifact
    # The offline validation read the numbers the trainer wrote in the ConfigMap.
    gates = {g["slice"]: (g["candidate"], g["champion"]) for g in version["status"]["gates"]}
    assert gates == {"mobile": (0.95, 0.6), "web": (0.95, 0.95)}, version["status"]["gates"]
    for reason in ("Breach", "TrainingStarted", "TrainingSucceeded", "Validated", "Promoted"):
        assert world.events(reason), f"no {reason} Event"

    training = log.reasons("Training")
    assert training.index("Started") < training.index("Running"), training
    progressing = log.reasons("Progressing")
    assert progressing.index("RolloutStarted") < progressing.index("Promoted"), progressing
    assert log.reasons("Healthy")[-2:] == ["Breach", "AllPass"], log.reasons("Healthy")
    assert log.steps()[-2:] == [(0, 10), (1, 50)], log.steps()
    wait_for(lambda: world.canary_weights()[-1] == 100, 30, "the data plane follows")
    weights = world.canary_weights()
    assert forward_only(weights), weights
    assert [w for w in weights if w] == [10, 50, 100], weights
    wait_for(lambda: not kube.get(resource, namespace, TRAINING), 30, f"the {kind} deleted")
