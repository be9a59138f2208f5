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

With ``--feedback URL`` the server also logs each prediction to the feedback service
(``modelloop feedback``) from a thread of its own — a request never waits for it: its
id (the request's ``id``, else a new one, answered as ``id``), model, version, time, the
slice as the attribute ``--attribute`` (e.g. ``region``), the predicted class and the
score. ``--feedback-format json`` posts batches to ``/v1/predictions`` (the SDK's
FeedbackClient); ``kserve`` sends, per prediction, the request and response CloudEvents
KServe's inference logger would send for a v1 InferenceService (``{"instances":
[{attribute: slice}]}``, ``{"predictions": [[1 - score, score]]}``) to ``/v1/kserve``.
Such a request carries the example's truth as ``label`` (0 or 1): the server judges by
it but never logs it; the labels reach the service from whoever knows them (the traffic
generator, ``localcluster.traffic.LabelFeed``). With ``--state``, the server predicts the
true class with the slice's accuracy and scores it calibrated: the score is the
accuracy (at least 0.5) for a predicted 1, one minus it for a 0.
``model_feedback_logged_total{outcome="sent"|"refused"|"dropped"}`` counts the logged
predictions the service took, those it refused or that could not reach it, and those
let go because more than ``MAX_WAITING`` waited to be sent.
"""

import argparse
import heapq
import itertools
import json
import queue
import random
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal, NamedTuple, Protocol
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
from localcluster.feedback import KServeLogger
from localcluster.processes import Process, free_port, wait_healthy
from modelloop.sdk import FeedbackClient, FeedbackError

FeedbackFormat = Literal["json", "kserve"]
BATCH = 500  # predictions logged in one batch at most
FLUSH = 0.2  # seconds a logged prediction waits for others to share its batch
MAX_WAITING = 20_000  # logged predictions waiting to be sent; beyond, dropped and counted


class Judgement(NamedTuple):
    correct: bool
    score: float  # the positive class's probability
    predicted: int | None  # the predicted class; None when the request gave no truth


class _Judge(Protocol):
    """Decides whether a request's prediction was right, its score and its class."""

    def slices(self) -> list[str]: ...

    def judge(self, slice_: str, request: dict[str, Any]) -> Judgement: ...


def truth(request: dict[str, Any]) -> int | None:
    """The request's ``label`` (0 or 1), the harness's ground truth; None without one."""
    if "label" not in request:
        return None
    label = int(request["label"])
    if label not in (0, 1):
        raise ValueError(f"label {request['label']!r}: want 0 or 1")
    return label


def drawn(accuracy: float, correct: bool, label: int | None) -> tuple[int | None, float | None]:
    """The class predicted for the true ``label`` and its calibrated score: right with
    probability ``accuracy``, the score says so (at least 0.5, for the class predicted)."""
    if label is None:
        return None, None
    predicted = label if correct else 1 - label
    confidence = max(accuracy, 0.5)
    return predicted, confidence if predicted == 1 else 1.0 - confidence


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

    def judge(self, slice_: str, request: dict[str, Any]) -> Judgement:
        """Right with the slice's accuracy. Given the truth, the class follows (``drawn``);
        without it the score is uniform on [0, 1)."""
        label = truth(request)
        with self._lock:
            self._reload()
            accuracy = float(self._state["accuracy"].get(slice_, self._state["default"]))
            correct, uniform = self._rng.random() < accuracy, self._rng.random()
        predicted, score = drawn(accuracy, correct, label)
        return Judgement(correct, uniform if score is None else score, predicted)


class _ChurnModel:
    """The example trainer's model, loaded from its artifact directory."""

    def __init__(self, artifact: Path) -> None:
        self.weights = np.load(artifact / "model.npz")["weights"]

    def slices(self) -> list[str]:
        return list(SLICES)

    def judge(self, slice_: str, request: dict[str, Any]) -> Judgement:
        features = np.array([request["features"]], dtype=np.float64)
        label = truth(request)
        if features.shape != (1, 2) or slice_ not in SLICES or label is None:
            raise ValueError(f"want 2 features, a label and a slice of {SLICES}")
        score = float(scores(self.weights, features, np.array([SLICES.index(slice_)]))[0])
        predicted = int(score >= 0.5)
        return Judgement(predicted == label, score, predicted)


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


class Logged(NamedTuple):
    """One prediction to log: what the feedback service needs of it."""

    id: str
    slice: str
    predicted: int
    score: float
    time: float


Sender = Callable[[list[Logged]], list[bool]]
"""Sends a batch of logged predictions; whether the service took each."""


def prediction_record(model: str, version: str, attribute: str, p: Logged) -> dict[str, Any]:
    """The prediction as ``POST /v1/predictions`` takes it."""
    return {
        "id": p.id,
        "model": model,
        "version": version,
        "time": p.time,
        "attributes": {attribute: p.slice},
        "predicted": p.predicted,
        "score": p.score,
    }


