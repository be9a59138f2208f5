"""The whole loop on a local control plane, in a few minutes.

A churn model (examples/demo/churn.yaml) serves two slices, mobile and web, from a
stream whose concept changes for mobile partway through. What runs:

- the local control plane of the tests (etcd, kube-apiserver, controllers, kwok's node)
  and a real Prometheus scraping the feedback service, the model servers and the operator;
- the feedback service (``modelloop feedback``): each model server logs its predictions
  there, and the stream's truth for each comes 20 s later through its label API; it joins
  them and counts, per version and slice, what the Model's accuracy reads (the
  MetricTemplates of examples/templates/feedback.yaml, with ``labels: {delay: 20s}``);
- churn-v1, trained by the example trainer (examples/trainer) on the stream's recent past
  before the demo starts, as the version already in production;
- the operator, as the chart's ServiceAccount;
- the demo's stand-ins where a kubelet and a gateway would act (localcluster/demo/pods.py,
  localcluster/traffic.py): a model server process per version serving its trained
  model, training pods run as local processes, and a traffic generator that sends the
  stream to the versions in the proportions the operator wrote in the HTTPRoute.

Then the loop: the concept turns → accuracy on mobile breaches once the labels tell →
training Job → the new version gated offline against the champion → canary 10% → 50% →
100%, each step judged once its own traffic's labels have come → promoted, and the
accuracy on mobile recovers. The timeline is printed as it happens; the end writes a PNG
plot (accuracy as served, as the labels tell it and as estimated from the scores; label
coverage; the traffic split) and a summary, and the exit status says whether the loop
closed.
"""

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import yaml
from examples.trainer.churn import SLICES, Concept, Shift
from prometheus_api_client import PrometheusConnect

from localcluster.apply import apply, apply_files, install_crds
from localcluster.chart import install_operator_identity
from localcluster.controlplane import LocalControlPlane
from localcluster.demo.plot import Panels, Series, draw
from localcluster.demo.pods import IMAGES, Poller, TrainingPods, VersionServers, run_container
from localcluster.demo.timeline import Mark, Timeline
from localcluster.feedback import FeedbackService
from localcluster.modelserver import ModelServer
from localcluster.operator_process import start_operator
from localcluster.processes import Process, free_port
from localcluster.prometheus import PrometheusServer, scrape_config
from localcluster.thirdparty import traffic_crds_dir
from localcluster.traffic import LabelFeed, Stats, TrafficGenerator, httproute_weights
from modelloop.api.resources import MODEL_VERSIONS, MODELS
from modelloop.api.vocabulary import API_VERSION
from modelloop.kube.rest import Kube

REPO = Path(__file__).parents[2]
MANIFEST = REPO / "examples" / "demo" / "churn.yaml"
TEMPLATES = REPO / "examples" / "templates" / "feedback.yaml"
NAMESPACE = "modelloop-demo"
MODEL, FIRST = "churn", "churn-v1"
RATE = 30.0  # requests per second per slice
TURN = 1.4  # radians mobile's boundary turns: churn-v1 falls from ~0.84 to ~0.55 there
# The prediction attribute the slices are made of: the one examples/templates/feedback.yaml
# groups by (examples/demo/churn.yaml's slices match it).
ATTRIBUTE = "region"
LABEL_DELAY = 20.0  # seconds from a prediction to its label (examples/demo/churn.yaml's delay)
FEEDBACK = {"attributes": [{"name": ATTRIBUTE, "maxValues": 5}]}
# Accuracy per slice, all versions: as served (the model servers count each prediction
# with the truth the stream gave it: the harness's view), as the labels tell it once
# they come (the feedback service's joined pairs: what the operator judges), and as
# estimated from the scores at once (confidence-based: right only while the scores are
# calibrated, which a concept drift breaks).
SERVED = (
    'sum by (slice) (increase(model_correct_predictions_total{{model="churn"}}[{window}]))'
    ' / sum by (slice) (increase(model_predictions_total{{model="churn"}}[{window}]))'
)
LABELLED = (
    'sum by (region) (increase(modelloop_feedback_correct_total{{model="churn"}}[{window}]))'
    ' / sum by (region) (increase(modelloop_feedback_labels_total{{model="churn"}}[{window}]))'
)
ESTIMATED = (
    "sum by (region) "
    '(increase(modelloop_feedback_expected_correct_total{{model="churn"}}[{window}]))'
    " / sum by (region) "
    '(increase(modelloop_feedback_prediction_score_count{{model="churn"}}[{window}]))'
)
# Label coverage per version, as the Model's coverageQuery has it (over both slices).
COVERAGE = (
    'sum by (version) (increase(modelloop_feedback_labels_total{{model="churn"}}[{window}]))'
    ' / sum by (version) (increase(modelloop_feedback_predictions_total{{model="churn"}}'
    "[{window}] offset {delay}))"
)
OBJECTIVE = 0.75  # examples/demo/churn.yaml's accuracy objective
MIN_COVERAGE = 0.8  # and its labels.minCoverage
DECISIONS = {  # what the plot marks, with their labels
    "ConceptShift": "drift",
    "Breach": "breach",
    "TrainingStarted": "training",
    "Validated": "validated",
    "WeightChanged": "{weight}",
    "StepAdvanced": "{weight}",
    "Promoted": "promoted",
    "RolledBack": "rolled back",
}


