"""A training as a Kubeflow TrainJob or a KubeRay RayJob (spec.retraining.workload), on
the real control plane with their real CRDs (hack/training-crds.sh). The harness plays
their controllers openly (tests/harness/trainers.py): it runs the example trainer as the
workload's reporting process, with the token of the ServiceAccount its pod would run as,
and sets the status the preset reads. The operator watches the preset kinds (by its
managed-by label): it acts on a finished workload at once."""

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from localcluster.controlplane import ControlPlane
from localcluster.demo.pods import Exit, run_container
from localcluster.processes import Process
from localcluster.waiting import wait_for
from tests.harness.admission import deny_operator_writes
from tests.harness.trainers import (
    RAYJOBS,
    TRAINER_IMAGE,
    TRAINJOBS,
    TrainingControllers,
    rayjob,
    trainjob,
)
from tests.harness.world import SERVING_IMAGE, OperatorWorld

from modelloop.api.resources import MODEL_VERSIONS, MODELS
from modelloop.api.vocabulary import GROUP, VERSION
from modelloop.kube.rest import Kube, Resource

MODEL = "churn"
CONFIG_MAPS = Resource("", "v1", "configmaps")
ROLE_BINDINGS = Resource("rbac.authorization.k8s.io", "v1", "rolebindings")
ACCOUNTS = Resource("", "v1", "serviceaccounts")
TRAINJOB = trainjob(account="trainer")
RAYJOB = rayjob("python train.py")


@pytest.fixture
def controllers(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> Iterator[Callable[..., TrainingControllers]]:
    started: list[TrainingControllers] = []

    def start(**options: Any) -> TrainingControllers:
        started.append(TrainingControllers(control_plane.admin, namespace, tmp_path, **options))
        return started[-1]

    yield start
    for played in started:
        played.stop()


def stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def churn_world(
    kube: Kube,
    namespace: str,
    tmp_path: Path,
    operator: Callable[..., Process],
    workload: dict[str, Any],
) -> OperatorWorld:
    """The churn Model training with ``workload``, serving churn-v1: the example trainer
    on the data of two months ago (a champion the drift has made worse on mobile)."""
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "trainer"}}
    kube.create(ACCOUNTS, namespace, account)  # TRAINJOB's trainer runs as it
    end = datetime.now(UTC) - timedelta(days=60)
    first = f"file://{tmp_path}/models/1"
    env = {
        "MODELLOOP_DATA_START": stamp(end - timedelta(days=30)),
        "MODELLOOP_DATA_END": stamp(end),
        "MODELLOOP_OUTPUT_URI": first,
    }
    container = {"image": TRAINER_IMAGE, "env": [{"name": k, "value": v} for k, v in env.items()]}
    assert run_container(container, tmp_path, "train-churn-v1").code == 0
    world = OperatorWorld(kube, namespace, tmp_path, "http://127.0.0.1:9", operator, MODEL)
    metrics = [
        {
            "name": m,
            "query": f'avg(churn_{m}{{version="$version", $slice}})',
            "objective": {"min": 0.6},
        }
        for m in ("auc", "accuracy")
    ]
    spec = {
        "metricsProvider": "test",
        "serving": {"template": {"spec": {"containers": [{"name": "s", "image": SERVING_IMAGE}]}}},
        "automation": "retrain",
        "slices": [{"name": s, "matchLabels": {"channel": s}} for s in ("mobile", "web")],
        "metrics": metrics,
        "retraining": {
            "dataWindow": "30d",
            "outputURI": f"file://{tmp_path}/models",
            "workload": workload,
        },
    }
    model = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Model", "metadata": {"name": MODEL}}
    kube.create(MODELS, namespace, model | {"spec": spec})
    version = {"model": MODEL, "uri": first}
    kube.create(
        MODEL_VERSIONS,
        namespace,
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ModelVersion",
            "metadata": {"name": "churn-v1"},
            "spec": version,
        },
    )
    wait_for(lambda: world.status().get("stableVersion") == "churn-v1", 60, "churn-v1 serving")
    return world


def request_retraining(w: OperatorWorld, reason: str) -> None:
    patch = {"metadata": {"annotations": {"modelloop.dev/retrain": reason}}}
    w.kube.merge_patch(MODELS, w.namespace, MODEL, patch)