def kserve_bodies(attribute: str, p: Logged) -> tuple[dict[str, Any], dict[str, Any]]:
    """The request and response bodies a v1 InferenceService would have seen for it."""
    return {"instances": [{attribute: p.slice}]}, {"predictions": [[1.0 - p.score, p.score]]}


def json_sender(url: str, model: str, version: str, attribute: str) -> Sender:
    """Batches to ``/v1/predictions`` through the SDK's client (it retries what the
    service cannot take now); a batch refused is refused whole."""
    client = FeedbackClient(url, batch_size=BATCH, timeout=5.0, retries=2)

    def send(batch: list[Logged]) -> list[bool]:
        try:
            client.predictions([prediction_record(model, version, attribute, p) for p in batch])
        except FeedbackError as error:
            print(f"feedback: {len(batch)} predictions refused: {error}", file=sys.stderr)
            return [False] * len(batch)
        return [True] * len(batch)

    return send


def kserve_sender(url: str, model: str, version: str, attribute: str) -> Sender:
    """Each prediction as the two events of KServe's logger (v1 bodies) to ``/v1/kserve``."""
    logger = KServeLogger(f"{url.rstrip('/')}/v1/kserve", model, version)

    def send(batch: list[Logged]) -> list[bool]:
        return [
            logger.send(p.id, *kserve_bodies(attribute, p), p.time) == [200, 200] for p in batch
        ]

    return send


class _PredictionLog:
    """Predictions waiting to be logged, sent by a thread of their own in batches: a
    request only queues its prediction (and one beyond ``MAX_WAITING`` is dropped)."""

    def __init__(self, send: Sender, registry: CollectorRegistry) -> None:
        self._send = send
        self._queue: queue.Queue[Logged] = queue.Queue(maxsize=MAX_WAITING)
        self.logged = Counter(
            "model_feedback_logged",
            "Predictions logged to the feedback service, by outcome",
            ["outcome"],
            registry=registry,
        )
        for outcome in ("sent", "refused", "dropped"):
            self.logged.labels(outcome)
        threading.Thread(target=self._run, name="prediction-log", daemon=True).start()

    def put(self, prediction: Logged) -> None:
        try:
            self._queue.put_nowait(prediction)
        except queue.Full:
            self.logged.labels("dropped").inc()

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            deadline = time.monotonic() + FLUSH
            while len(batch) < BATCH and (left := deadline - time.monotonic()) > 0:
                try:
                    batch.append(self._queue.get(timeout=left))
                except queue.Empty:
                    break
            taken = self._send(batch)
            self.logged.labels("sent").inc(sum(taken))
            self.logged.labels("refused").inc(len(taken) - sum(taken))


def _handler(
    version: str,
    judge: _Judge,
    feedback: _Feedback,
    registry: CollectorRegistry,
    log: _PredictionLog | None,
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
                judged = judge.judge(slice_, request)
                if log is not None and judged.predicted is None:
                    raise ValueError("a logged prediction needs its class: send the label")
            except (TypeError, ValueError, KeyError) as error:
                self._reply(400, f"bad request: {error!r}\n".encode())
                return
            feedback.scores.labels(feedback.model, feedback.version, slice_).observe(judged.score)
            feedback.record(slice_, judged.correct, delay)
            answer: dict[str, Any] = {"version": version, "correct": judged.correct}
            if log is not None:
                assert judged.predicted is not None
                answer["id"] = str(request.get("id") or uuid.uuid4().hex)
                log.put(Logged(answer["id"], slice_, judged.predicted, judged.score, time.time()))
            self._reply(200, json.dumps(answer).encode(), "application/json")

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
        feedback: str | None = None,
        feedback_format: FeedbackFormat = "json",
        attribute: str = "slice",
    ) -> None:
        """``accuracy``: slice -> probability of a correct answer; ``default`` for the rest.
        With ``artifact`` instead, the server scores requests with that trained model.
        ``feedback``: the feedback service's URL, to log each prediction to, in
        ``feedback_format``, with the slice as the prediction attribute ``attribute``."""
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
        if feedback is not None:
            argv += ["--feedback", feedback, "--feedback-format", feedback_format]
            argv += ["--attribute", attribute]
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
    parser.add_argument("--feedback", help="the feedback service's URL: log predictions there")
    parser.add_argument("--feedback-format", choices=("json", "kserve"), default="json")
    parser.add_argument("--attribute", default="slice", help="the slice's prediction attribute")
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
    log = None
    if args.feedback:
        senders = {"json": json_sender, "kserve": kserve_sender}
        send = senders[args.feedback_format](
            args.feedback, args.model, args.version, args.attribute
        )
        log = _PredictionLog(send, registry)
    handler = _handler(args.version, judge, feedback, registry, log)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
