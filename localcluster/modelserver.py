"""A model version's server, played by the harness: a real HTTP process per version.

``python -m localcluster.modelserver --port P --model M --version V --state STATE.json``
answers ``POST /predict`` with ``{"slice": "mobile", "label_delay": 2.5}`` (the delay is
optional) by ``{"version": V, "correct": true}``, where ``correct`` is drawn with the
accuracy the state file gives for the slice. There is no model: the test decides how good
each version is per slice, and can change it mid-test by rewriting the state file (it is
re-read when it changes)::

    {"accuracy": {"mobile": 0.95, "web": 0.9}, "default": 0.9, "seed": 7}

With ``--artifact DIR`` instead of ``--state`` it serves a real model: the churn example's
logistic regression (examples/trainer/churn.py) from ``DIR/model.npz``, as the example
trainer wrote it. A request then carries the example and its ground truth,
``{"slice": "mobile", "features": [0.3, -1.2], "label": 1}``; the answer's ``correct``
says whether the model's prediction (churn probability >= 0.5) matched the label.

``GET /metrics`` exports labelled feedback as the operator's queries expect it:
``model_predictions_total`` and ``model_correct_predictions_total`` by model, version and
slice, and the histogram ``model_prediction_score`` (the drawn or predicted scores) for
drift checks. A prediction counts once its ground truth arrives: at once, or
``label_delay`` seconds later, which is how label delay looks in production.
``GET /healthz`` says ok.
"""

import argparse
import heapq
import itertools
import json
import random
import sys
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import numpy as np
from examples.trainer.churn import SLICES, scores
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

from localcluster.exporter import write_state
from localcluster.processes import Process, free_port, wait_healthy


class _Judge(Protocol):
    """Decides whether a request's prediction was right, and its score."""

    def slices(self) -> list[str]: ...

    def judge(self, slice_: str, request: dict[str, Any]) -> tuple[bool, float]: ...


class _Accuracy:
    """The state file's accuracy per slice, re-read when the file is replaced, and the draws.

    The generator is seeded once, from the seed and the version, so two versions given the
    same state do not draw the same sequence, and a run's draws repeat.
    """

    def __init__(self, path: Path, model: str, version: str) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._state: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._reload()
        self._rng = random.Random(f"{self._state.get('seed', 0)}/{model}/{version}")

    def _reload(self) -> None:
        stat = self.path.stat()
        stamp = (stat.st_ino, stat.st_mtime_ns)  # write_state replaces the file: a new inode
        if stamp != self._stamp:
            self._stamp, self._state = stamp, json.loads(self.path.read_text())

    def slices(self) -> list[str]:
        with self._lock:
            return list(self._state["accuracy"])

    def judge(self, slice_: str, request: dict[str, Any]) -> tuple[bool, float]:
        """Right with the slice's accuracy; the score is uniform on [0, 1)."""
        with self._lock:
            self._reload()
            accuracy = float(self._state["accuracy"].get(slice_, self._state["default"]))
            return self._rng.random() < accuracy, self._rng.random()


class _ChurnModel:
    """The example trainer's model, loaded from its artifact directory."""

    def __init__(self, artifact: Path) -> None:
        self.weights = np.load(artifact / "model.npz")["weights"]

    def slices(self) -> list[str]:
        return list(SLICES)

    def judge(self, slice_: str, request: dict[str, Any]) -> tuple[bool, float]:
        features = np.array([request["features"]], dtype=np.float64)
        if features.shape != (1, 2) or slice_ not in SLICES:
            raise ValueError(f"want 2 features and a slice of {SLICES}")
        score = float(scores(self.weights, features, np.array([SLICES.index(slice_)]))[0])
        return (score >= 0.5) == (int(request["label"]) == 1), score


