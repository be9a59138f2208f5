"""The pods of the demo's Model, played by the demo harness where a kubelet would run
them (kwok only pretends): training pods become local processes, and each ModelVersion's
serving pods become one model server process on loopback.

Images are local directories here. ``IMAGES`` says which directory and entrypoint an
image stands for; a pod with any other image fails with that reason.
"""

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localcluster.kubelet import PODS, finish_pod
from localcluster.modelserver import ModelServer
from modelloop.api.resources import MODEL_VERSIONS
from modelloop.kube.rest import Kube, KubeError

REPO = Path(__file__).parents[2]
LABEL_TRAINING = "modelloop.dev/training"
Say = Callable[[str, str], object]
"""Tells the demo's timeline what happened: (what, message)."""


@dataclass(frozen=True)
class Image:
    directory: Path
    entrypoint: tuple[str, ...]


IMAGES = {
    "ghcr.io/modelloop-examples/trainer:0.1": Image(
        REPO / "examples" / "trainer", ("python", "train.py")
    ),
}


@dataclass(frozen=True)
class Exit:
    code: int
    message: str  # the termination message: what the container wrote, or why it failed
    output: str  # the last line the container printed
    seconds: float


def command_line(container: Mapping[str, Any], image: Image) -> list[str]:
    """What the container runs: its ``command``, else the image's entrypoint, then ``args``."""
    return [*(container.get("command") or image.entrypoint), *(container.get("args") or [])]


def run_container(container: Mapping[str, Any], logs: Path, name: str) -> Exit:
    """Runs a container of a pod spec as a local process, as a kubelet would run it: the
    image's directory, its command line, the container's env (literal values only), and a
    termination-message file. ``python`` is the demo's own interpreter."""
    image = IMAGES.get(container.get("image", ""))
    if image is None:
        return Exit(1, f"image {container.get('image')} is not available to the demo", "", 0.0)
    unsupported = [e["name"] for e in container.get("env") or [] if "value" not in e]
    if unsupported:
        return Exit(1, f"env from references is not supported here: {unsupported}", "", 0.0)
    argv = command_line(container, image)
    if argv[0] == "python":
        argv[0] = sys.executable
    logs.mkdir(parents=True, exist_ok=True)
    termination = logs / f"{name}.termination-log"
    termination.unlink(missing_ok=True)
    env = {e["name"]: e["value"] for e in container.get("env") or []}
    env["MODELLOOP_TERMINATION_LOG"] = str(termination)  # the kubelet's mount of that file
    started = time.monotonic()
    with (logs / f"{name}.log").open("w") as log:
        completed = subprocess.run(
            argv, cwd=image.directory, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=600
        )
    lines = (logs / f"{name}.log").read_text().strip().splitlines()
    message = termination.read_text()[:4096] if termination.exists() else ""
    return Exit(
        completed.returncode, message, lines[-1] if lines else "", time.monotonic() - started
    )


class Poller:
    """Calls ``poll`` every ``interval`` seconds in a thread until stopped; an API error
    is told once and retried."""

    def __init__(self, poll: Callable[[], None], say: Say, interval: float = 0.5) -> None:
        self._poll, self._say, self._interval = poll, say, interval
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.failure: BaseException | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()

    def _run(self) -> None:
        warned = False
        while not self._stopping.wait(self._interval):
            try:
                self._poll()
                warned = False
            except KubeError as error:
                if not warned:
                    self._say("harness", f"API error, retrying: {error}")
                warned = True
            except BaseException as error:  # reported by the demo's main loop
                self.failure = error
                return


class TrainingPods:
    """Runs each training pod that kwok leaves Running, then finishes it with the
    container's exit status and termination message in one status write."""

    def __init__(self, kube: Kube, namespace: str, logs: Path, say: Say) -> None:
        self.kube, self.namespace, self.logs, self.say = kube, namespace, logs, say
        self.done: dict[str, Exit] = {}
        self.poller = Poller(self.poll, say)

    def poll(self) -> None:
        for pod in self.kube.list(PODS, self.namespace, LABEL_TRAINING):
            name = pod["metadata"]["name"]
            if name in self.done or (pod.get("status") or {}).get("phase") != "Running":
                continue
            containers = pod["spec"]["containers"]
            if len(containers) != 1:
                exit_ = Exit(1, "the demo runs training pods of one container", "", 0.0)
            else:
                container = containers[0]
                image = IMAGES.get(container["image"])
                shown = " ".join(command_line(container, image)) if image else "?"
                self.say("kubelet", f"pod {name}: runs {container['image']}: {shown}")
                exit_ = run_container(container, self.logs, name)
            finish_pod(self.kube, self.namespace, name, exit_.message, exit_.code)
            self.done[name] = exit_
            self.say(
                "kubelet",
                f"pod {name}: exit {exit_.code} after {exit_.seconds:.1f}s; {exit_.output}",
            )


class VersionServers:
    """A model server per ModelVersion whose artifact is a local directory, in place of
    the pods of its Deployment; ``on_start`` learns of each new one. With ``feedback``
    (a URL) each logs its predictions there, the slice as the attribute ``attribute``."""

    def __init__(
        self,
        kube: Kube,
        namespace: str,
        workdir: Path,
        say: Say,
        on_start: Callable[[dict[str, ModelServer]], None],
        feedback: str | None = None,
        attribute: str = "slice",
    ) -> None:
        self.kube, self.namespace, self.workdir, self.say = kube, namespace, workdir, say
        self.on_start = on_start
        self.feedback, self.attribute = feedback, attribute
        self.servers: dict[str, ModelServer] = {}
        self.poller = Poller(self.poll, say, interval=0.2)

    def poll(self) -> None:
        for version in self.kube.list(MODEL_VERSIONS, self.namespace):
            name, spec = version["metadata"]["name"], version["spec"]
            artifact = Path(spec["uri"].removeprefix("file://"))
            if name in self.servers or not (artifact / "model.npz").exists():
                continue
            self.servers[name] = ModelServer(
                self.workdir,
                spec["model"],
                name,
                artifact=artifact,
                feedback=self.feedback,
                attribute=self.attribute,
            )
            logs = f", logging its predictions to {self.feedback}" if self.feedback else ""
            self.say("server", f"{name} serves {artifact} on {self.servers[name].address}{logs}")
            self.on_start(self.servers)

    def stop(self) -> None:
        """Stops the servers (stop the poller first)."""
        for server in self.servers.values():
            server.stop()