def phase(w: OperatorWorld, name: str) -> str | None:
    return ((w.kube.get(MODEL_VERSIONS, w.namespace, name) or {}).get("status") or {}).get("phase")


def history(w: OperatorWorld) -> list[dict[str, Any]]:
    return list((w.status().get("training") or {}).get("history") or [])


def created(kube: Kube, resource: Resource, namespace: str) -> dict[str, Any]:
    """The training's workload, once the operator made it."""
    return wait_for(
        lambda: kube.get(resource, namespace, "churn-train-2") or {}, 60, resource.plural
    )


def trainer_env(job: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in job["spec"]["trainer"]["env"]}


@pytest.mark.usefixtures("training_crds")
def test_a_trainjob_trains_reports_through_its_configmap_and_is_validated(
    kube: Kube,
    namespace: str,
    tmp_path: Path,
    operator: Callable[..., Process],
    controllers: Callable[..., TrainingControllers],
) -> None:
    played = controllers()
    w = churn_world(kube, namespace, tmp_path, operator, TRAINJOB)
    request_retraining(w, "new labels")
    job = created(kube, TRAINJOBS, namespace)
    env = trainer_env(job)
    assert (env["MODELLOOP_RESULT_CONFIGMAP"], env["MODELLOOP_BASE_VERSION"]) == (
        "churn-train-2-result",
        "churn-v1",
    )
    binding = kube.get(ROLE_BINDINGS, namespace, "churn-train-2-result") or {}
    assert [s["name"] for s in binding["subjects"]] == ["trainer"]
    wait_for(lambda: phase(w, "churn-v2") == "Validated", 90, "churn-v2 Validated")
    assert played.runs["trainjobs/churn-train-2"].code == 0
    wait_for(
        lambda: not kube.get(TRAINJOBS, namespace, "churn-train-2"), 30, "the TrainJob deleted"
    )
    wait_for(
        lambda: not kube.get(ROLE_BINDINGS, namespace, "churn-train-2-result"),
        30,
        "its ConfigMap deleted, its RoleBinding with it",
    )
    [record] = history(w)
    assert (record["outcome"], record["version"], record["job"]) == (
        "Succeeded",
        "churn-v2",
        "churn-train-2",
    )


@pytest.mark.usefixtures("training_crds")
def test_a_rayjob_trains_through_its_driver_and_is_validated(
    kube: Kube,
    namespace: str,
    tmp_path: Path,
    operator: Callable[..., Process],
    controllers: Callable[..., TrainingControllers],
) -> None:
    played = controllers()
    w = churn_world(kube, namespace, tmp_path, operator, RAYJOB)
    request_retraining(w, "new labels")
    job = created(kube, RAYJOBS, namespace)
    cluster = job["spec"]["rayClusterSpec"]
    for pod in (cluster["headGroupSpec"]["template"], cluster["workerGroupSpecs"][0]["template"]):
        assert pod["metadata"]["labels"]["modelloop.dev/training"] == "2"
        env = {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}
        assert env["MODELLOOP_RESULT_CONFIGMAP"] == "churn-train-2-result"
    wait_for(lambda: phase(w, "churn-v2") == "Validated", 90, "churn-v2 Validated")
    assert played.runs["rayjobs/churn-train-2"].code == 0
    wait_for(lambda: not kube.get(RAYJOBS, namespace, "churn-train-2"), 30, "the RayJob deleted")


def submission_failed(done: Exit) -> dict[str, Any]:
    """ray-project/kuberay#2314: the deployment failed while the Ray job still runs."""
    return {
        "jobDeploymentStatus": "Failed",
        "jobStatus": "RUNNING",
        "reason": "SubmissionFailed",
        "message": "Job submission has failed. Reason: BackoffLimitExceeded.",
    }


@pytest.mark.usefixtures("training_crds")
def test_a_rayjob_whose_deployment_failed_makes_no_version_whatever_its_driver_wrote(
    kube: Kube,
    namespace: str,
    tmp_path: Path,
    operator: Callable[..., Process],
    controllers: Callable[..., TrainingControllers],
) -> None:
    played = controllers(ray_status=submission_failed)
    w = churn_world(kube, namespace, tmp_path, operator, RAYJOB)
    request_retraining(w, "try")
    wait_for(lambda: history(w), 90, "the training recorded")
    assert played.runs["rayjobs/churn-train-2"].code == 0  # its result is in the ConfigMap
    [record] = history(w)
    assert (record["outcome"], record.get("version")) == ("Failed", None)
    assert record["message"] == (
        "RayJob churn-train-2 failed: jobDeploymentStatus Failed, jobStatus RUNNING "
        "(SubmissionFailed: Job submission has failed. Reason: BackoffLimitExceeded.)"
    )
    assert kube.get(MODEL_VERSIONS, namespace, "churn-v2") is None