T = TypeVar("T")


class DemoFailed(Exception):
    """The loop did not close; the message says where it stopped."""


@dataclass(frozen=True)
class Pace:
    """How long the healthy start and the recovered end last, in seconds."""

    healthy: float
    tail: float


FULL, SMOKE = Pace(healthy=45, tail=40), Pace(healthy=25, tail=20)


@dataclass(frozen=True)
class Outcome:
    """What the demo saw: the new version, the loop's moments, accuracy as served per
    slice before the drift, just before the training and at the end, and the traffic."""

    candidate: str
    moments: dict[str, Mark]
    accuracy: dict[str, dict[str, float]]
    traffic: Stats
    plot: Path
    feedback: dict[str, float] = field(default_factory=dict)  # predictions, labels joined

    def problems(self) -> list[str]:
        """Why the loop did not close; nothing when it did."""
        found = [
            f"accuracy on {slice_} at the end is {value:.3f}, under the objective {OBJECTIVE}"
            for slice_, value in sorted(self.accuracy["at the end"].items())
            if value < OBJECTIVE
        ]
        missing = set(SLICES) - set(self.accuracy["at the end"])
        return found + [f"no accuracy on {s} at the end" for s in sorted(missing)]

    def summary(self) -> str:
        m = self.moments
        lines = [
            f"The loop closed {m['promoted'].at - m['drift'].at:.0f} s after the drift: "
            f"{self.candidate} serves all traffic.",
            "",
        ]
        for name, mark in m.items():
            lines.append(f"  {name:<10} +{mark.at:6.1f}s  {mark.message}")
        lines += ["", "Accuracy as served (15 s windows):"]
        phases = list(self.accuracy)
        lines.append("  " + "slice".ljust(8) + "".join(p.rjust(24) for p in phases))
        for slice_ in SLICES:
            values = [self.accuracy[p].get(slice_) for p in phases]
            cells = "".join(("-" if v is None else f"{v:.3f}").rjust(24) for v in values)
            lines.append(f"  {slice_:<8}{cells}")
        t = self.traffic
        lines += [
            "",
            f"Traffic: {sum(t.delivered.values())} requests answered "
            f"({', '.join(f'{v} {n}' for v, n in sorted(t.delivered.items()))}), "
            f"{sum(t.failed.values())} failed, {t.unrouted} unrouted, {t.dropped} dropped.",
        ]
        if self.feedback:
            lines.append(
                f"Feedback: {self.feedback['predictions']:.0f} predictions logged, "
                f"{self.feedback['labels']:.0f} labels joined {LABEL_DELAY:g} s late "
                f"({t.label_errors} labels refused)."
            )
        lines.append(f"Plot: {self.plot}")
        return "\n".join(lines)


class LiveStream:
    """The stream as it arrives: each request's example drawn from the concept of now."""

    def __init__(self, concept: Concept, seed: int = 11) -> None:
        self.concept = concept
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()

    def example(self, slice_: str) -> dict[str, Any]:
        with self._lock:
            x = self._rng.normal(size=(1, 2))
            s = np.array([SLICES.index(slice_)])
            y = self.concept.labels(self._rng, x, s, np.array([time.time()]))
        return {"features": x[0].tolist(), "label": int(y[0])}


def stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def demo_model(models: Path, concept: Concept) -> dict[str, Any]:
    """examples/demo/churn.yaml with the demo's output directory and stream."""
    model: dict[str, Any] = yaml.safe_load(MANIFEST.read_text())
    retraining = model["spec"]["retraining"]
    retraining["outputURI"] = f"file://{models}"
    container = retraining["job"]["spec"]["template"]["spec"]["containers"][0]
    container["env"] = [{"name": "CHURN_CONCEPT", "value": concept.to_json()}]
    return model


def train_first_version(models: Path, concept: Concept, logs: Path, timeline: Timeline) -> str:
    """churn-v1: the example trainer on the stream's last ten minutes, as a Job would run
    it (the same env), before any drift. Returns its artifact URI."""
    end = datetime.now(UTC)
    env = {
        "MODELLOOP_MODEL": MODEL,
        "MODELLOOP_DATA_START": stamp(end - timedelta(minutes=10)),
        "MODELLOOP_DATA_END": stamp(end),
        "MODELLOOP_OUTPUT_URI": f"file://{models}/1",
        "CHURN_CONCEPT": concept.to_json(),
    }
    image = next(iter(IMAGES))
    container = {"image": image, "env": [{"name": k, "value": v} for k, v in env.items()]}
    done = run_container(container, logs, "train-churn-v1")
    if done.code != 0:
        raise DemoFailed(f"training churn-v1 failed ({done.code}): {done.message or done.output}")
    timeline.say("harness", f"{FIRST} trained on the stream's last 10 minutes: {done.output}")
    return f"file://{models}/1"


class Stoppable(Protocol):
    def stop(self) -> None: ...


