"""Training workloads (retraining.workloads): each kind's outcome rule, its failure in its
controller's words, the manifest with ModelLoop's env and labels at the preset's paths,
who runs the trainer, and the result ConfigMap's least-privilege Role."""

from typing import Any

import pytest
from tests.unit.retraining.worlds import NOW, record, spec, world

from modelloop.api.model import Workload
from modelloop.retraining.decide import Adopt, JobView, decide
from modelloop.retraining.jobs import record_of_job, training_env, training_metadata
from modelloop.retraining.workloads import (
    JOB,
    PRESETS,
    Kind,
    build_workload,
    kind_of,
    outcome,
    result_binding,
    result_configmap,
    result_role,
    service_accounts,
    why_failed,
)

MODEL = {"metadata": {"name": "fd", "namespace": "ml", "uid": "u-1"}}
RAYJOB = {
    "apiVersion": "ray.io/v1",
    "kind": "RayJob",
    "preset": "rayJob",
    "template": {
        "metadata": {"labels": {"team": "risk"}},
        "spec": {
            "entrypoint": "python train.py",
            "rayClusterSpec": {
                "headGroupSpec": {
                    "template": {
                        "spec": {
                            "serviceAccountName": "ray-head",
                            "containers": [
                                {"name": "head", "image": "t", "env": [{"name": "X", "value": "1"}]}
                            ],
                        }
                    }
                },
                "workerGroupSpecs": [
                    {"template": {"spec": {"containers": [{"name": "w", "image": "t"}]}}},
                    {"template": {"spec": {"containers": [{"name": "g", "image": "t"}]}}},
                ],
            },
            "submitterPodTemplate": {"spec": {"containers": [{"name": "s", "image": "t"}]}},
        },
    },
}
TRAINJOB = {
    "apiVersion": "trainer.kubeflow.org/v1alpha1",
    "kind": "TrainJob",
    "preset": "trainJob",
    "template": {"spec": {"runtimeRef": {"name": "torch-distributed"}}},
}
PYTORCHJOB = {
    "apiVersion": "kubeflow.org/v1",
    "kind": "PyTorchJob",
    "preset": "pyTorchJob",
    "template": {
        "spec": {
            "pytorchReplicaSpecs": {
                role: {"template": {"spec": {"containers": [{"name": "pytorch", "image": "t"}]}}}
                for role in ("Master", "Worker")
            }
        }
    },
}
CUSTOM = {
    "apiVersion": "example.com/v1",
    "kind": "Training",
    "success": {"condition": "Succeeded"},
    "failure": {"field": "status.phase", "values": ["Failed", "Lost"]},
    "template": {"spec": {"stages": [{"pod": {"containers": [{"name": "a", "image": "t"}]}}]}},
}


def obj(kind: str, **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "fd-train-2"}, "kind": kind, "status": status}


def conditions(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"type": t, "status": s, "reason": f"{t}Reason", "message": "m"} for t, s in pairs]


def ray(deployment: str, job: str, **more: str) -> dict[str, Any]:
    return obj("RayJob", jobDeploymentStatus=deployment, jobStatus=job, **more)