class _Feedback:
    """Counts each prediction when its label arrives: now, or after its label delay.

    Delayed labels wait in one heap served by one thread, not a timer thread each, so a long
    delay at 100 req/s stays cheap.
    """

    def __init__(self, registry: CollectorRegistry, model: str, version: str) -> None:
        names = ["model", "version", "slice"]
        self.predictions = Counter(
            "model_predictions_total", "Predictions whose label arrived", names, registry=registry
        )
        self.correct = Counter(
            "model_correct_predictions_total",
            "Predictions whose label arrived and matched",
            names,
            registry=registry,
        )
        self.scores = Histogram(
            "model_prediction_score",
            "Scores of the predictions made",
            names,
            buckets=[i / 10 for i in range(1, 10)],
            registry=registry,
        )
        self.model, self.version = model, version
        self._pending: list[tuple[float, int, str, bool]] = []
        self._order = itertools.count()  # ties on the due time never compare the rest
        self._wake = threading.Condition()
        threading.Thread(target=self._deliver, name="labels", daemon=True).start()

    def zero(self, slice_: str) -> None:
        """Export a slice's series before its first label, so increase() sees it from zero."""
        self.predictions.labels(self.model, self.version, slice_)
        self.correct.labels(self.model, self.version, slice_)

    def record(self, slice_: str, correct: bool, delay: float) -> None:
        if delay <= 0:
            self._count(slice_, correct)
            return
        with self._wake:
            entry = (time.monotonic() + delay, next(self._order), slice_, correct)
            heapq.heappush(self._pending, entry)
            self._wake.notify()

    def _count(self, slice_: str, correct: bool) -> None:
        self.predictions.labels(self.model, self.version, slice_).inc()
        if correct:
            self.correct.labels(self.model, self.version, slice_).inc()

    def _deliver(self) -> None:
        while True:
            with self._wake:
                while not self._pending or self._pending[0][0] > time.monotonic():
                    due = self._pending[0][0] - time.monotonic() if self._pending else None
                    self._wake.wait(due)
                _, _, slice_, correct = heapq.heappop(self._pending)
            self._count(slice_, correct)


def _handler(
    version: str, judge: _Judge, feedback: _Feedback, registry: CollectorRegistry
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the traffic generator reuses connections
        disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms ACK wait

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path == "/metrics":
                self._reply(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                self._reply(200, b"ok\n")
            else:
                self._reply(404, b"not found\n")

        def do_POST(self) -> None:
            if urlsplit(self.path).path != "/predict":
                self._reply(404, b"not found\n")
                return
            try:
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                slice_, delay = str(request["slice"]), float(request.get("label_delay", 0))
                correct, score = judge.judge(slice_, request)
            except (TypeError, ValueError, KeyError) as error:
                self._reply(400, f"bad request: {error!r}\n".encode())
                return
            feedback.scores.labels(feedback.model, feedback.version, slice_).observe(score)
            feedback.record(slice_, correct, delay)
            answer = json.dumps({"version": version, "correct": correct}).encode()
            self._reply(200, answer, "application/json")

        def _reply(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            """Silent: a line per request would flood the log; errors are still logged."""

    return Handler


class ModelServer:
    """One version's model server as a child process of the test, on its own port."""

    def __init__(
        self,
        workdir: Path,
        model: str,
        version: str,
        accuracy: Mapping[str, float] | None = None,
        default: float = 0.9,
        seed: int = 7,
        *,
        artifact: Path | None = None,
    ) -> None:
        """``accuracy``: slice -> probability of a correct answer; ``default`` for the rest.
        With ``artifact`` instead, the server scores requests with that trained model."""
        assert (accuracy is None) != (artifact is None), "give accuracy or an artifact"
        self.model, self.version, self.seed = model, version, seed
        self.state_file = workdir / f"modelserver-{model}-{version}.json"
        if accuracy is not None:
            self.set_accuracy(accuracy, default)
            judged_by = ("--state", str(self.state_file))
        else:
            judged_by = ("--artifact", str(artifact))
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.address}"
        argv = [
            sys.executable,
            "-m",
            "localcluster.modelserver",
            *("--port", str(self.port), "--model", model, "--version", version),
            *judged_by,
        ]
        self.process = Process(
            f"modelserver-{model}-{version}", argv, workdir, cwd=Path(__file__).parents[1]
        )
        try:
            wait_healthy(self.process, f"{self.url}/healthz", 30)
        except BaseException:
            self.process.stop()
            raise

    def set_accuracy(self, accuracy: Mapping[str, float], default: float | None = None) -> None:
        """Change how good this version is from its next request; ``default`` kept if None."""
        if default is None:
            default = json.loads(self.state_file.read_text())["default"]
        write_state(
            self.state_file, {"accuracy": dict(accuracy), "default": default, "seed": self.seed}
        )

    def stop(self) -> None:
        self.process.stop()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m localcluster.modelserver")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--version", required=True)
    judged_by = parser.add_mutually_exclusive_group(required=True)
    judged_by.add_argument("--state", type=Path, help="accuracy per slice, drawn")
    judged_by.add_argument("--artifact", type=Path, help="a churn model's directory")
    args = parser.parse_args(argv)
    registry = CollectorRegistry()
    judge: _Judge = (
        _ChurnModel(args.artifact)
        if args.artifact
        else _Accuracy(args.state, args.model, args.version)
    )
    feedback = _Feedback(registry, args.model, args.version)
    for slice_ in judge.slices():
        feedback.zero(slice_)
    handler = _handler(args.version, judge, feedback, registry)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
