"""The controllers of Kubeflow Trainer (TrainJob), Kubeflow's training operator
(PyTorchJob) and KubeRay (RayJob), played openly by the harness; the operator does not
know.

For each new workload in a namespace, the one process that reports a training's result
runs as a local process, as localcluster/demo/pods.py runs a Job's pod: a TrainJob's
trainer (spec.trainer), a PyTorchJob's Master, a RayJob's entrypoint with its head
container's env (a Ray job's driver runs on the head). It gets what its pod would: the
container's env, the token of the ServiceAccount the pod runs as (from the TokenRequest
API) and the API server's address, so ``modelloop.sdk.report`` writes the result
ConfigMap with exactly the rights the operator granted. Then the workload's status is set
as its controller sets it: TrainJob's condition Complete or Failed (copied from its
JobSet), PyTorchJob's Succeeded or Failed, RayJob's jobDeploymentStatus and jobStatus —
or, for a RayJob, the statuses a test asks for (``ray_status``), e.g. the disagreeing
ones of ray-project/kuberay#2314.
"""

import base64
import shlex
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from localcluster.controlplane import Identity
from localcluster.demo.pods import Exit, Poller, run_container
from localcluster.waiting import wait_for

from modelloop.kube.rest import KubeError, Obj, Resource

TRAINJOBS = Resource("trainer.kubeflow.org", "v1alpha1", "trainjobs")
PYTORCHJOBS = Resource("kubeflow.org", "v1", "pytorchjobs")
RAYJOBS = Resource("ray.io", "v1", "rayjobs")
TRAINER_IMAGE = "ghcr.io/modelloop-examples/trainer:0.1"  # examples/trainer, run locally
StatusOf = Callable[[Exit], dict[str, Any]]  # what a controller writes after the run


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _account(spec: Obj | None) -> str:
    return str((spec or {}).get("serviceAccountName") or "default")


def trainjob_driver(job: Obj) -> tuple[Obj, str]:
    """The trainer container (spec.trainer merged into the runtime's; the tests' runtime
    adds nothing) and its ServiceAccount."""
    overrides = job["spec"].get("podSpecOverrides") or [{}]
    return dict(job["spec"].get("trainer") or {}), _account(overrides[0])


def pytorchjob_driver(job: Obj) -> tuple[Obj, str]:
    """The Master's first container: rank 0."""
    pod = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]
    return dict(pod["containers"][0]), _account(pod)


def rayjob_driver(job: Obj) -> tuple[Obj, str]:
    """The entrypoint, run with the head container's env and image."""
    pod = job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    head = pod["containers"][0]
    command = shlex.split(job["spec"]["entrypoint"])
    return {"image": head["image"], "command": command, "env": head.get("env") or []}, _account(pod)


def trainjob_status(done: Exit) -> Obj:
    kind, reason, message = (
        ("Complete", "AllJobsCompleted", "jobset completed successfully")
        if done.code == 0
        else ("Failed", "FailedJobs", "jobset failed due to one or more job failures")
    )
    return {
        "conditions": [
            {
                "type": kind,
                "status": "True",
                "reason": reason,
                "message": message,
                "lastTransitionTime": now(),
            }
        ]
    }


def pytorchjob_status(done: Exit) -> Obj:
    kind, reason = (
        ("Succeeded", "PyTorchJobSucceeded") if done.code == 0 else ("Failed", "PyTorchJobFailed")
    )
    return {
        "conditions": [
            {"type": kind, "status": "True", "reason": reason, "message": done.output[-200:]}
        ],
        "replicaStatuses": {"Master": {"succeeded" if done.code == 0 else "failed": 1}},
    }


def rayjob_status(done: Exit) -> Obj:
    succeeded = done.code == 0
    return {
        "jobDeploymentStatus": "Complete" if succeeded else "Failed",
        "jobStatus": "SUCCEEDED" if succeeded else "FAILED",
        "reason": "" if succeeded else "AppFailed",
        "message": "Job finished successfully." if succeeded else done.message[-200:],
    }


KINDS: dict[Resource, tuple[Callable[[Obj], tuple[Obj, str]], StatusOf]] = {
    TRAINJOBS: (trainjob_driver, trainjob_status),
    PYTORCHJOBS: (pytorchjob_driver, pytorchjob_status),
    RAYJOBS: (rayjob_driver, rayjob_status),
}