def holding(resource: str, operation: str = "CREATE") -> list[dict[str, Any]]:
    """The admission rule of ``group/resource[/subresource]`` (core group: ``/resource``)."""
    group, plural = resource.split("/", 1)
    return [
        {
            "apiGroups": [group],
            "apiVersions": ["*"],
            "resources": [plural],
            "operations": [operation],
        }
    ]


@pytest.mark.usefixtures("training_crds")
def test_a_crash_before_anything_of_the_training_exists_makes_exactly_one_trainjob(
    kube: Kube,
    namespace: str,
    tmp_path: Path,
    operator: Callable[..., Process],
    controllers: Callable[..., TrainingControllers],
    control_plane: ControlPlane,
) -> None:
    """Held at the training's first object, its result ConfigMap: the number reserved."""
    played = controllers()
    message = "crash test: no ConfigMaps"
    with deny_operator_writes(
        control_plane, "deny-configmap-create", holding("/configmaps"), message
    ):
        w = churn_world(kube, namespace, tmp_path, operator, TRAINJOB)
        request_retraining(w, "crash")
        wait_for(lambda: message in w.operator.log_text(), 60, "the denied ConfigMap")
        running = (w.status().get("training") or {})["running"]
        assert (running["sequence"], running["job"]) == (2, "churn-train-2")
        assert kube.get(TRAINJOBS, namespace, "churn-train-2") is None
        w.operator.kill()
    w.start_operator_again()
    wait_for(lambda: phase(w, "churn-v2") == "Validated", 90, "churn-v2 Validated")
    assert list(played.runs) == ["trainjobs/churn-train-2"]
    [record] = history(w)
    assert (record["sequence"], record["version"]) == (2, "churn-v2")


@pytest.mark.usefixtures("training_crds")
def test_a_crash_after_the_version_of_a_finished_trainjob_keeps_one_version(
    kube: Kube,
    namespace: str,
    tmp_path: Path,
    operator: Callable[..., Process],
    controllers: Callable[..., TrainingControllers],
    control_plane: ControlPlane,
) -> None:
    """Held after the TrainJob finished and its ModelVersion was made, at the record in
    status: the TrainJob and its result stay until the record, and after the restart
    there is exactly one version."""
    played = controllers(held=True)
    w = churn_world(kube, namespace, tmp_path, operator, TRAINJOB)
    request_retraining(w, "crash")
    wait_for(lambda: kube.get(TRAINJOBS, namespace, "churn-train-2"), 60, "the TrainJob")
    message = "crash test: the Model's status is frozen"
    rules = holding(f"{GROUP}/models/status", "UPDATE")
    with deny_operator_writes(control_plane, "deny-status", rules, message):
        played.release()
        wait_for(lambda: phase(w, "churn-v2") == "Validated", 90, "churn-v2 Validated")
        wait_for(lambda: message in w.operator.log_text(), 60, "the denied record")
        assert (w.status().get("training") or {})["running"]["sequence"] == 2
        assert kube.get(TRAINJOBS, namespace, "churn-train-2") is not None
        result = kube.get(CONFIG_MAPS, namespace, "churn-train-2-result") or {}
        assert result["data"]["result"].startswith('{"artifactURI":')
        w.operator.kill()
    w.start_operator_again()
    wait_for(lambda: history(w), 90, "the training recorded after the restart")
    wait_for(
        lambda: not kube.get(TRAINJOBS, namespace, "churn-train-2"), 30, "the TrainJob deleted"
    )
    assert list(played.runs) == ["trainjobs/churn-train-2"]
    [record] = history(w)
    assert (record["sequence"], record["version"]) == (2, "churn-v2")
    names = sorted(v["metadata"]["name"] for v in kube.list(MODEL_VERSIONS, namespace))
    assert names == ["churn-v1", "churn-v2"]
