"""The demo's stand-ins for a kubelet (localcluster/demo/pods.py), made to outlast API
server restarts: every poll that fails to reach the API server is retried on the next
tick, and a training pod's result, once its process ran, is written until it lands (the
process never runs twice). Model servers of versions that stopped serving are stopped, so
a long run does not accumulate them.
"""

import threading
from collections.abc import Callable
from pathlib import Path

import urllib3
from localcluster.demo.pods import LABEL_TRAINING, Exit, run_container
from localcluster.kubelet import PODS, finish_pod
from localcluster.modelserver import ModelServer

from modelloop.api.resources import MODEL_VERSIONS
from modelloop.kube.rest import Kube, KubeError

UNREACHABLE = (KubeError, urllib3.exceptions.HTTPError, OSError)
DONE = ("Rejected", "RolledBack", "Retired")  # a version in these phases serves no more


class Poller:
    """Calls ``poll`` every ``interval`` seconds in a thread; an unreachable API server is
    retried, any other error stops the poller and is kept in ``failure``."""

    def __init__(self, name: str, poll: Callable[[], None], interval: float = 0.5) -> None:
        self._poll, self._interval = poll, interval
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.failure: BaseException | None = None

    def start(self) -> "Poller":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stopping.wait(self._interval):
            try:
                self._poll()
            except UNREACHABLE:
                continue
            except BaseException as error:
                self.failure = error
                return


class TrainingKubelet:
    """Runs each training pod kwok leaves Running as a local process, once, then writes its
    phase and termination message in one status write (localcluster.kubelet)."""

    def __init__(self, kube: Kube, namespace: str, logs: Path) -> None:
        self.kube, self.namespace, self.logs = kube, namespace, logs
        self.ran: dict[str, Exit] = {}  # pod name -> how its process ended
        self.finished: set[str] = set()

    def poll(self) -> None:
        for pod in self.kube.list(PODS, self.namespace, LABEL_TRAINING):
            name = pod["metadata"]["name"]
            if name in self.finished or (pod.get("status") or {}).get("phase") != "Running":
                continue
            if name not in self.ran:
                [container] = pod["spec"]["containers"]
                self.ran[name] = run_container(container, self.logs, name)
            done = self.ran[name]
            finish_pod(self.kube, self.namespace, name, done.message, done.code)
            self.finished.add(name)


class VersionServers:
    """A model server per ModelVersion whose artifact exists, in place of its Deployment's
    pods; stopped once the version is gone or done and no route sends it traffic."""

    def __init__(
        self,
        kube: Kube,
        namespace: str,
        workdir: Path,
        routed: Callable[[], set[str]],
        on_change: Callable[[dict[str, ModelServer]], None],
    ) -> None:
        self.kube, self.namespace, self.workdir = kube, namespace, workdir
        self.routed, self.on_change = routed, on_change
        self.servers: dict[str, ModelServer] = {}

    def poll(self) -> None:
        versions = {
            v["metadata"]["name"]: v for v in self.kube.list(MODEL_VERSIONS, self.namespace)
        }
        changed = False
        for name, version in versions.items():
            artifact = Path(version["spec"]["uri"].removeprefix("file://"))
            phase = (version.get("status") or {}).get("phase")
            if name in self.servers or phase in DONE or not (artifact / "model.npz").exists():
                continue
            self.servers[name] = ModelServer(
                self.workdir, version["spec"]["model"], name, artifact=artifact
            )
            changed = True
        routed = self.routed()
        for name in list(self.servers):
            phase = (versions.get(name, {}).get("status") or {}).get("phase")
            if (name not in versions or phase in DONE) and name not in routed:
                self.servers.pop(name).stop()
                changed = True
        if changed:
            self.on_change(dict(self.servers))

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()