class TrainingControllers:
    """Plays the three controllers in ``namespace`` until stopped; ``runs`` holds each
    workload's exit. ``held``: run nothing until ``release()``."""

    def __init__(
        self,
        admin: Identity,
        namespace: str,
        workdir: Path,
        ray_status: StatusOf = rayjob_status,
        held: bool = False,
    ) -> None:
        self.kube, self.namespace, self.workdir = admin.kube(), namespace, workdir
        self.statuses = {**{r: s for r, (_, s) in KINDS.items()}, RAYJOBS: ray_status}
        self.runs: dict[str, Exit] = {}
        self._released = threading.Event()
        if not held:
            self._released.set()
        self._server, self._ca = _cluster(admin.kubeconfig)
        self.poller = Poller(self.poll, lambda *_: None)
        self.poller.start()

    def release(self) -> None:
        self._released.set()

    def stop(self) -> None:
        self.poller.stop()
        self.kube.close()
        if self.poller.failure is not None:
            raise self.poller.failure

    def poll(self) -> None:
        if not self._released.is_set():
            return
        for resource, (driver, _) in KINDS.items():
            for job in self.kube.list(resource, self.namespace):
                name = f"{resource.plural}/{job['metadata']['name']}"
                if name not in self.runs and not job.get("status"):
                    self.runs[name] = self._run(job, *driver(job))
                    status = self.statuses[resource](self.runs[name])
                    self.kube.merge_patch(
                        resource,
                        self.namespace,
                        job["metadata"]["name"],
                        {"status": status},
                        sub="status",
                    )

    def _run(self, job: Obj, container: Obj, account: str) -> Exit:
        directory = self.workdir / f"sa-{account}"
        directory.mkdir(exist_ok=True)
        (directory / "token").write_text(self._token(account))
        (directory / "ca.crt").write_bytes(self._ca)
        host, port = self._server
        env = [
            *(container.get("env") or []),
            {"name": "KUBERNETES_SERVICE_HOST", "value": host},
            {"name": "KUBERNETES_SERVICE_PORT", "value": str(port)},
            {"name": "MODELLOOP_SERVICE_ACCOUNT_DIR", "value": str(directory)},
        ]
        return run_container({**container, "env": env}, self.workdir, job["metadata"]["name"])

    def _token(self, account: str) -> str:
        path = f"/api/v1/namespaces/{self.namespace}/serviceaccounts/{account}/token"
        request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}

        def token() -> str | None:
            try:
                return str(self.kube.request("POST", path, body=request)["status"]["token"])
            except KubeError as error:
                if error.not_found:  # the ServiceAccount controller has not made it yet
                    return None
                raise

        return str(wait_for(token, 30, f"a token for ServiceAccount {account}"))


def _cluster(kubeconfig: Path) -> tuple[tuple[str, int], bytes]:
    """The API server's host and port, and its CA, as a pod would find them."""
    config = yaml.safe_load(kubeconfig.read_text())
    cluster = config["clusters"][0]["cluster"]
    server = urlsplit(cluster["server"])
    if "certificate-authority-data" in cluster:
        ca = base64.b64decode(cluster["certificate-authority-data"])
    else:
        ca = Path(cluster["certificate-authority"]).read_bytes()
    return (server.hostname or "", server.port or 443), ca


def trainjob(command: list[str] | None = None, account: str | None = None) -> Obj:
    """``spec.retraining.workload`` as a TrainJob of two nodes, its trainer running
    ``command`` (else the image's own), as ``account``'s ServiceAccount when given."""
    spec: Obj = {
        "runtimeRef": {"name": "torch-distributed"},
        "trainer": {
            "image": TRAINER_IMAGE,
            "numNodes": 2,
            **({"command": command} if command else {}),
        },
    }
    if account is not None:
        spec["podSpecOverrides"] = [
            {"targetJobs": [{"name": "node"}], "serviceAccountName": account}
        ]
    return {
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "TrainJob",
        "preset": "trainJob",
        "template": {"spec": spec},
    }


def rayjob(entrypoint: str) -> Obj:
    """``spec.retraining.workload`` as a RayJob running ``entrypoint`` on a head and two
    workers."""

    def group(name: str) -> Obj:
        return {"template": {"spec": {"containers": [{"name": name, "image": TRAINER_IMAGE}]}}}

    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayJob",
        "preset": "rayJob",
        "template": {
            "spec": {
                "entrypoint": entrypoint,
                "rayClusterSpec": {
                    "headGroupSpec": {"rayStartParams": {}, **group("head")},
                    "workerGroupSpecs": [
                        {
                            "groupName": "workers",
                            "minReplicas": 2,
                            "maxReplicas": 2,
                            **group("worker"),
                        }
                    ],
                },
            }
        },
    }
