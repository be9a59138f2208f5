"""What a kubelet would do for a training pod, played by the harness: finish it in
ONE status write — phase and the container's termination message together — so
the operator can never read a finished pod without its result. (kwok's Stages
leave pods labelled modelloop.dev/training Running for this.)"""

from datetime import UTC, datetime
from typing import Any

from localcluster.waiting import wait_for
from modelloop.kube.rest import Kube, Resource

PODS = Resource("", "v1", "pods")
# spec.retraining.job of the tests' Models: a pod the harness finishes (kwok leaves it).
TRAINING_JOB: dict[str, Any] = {
    "spec": {
        "backoffLimit": 0,
        "template": {
            "spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "trainer", "image": "ghcr.io/example/trainer:1"}],
            }
        },
    }
}


def finish_running_training(kube: Kube, namespace: str, message: str, timeout: float) -> None:
    """Wait for a training pod Running (kwok leaves it for the harness) and finish it."""
    pod = wait_for(
        lambda: [
            p
            for p in kube.list(PODS, namespace, "modelloop.dev/training")
            if p["status"].get("phase") == "Running"
        ],
        timeout,
        "the training pod Running",
    )[0]
    finish_pod(kube, namespace, pod["metadata"]["name"], message)


def finish_pod(kube: Kube, namespace: str, name: str, message: str, exit_code: int = 0) -> None:
    pod = kube.get(PODS, namespace, name)
    assert pod is not None, f"pod {name} not found"
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    terminated = {
        "exitCode": exit_code,
        "reason": "Completed" if exit_code == 0 else "Error",
        "message": message,
        "startedAt": now,
        "finishedAt": now,
    }
    statuses: list[dict[str, Any]] = [
        {
            "name": c["name"],
            "image": c["image"],
            "imageID": "",
            "ready": False,
            "restartCount": 0,
            "started": False,
            "state": {"terminated": terminated},
        }
        for c in pod["spec"]["containers"]
    ]
    conditions = [
        {"type": t, "status": s, "lastTransitionTime": now}
        for t, s in (
            ("PodScheduled", "True"),
            ("Initialized", "True"),
            ("ContainersReady", "False"),
            ("Ready", "False"),
        )
    ]
    kube.merge_patch(
        PODS,
        namespace,
        name,
        {
            "status": {
                "phase": "Succeeded" if exit_code == 0 else "Failed",
                "containerStatuses": statuses,
                "conditions": conditions,
            }
        },
        sub="status",
    )