@pytest.mark.parametrize(
    ("kind", "body", "expected"),
    [
        (JOB, obj("Job"), None),
        (JOB, obj("Job", conditions=conditions(("Complete", "True"))), "Complete"),
        (JOB, obj("Job", conditions=conditions(("Failed", "True"))), "Failed"),
        (PRESETS["trainJob"], obj("TrainJob", conditions=conditions(("Suspended", "True"))), None),
        (
            PRESETS["trainJob"],
            obj("TrainJob", conditions=conditions(("Complete", "True"))),
            "Complete",
        ),
        (PRESETS["trainJob"], obj("TrainJob", conditions=conditions(("Failed", "True"))), "Failed"),
        (
            PRESETS["pyTorchJob"],
            obj("PyTorchJob", conditions=conditions(("Running", "True"))),
            None,
        ),
        (
            PRESETS["pyTorchJob"],
            obj("PyTorchJob", conditions=conditions(("Succeeded", "False"))),
            None,
        ),
        (
            PRESETS["pyTorchJob"],
            obj("PyTorchJob", conditions=conditions(("Running", "False"), ("Succeeded", "True"))),
            "Complete",
        ),
        (
            PRESETS["pyTorchJob"],
            obj("PyTorchJob", conditions=conditions(("Failed", "True"))),
            "Failed",
        ),
        # RayJob: KubeRay's deployment verdict decides when; the Ray job's status what.
        (PRESETS["rayJob"], ray("", ""), None),
        (PRESETS["rayJob"], ray("Running", "RUNNING"), None),
        (PRESETS["rayJob"], ray("Running", "SUCCEEDED"), None),  # the submitter still runs
        (PRESETS["rayJob"], ray("Running", "FAILED"), None),  # kuberay#3553: KubeRay decides
        (PRESETS["rayJob"], ray("Retrying", "FAILED"), None),  # backoffLimit: another attempt
        (PRESETS["rayJob"], ray("Suspended", ""), None),
        (PRESETS["rayJob"], ray("Complete", "SUCCEEDED"), "Complete"),
        (PRESETS["rayJob"], ray("Complete", "STOPPED"), "Failed"),
        (PRESETS["rayJob"], ray("Failed", "FAILED"), "Failed"),
        (PRESETS["rayJob"], ray("Failed", "RUNNING"), "Failed"),  # kuberay#2314
        (PRESETS["rayJob"], ray("Failed", "SUCCEEDED"), "Failed"),
        (PRESETS["rayJob"], ray("ValidationFailed", ""), "Failed"),
    ],
)
def test_each_kind_reads_its_outcome(
    kind: Kind, body: dict[str, Any], expected: str | None
) -> None:
    assert outcome(kind, body) == expected


def custom_kind() -> Kind:
    retraining = spec(retraining={"job": None, "workload": CUSTOM}).retraining
    assert retraining is not None
    return kind_of(retraining)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (obj("Training", phase="Running"), None),
        (obj("Training", phase="Lost"), "Failed"),
        (obj("Training", conditions=conditions(("Succeeded", "True"))), "Complete"),
        # Both hold: failed (no ModelVersion from an ambiguous outcome).
        (obj("Training", phase="Failed", conditions=conditions(("Succeeded", "True"))), "Failed"),
    ],
)
def test_declared_rules_read_a_condition_or_a_field_failure_first(
    body: dict[str, Any], expected: str | None
) -> None:
    assert outcome(custom_kind(), body) == expected


@pytest.mark.parametrize(
    ("kind", "body", "expected"),
    [
        (JOB, obj("Job"), "Job fd-train-2 failed"),
        (
            JOB,
            obj("Job", conditions=conditions(("Failed", "True"))),
            "Job fd-train-2 failed: FailedReason: m",
        ),
        (
            PRESETS["trainJob"],
            obj("TrainJob", conditions=conditions(("Complete", "False"), ("Failed", "True"))),
            "TrainJob fd-train-2 failed: FailedReason: m",
        ),
        (
            PRESETS["rayJob"],
            ray("Failed", "RUNNING", reason="SubmissionFailed", message="BackoffLimitExceeded"),
            "RayJob fd-train-2 failed: jobDeploymentStatus Failed, jobStatus RUNNING "
            "(SubmissionFailed: BackoffLimitExceeded)",
        ),
        (
            PRESETS["rayJob"],
            ray("Complete", "STOPPED"),
            "RayJob fd-train-2 failed: jobDeploymentStatus Complete, jobStatus STOPPED",
        ),
    ],
)
def test_a_failure_is_told_in_its_controllers_words(
    kind: Kind, body: dict[str, Any], expected: str
) -> None:
    assert why_failed(kind, body) == expected


def test_a_custom_failure_names_the_field_it_read() -> None:
    assert why_failed(custom_kind(), obj("Training", phase="Lost")) == (
        "Training fd-train-2 failed: phase Lost"
    )


def built(workload: dict[str, Any]) -> tuple[Workload, dict[str, Any]]:
    model_spec = spec(retraining={"job": None, "workload": workload})
    assert model_spec.retraining is not None
    assert model_spec.retraining.workload is not None
    trained = record(2, NOW)
    env = training_env(MODEL, model_spec, trained, "fd-v1", [])
    template = model_spec.retraining.workload.template
    meta = training_metadata(MODEL, model_spec, trained, "fd-v1", template.get("metadata") or {})
    kind = kind_of(model_spec.retraining)
    return model_spec.retraining.workload, build_workload(
        kind, model_spec.retraining.workload, meta, env
    )


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env") or []}