class Loop:
    """Everything the demo started, and the loop's steps; ``close()`` stops it all."""

    def __init__(self, workdir: Path, pace: Pace) -> None:
        self.workdir, self.pace = workdir, pace
        self.timeline = Timeline()
        self.cluster: LocalControlPlane | None = None
        self.started: list[Stoppable] = []  # stopped in reverse order
        self.pollers: list[Poller] = []
        self.operator: Process | None = None
        self.feedback: FeedbackService | None = None

    def say(self, source: str, message: str) -> Mark:
        return self.timeline.say(source, message)

    def run(self) -> Outcome:
        kube = self._start_cluster()
        concept = Concept(
            drift_per_day=dict.fromkeys(SLICES, 0.0),
            examples_per_hour=round(RATE * len(SLICES) * 3600),
            # the rest of the set-up takes about 2 s
            shift=Shift("mobile", time.time() + 5 + self.pace.healthy, TURN),
        )
        models = self.workdir / "models"
        uri = train_first_version(models, concept, self.workdir / "pods", self.timeline)
        prometheus, servers = self._start_stand_ins(kube)
        self._start_operator(prometheus)
        kube.create(MODELS, NAMESPACE, demo_model(models, concept))
        kube.create(MODEL_VERSIONS, NAMESPACE, first_version(uri))
        self.say("harness", f"applied Model/{MODEL} ({MANIFEST.relative_to(REPO)}) and {FIRST}")
        traffic = self._start_traffic(kube, servers, concept)
        assert concept.shift is not None
        moments = self._follow_the_loop(kube, concept.shift.at)
        self.say("harness", f"all traffic on the new version; {self.pace.tail:g}s to recover")
        time.sleep(self.pace.tail)
        return self._outcome(kube, prometheus, traffic, moments)

    def _start_cluster(self) -> Kube:
        self.say("harness", f"local control plane in {self.workdir} (etcd, apiserver, kwok) ...")
        self.cluster = LocalControlPlane(self.workdir).start()
        kube = self.cluster.admin.kube()
        install_crds(kube)
        install_crds(kube, traffic_crds_dir())
        install_operator_identity(self.cluster, self.workdir)
        apply(kube, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
        apply_files(kube, [TEMPLATES], NAMESPACE)
        self.say("harness", f"applied the MetricTemplates of {TEMPLATES.relative_to(REPO)}")
        return kube

    def _poll(self, poller: Poller) -> None:
        poller.start()
        self.pollers.append(poller)
        self.started.append(poller)

    def _start_stand_ins(self, kube: Kube) -> tuple[PrometheusServer, VersionServers]:
        """The feedback service; Prometheus; the model servers and training pods the demo
        runs in place of a kubelet; the operator's Events into the timeline."""
        self.feedback = feedback = FeedbackService(self.workdir / "feedback", FEEDBACK)
        self.started.append(feedback)
        self.say("harness", f"feedback service on {feedback.url} (modelloop feedback)")
        self.metrics_port = free_port()
        targets = {"operator": f"127.0.0.1:{self.metrics_port}", "feedback": feedback.address}
        prometheus = PrometheusServer(self.workdir / "prometheus", scrape_config(targets))
        self.started.append(prometheus)

        def scrape(servers: dict[str, ModelServer]) -> None:
            versions = {name: server.address for name, server in servers.items()}
            prometheus.reload(scrape_config({**targets, **versions}))

        servers = VersionServers(
            kube,
            NAMESPACE,
            self.workdir / "servers",
            self.say,
            scrape,
            feedback=feedback.url,
            attribute=ATTRIBUTE,
        )
        self.started.append(servers)
        self._poll(servers.poller)
        self._poll(TrainingPods(kube, NAMESPACE, self.workdir / "pods", self.say).poller)
        self._poll(Poller(lambda: self.timeline.follow(kube, NAMESPACE), self.say))
        return prometheus, servers

    def _start_operator(self, prometheus: PrometheusServer) -> None:
        assert self.cluster is not None
        providers = self.workdir / "providers.yaml"
        providers.write_text(
            yaml.safe_dump({"providers": [{"name": "default", "url": prometheus.url}]})
        )
        self.operator = start_operator(
            self.cluster.operator.kubeconfig,
            self.workdir / "logs",
            [NAMESPACE],
            args=(f"--providers={providers}", f"--metrics-address=127.0.0.1:{self.metrics_port}"),
        )
        self.say("harness", f"operator pid {self.operator.pid} as {self.cluster.operator.user}")

    def _start_traffic(
        self, kube: Kube, servers: VersionServers, concept: Concept
    ) -> TrafficGenerator:
        reader = httproute_weights(kube, NAMESPACE, MODEL)
        self.wait(lambda: reader().get(FIRST) and FIRST in servers.servers, 60, f"{FIRST} live")
        assert self.feedback is not None
        traffic = TrafficGenerator(
            reader,
            servers.servers,
            dict.fromkeys(SLICES, RATE),
            example=LiveStream(concept).example,
            labels=LabelFeed(self.feedback.url, LABEL_DELAY),
        )
        traffic.start()
        self.started.append(traffic)
        self.say(
            "traffic",
            f"{RATE:g} requests/s per slice, split by HTTPRoute/{MODEL}'s weights; each "
            f"label posted to the feedback service {LABEL_DELAY:g} s after its answer",
        )
        return traffic

    def _follow_the_loop(self, kube: Kube, shift_at: float) -> dict[str, Mark]:
        """Waits for each step of the loop, from the drift to the promotion."""
        first = self.timeline.first
        self.wait(lambda: time.time() >= shift_at, 120, "the drift")
        shift = self.timeline.say(
            "stream",
            f"the concept of mobile turns by {TURN} rad: {FIRST} is now wrong there",
            "ConceptShift",
        )
        breach = self.wait(lambda: first("Breach"), 120, "a breach")
        started = self.wait(lambda: first("TrainingStarted"), 60, "a training")
        judged = self.wait(
            lambda: first("Validated") or first("Rejected"), 120, "the new version judged"
        )
        if judged.reason != "Validated":
            raise DemoFailed(f"the new version was rejected: {judged.message}")
        ended = self.wait(
            lambda: first("Promoted") or first("RolledBack"), 240, "the rollout's end"
        )
        if ended.reason != "Promoted":
            raise DemoFailed(f"the rollout did not promote: {ended.message}")
        return {
            "drift": shift,
            "breach": breach,
            "training": started,
            "validated": judged,
            "promoted": ended,
        }

    def _outcome(
        self,
        kube: Kube,
        prometheus: PrometheusServer,
        traffic: TrafficGenerator,
        moments: dict[str, Mark],
    ) -> Outcome:
        end = time.time()
        client = PrometheusConnect(prometheus.url)
        start = self.timeline.start
        candidate = _candidate(kube)
        if candidate is None or _phase(kube, candidate) != "Serving":
            raise DemoFailed(f"the new version {candidate} does not serve production")
        outcome = Outcome(
            candidate,
            moments,
            {
                "before the drift": served(client, start + moments["drift"].at),
                "before the training": served(client, start + moments["training"].at),
                "at the end": served(client, end),
            },
            traffic.stats(),
            self.workdir / "demo.png",
            feedback_counts(client, end),
        )
        self.plot(client, traffic, outcome.plot, end)
        return outcome

    def wait(self, predicate: Callable[[], T | None], timeout: float, what: str) -> T:
        """The first truthy value of ``predicate``; DemoFailed after ``timeout`` seconds or
        as soon as a part of the demo died."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            for poller in self.pollers:
                if poller.failure is not None:
                    raise DemoFailed(f"the harness failed waiting for {what}: {poller.failure!r}")
            if self.operator is not None and not self.operator.running:
                raise DemoFailed(f"the operator exited while waiting for {what}")
            if time.monotonic() > deadline:
                raise DemoFailed(f"no {what} within {timeout:g}s")
            time.sleep(0.25)

    def plot(
        self, client: PrometheusConnect, traffic: TrafficGenerator, path: Path, end: float
    ) -> None:
        start = self.timeline.start

        def ranged(query: str, label: str) -> dict[str, Series]:
            found: dict[str, Series] = {}
            for series in client.custom_query_range(
                query,
                start_time=datetime.fromtimestamp(start, UTC),
                end_time=datetime.fromtimestamp(end, UTC),
                step="1s",
            ):
                points = [(float(t) - start, float(v)) for t, v in series["values"]]
                found[series["metric"][label]] = ([p[0] for p in points], [p[1] for p in points])
            return found

        window = "10s"
        accuracy = {
            "served": ranged(SERVED.format(window=window), "slice"),
            "labels": ranged(LABELLED.format(window=window), ATTRIBUTE),
            "estimated": ranged(ESTIMATED.format(window=window), ATTRIBUTE),
        }
        coverage = ranged(COVERAGE.format(window="15s", delay=f"{LABEL_DELAY:g}s"), "version")
        shares: dict[str, tuple[list[float], list[float]]] = {}
        timeline = traffic.timeline
        versions = sorted({v for o in timeline for v in o.weights})
        for observation in [*timeline, timeline[-1]._replace(wall=end)]:
            total = sum(observation.weights.values()) or 1
            for version in versions:
                times, values = shares.setdefault(version, ([], []))
                times.append(observation.wall - start)
                values.append(100 * observation.weights.get(version, 0) / total)
        marks = [(m, label(m)) for m in self.timeline.marks() if m.reason in DECISIONS]
        title = f"ModelLoop demo: churn, concept drift on mobile, labels {LABEL_DELAY:g} s late"
        panels = Panels(accuracy, OBJECTIVE, coverage, MIN_COVERAGE, shares)
        draw(path, panels, marks, title)

    def close(self) -> None:
        for part in reversed(self.started):
            part.stop()
        if self.operator is not None:
            self.operator.stop()
        if self.cluster is not None:
            self.cluster.stop()


def first_version(uri: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "ModelVersion",
        "metadata": {"name": FIRST},
        "spec": {"model": MODEL, "uri": uri},
    }


def _candidate(kube: Kube) -> str | None:
    names = [v["metadata"]["name"] for v in kube.list(MODEL_VERSIONS, NAMESPACE)]
    return next((n for n in sorted(names) if n != FIRST), None)


def _phase(kube: Kube, name: str) -> str | None:
    body = kube.get(MODEL_VERSIONS, NAMESPACE, name) or {}
    phase: str | None = (body.get("status") or {}).get("phase")
    return phase


def label(mark: Mark) -> str:
    """The plot's label of a decision: the new weight for a step of the rollout."""
    weight = re.search(r"→ (\d+%)", mark.message)
    return DECISIONS[mark.reason].format(weight=weight.group(1) if weight else "")


def feedback_counts(client: PrometheusConnect, at: float) -> dict[str, float]:
    """The feedback service's predictions and labels joined, all versions, at ``at``."""
    counts = {}
    for kind in ("predictions", "labels"):
        query = f'sum(modelloop_feedback_{kind}_total{{model="{MODEL}"}})'
        result = client.custom_query(query, params={"time": at})
        counts[kind] = float(result[0]["value"][1]) if result else 0.0
    return counts


def served(client: PrometheusConnect, at: float) -> dict[str, float]:
    """Accuracy per slice as served (all versions) over the 15 s before ``at`` (Unix time)."""
    result = client.custom_query(SERVED.format(window="15s"), params={"time": at})
    return {r["metric"]["slice"]: float(r["value"][1]) for r in result}