def test_a_rayjob_gets_the_env_on_its_head_and_workers_and_the_labels_on_their_pods() -> None:
    workload, job = built(RAYJOB)
    cluster = job["spec"]["rayClusterSpec"]
    pods = [
        cluster["headGroupSpec"]["template"],
        *(g["template"] for g in cluster["workerGroupSpecs"]),
    ]
    for pod in pods:
        env = env_of(pod["spec"]["containers"][0])
        assert env["MODELLOOP_RESULT_CONFIGMAP"] == "fd-train-2-result"
        assert env["MODELLOOP_OUTPUT_URI"] == "s3://m/fd/2"
        assert pod["metadata"]["labels"]["modelloop.dev/training"] == "2"
    assert env_of(cluster["headGroupSpec"]["template"]["spec"]["containers"][0])["X"] == "1"
    assert "env" not in job["spec"]["submitterPodTemplate"]["spec"]["containers"][0]
    assert (job["apiVersion"], job["kind"], job["metadata"]["name"]) == (
        "ray.io/v1",
        "RayJob",
        "fd-train-2",
    )
    assert job["metadata"]["labels"]["team"] == "risk"
    assert (
        "env"
        not in workload.template["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["template"][
            "spec"
        ]["containers"][0]
    )


def test_a_trainjob_gets_the_env_on_its_trainer_even_when_the_runtime_names_it() -> None:
    _, job = built(TRAINJOB)
    assert env_of(job["spec"]["trainer"])["MODELLOOP_RESULT_CONFIGMAP"] == "fd-train-2-result"


def test_a_pytorchjob_gets_the_env_on_every_replica() -> None:
    _, job = built(PYTORCHJOB)
    for role in ("Master", "Worker"):
        replica = job["spec"]["pytorchReplicaSpecs"][role]["template"]
        assert env_of(replica["spec"]["containers"][0])["MODELLOOP_MODEL"] == "fd"
        assert replica["metadata"]["labels"]["modelloop.dev/model"] == "fd"


def test_a_kind_without_preset_gets_the_env_on_every_containers_list() -> None:
    _, job = built(CUSTOM)
    container = job["spec"]["stages"][0]["pod"]["containers"][0]
    assert env_of(container)["MODELLOOP_RESULT_CONFIGMAP"] == "fd-train-2-result"


def test_a_workload_found_without_status_is_adopted_like_a_job() -> None:
    _, job = built(RAYJOB)
    assert record_of_job(job) == record(2, NOW)
    decision = decide(world(jobs=[JobView(job, None)]))
    assert isinstance(decision, Adopt)
    assert (decision.record.sequence, decision.next_sequence) == (2, 3)


@pytest.mark.parametrize(
    ("workload", "expected"),
    [
        (RAYJOB, ["ray-head"]),
        (RAYJOB | {"serviceAccountName": "trainer"}, ["trainer"]),
        (PYTORCHJOB, ["default"]),
        (
            TRAINJOB
            | {
                "template": {
                    "spec": {
                        "podSpecOverrides": [
                            {"targetJobs": [{"name": "node"}], "serviceAccountName": "t"}
                        ]
                    }
                }
            },
            ["t"],
        ),
        (
            CUSTOM
            | {
                "template": {
                    "spec": {"a": {"serviceAccountName": "x"}, "b": [{"serviceAccountName": "y"}]}
                }
            },
            ["x", "y"],
        ),
    ],
)
def test_the_result_is_granted_to_the_accounts_the_trainer_runs_as(
    workload: dict[str, Any], expected: list[str]
) -> None:
    model_spec = spec(retraining={"job": None, "workload": workload})
    assert model_spec.retraining is not None
    assert model_spec.retraining.workload is not None
    typed = model_spec.retraining.workload
    assert service_accounts(kind_of(model_spec.retraining), typed, typed.template) == expected


def test_the_result_configmap_is_writable_by_those_accounts_only() -> None:
    configmap = result_configmap(MODEL, "fd-train-2", 2)
    assert configmap["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    configmap["metadata"]["uid"] = "u-cm"
    role, binding = result_role(configmap), result_binding(configmap, ["trainer"])
    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": ["fd-train-2-result"],
            "verbs": ["get", "update"],
        }
    ]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "trainer", "namespace": "ml"}]
    for made in (role, binding):
        assert made["metadata"]["ownerReferences"] == [
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "fd-train-2-result", "uid": "u-cm"}
        ]


def test_a_job_template_keeps_making_a_job() -> None:
    retraining = spec().retraining
    assert retraining is not None
    assert kind_of(retraining) is JOB
