"""Canary rollouts judged on labels that come 20 s late, end to end, on the path a KServe
user takes: each version's server logs its predictions as KServe's inference logger does
(a request and a response CloudEvent per inference, binary mode, to the feedback service's
/v1/kserve), the traffic generator posts each answered request's label 20 s later to
/v1/labels, a real Prometheus scrapes the service, and the Model's accuracy is the
feedback-accuracy MetricTemplate (examples/templates/feedback.yaml) with
``labels: {delay: 20s, minCoverage}``. No model server is scraped: every decision rests on
the joined predictions and labels."""

import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from localcluster.apply import apply_files
from localcluster.controlplane import ControlPlane
from localcluster.feedback import FeedbackService
from localcluster.modelserver import ModelServer
from localcluster.processes import Process, free_port
from localcluster.prometheus import PrometheusServer, scrape_config
from localcluster.traffic import LabelFeed, TrafficGenerator, httproute_weights
from localcluster.waiting import wait_for
from tests.harness.canary import (
    CANARY,
    MODEL,
    STABLE,
    TRAFFIC,
    StatusLog,
    model,
    percent,
    version,
)
from tests.harness.world import OperatorWorld, sample

from modelloop.api.resources import MODEL_VERSIONS, MODELS
from modelloop.kube.rest import Kube

REPO = Path(__file__).parents[2]
TEMPLATES = REPO / "examples" / "templates" / "feedback.yaml"
REGIONS = ("eu", "us")
DELAY = 20.0  # seconds from an answer to its label
RATES = dict.fromkeys(REGIONS, 40.0)  # requests/s per region: 4/s for a canary at 10%
SETTINGS = {"attributes": [{"name": "region"}], "kserve": {"attributes": {"region": "region"}}}
GOOD = dict.fromkeys(REGIONS, 0.85)
WORSE_IN_US = {"eu": 0.85, "us": 0.55}
ACCURACY = {
    "name": "accuracy",
    "templateRef": {"name": "feedback-accuracy"},
    "minSamples": 30,
    "window": "15s",
    # The coverage from the template's coverageQuery.
    "labels": {"delay": f"{DELAY:g}s", "minCoverage": 0.5},
}
# The analysis as it comes by default (failureLimit 1, consecutiveSuccesses 1,
# maxInconclusive 10, onInconclusive rollback, stepTimeout 1h), on a test's time scale: a
# 2 s interval and short steps; confidence 0.999, so that an identical candidate is
# rolled back by chance in at most 1 run in 1000.
ROLLOUT = {
    "steps": [{"weight": 10, "duration": "4s"}, {"weight": 50, "duration": "4s"}, {"weight": 100}],
    "analysis": {"interval": "2s", "confidence": 0.999},
    "scaleDownDelay": "1m",
}
WAITING_CODES = {"LabelsImmature", "LabelsIncomplete"}


class LateLabelWorld(OperatorWorld):
    """Stable serving on a managed HTTPRoute and taking traffic, its predictions logged
    through KServe's logger events and labelled 20 s late; ``release`` makes the
    candidate's ModelVersion."""

    def __init__(
        self,
        kube: Kube,
        namespace: str,
        tmp_path: Path,
        feedback: FeedbackService,
        servers: dict[str, ModelServer],
        prometheus: Callable[..., PrometheusServer],
        operator: Callable[..., Process],
        generator: Callable[..., TrafficGenerator],
        extra: Mapping[str, list[dict[str, Any]]] | None = None,
    ) -> None:
        self.feedback, self.servers = feedback, servers
        metrics_port = free_port()
        targets = {"feedback": feedback.address, "operator": f"127.0.0.1:{metrics_port}"}
        self.prometheus = prometheus(scrape_config(targets))
        super().__init__(
            kube, namespace, tmp_path, self.prometheus.url, operator, MODEL, metrics_port
        )
        apply_files(kube, [TEMPLATES], namespace)
        slices = [{"name": r, "matchLabels": {"region": r}} for r in REGIONS]
        extra = dict(extra or {})
        spec: dict[str, Any] = {
            "slices": slices,
            "metrics": [ACCURACY, *extra.pop("metrics", [])],
            "rollout": ROLLOUT,
            **extra,
        }
        kube.create(MODELS, namespace, model(TRAFFIC["gateway-managed"], **spec))
        kube.create(MODEL_VERSIONS, namespace, version(STABLE, slices=REGIONS))
        reader = httproute_weights(kube, namespace, MODEL)
        wait_for(lambda: percent(reader()) == {STABLE: 100}, 60, f"{STABLE} takes all traffic")
        self.traffic = generator(reader, servers, RATES, labels=LabelFeed(feedback.url, DELAY))

    def release(self) -> None:
        self.kube.create(MODEL_VERSIONS, self.namespace, version(CANARY, slices=REGIONS))

    def phase_of(self, name: str) -> str | None:
        body = self.kube.get(MODEL_VERSIONS, self.namespace, name) or {}
        phase: str | None = (body.get("status") or {}).get("phase")
        return phase

    def await_end(self, timeout: float) -> str:
        """The candidate's phase once its rollout ended: Serving or RolledBack."""

        def ended() -> str | None:
            phase = self.phase_of(CANARY)
            return phase if phase in ("Serving", "RolledBack") else None

        try:
            phase = wait_for(ended, timeout, f"the end of {CANARY}'s rollout")
        except AssertionError as error:
            raise AssertionError(f"{error}; the rollout: {self.status().get('canary')}") from None
        assert phase is not None
        return phase

    def weight_changes(self) -> list[tuple[float, int]]:
        """(monotonic time, the candidate's percent) each time the data plane's weights
        changed, repeats left out."""
        seen = [(o.monotonic, percent(o.weights).get(CANARY, 0)) for o in self.traffic.timeline]
        return [seen[i] for i in range(len(seen)) if i == 0 or seen[i][1] != seen[i - 1][1]]

    def assert_nothing_lost(self) -> None:
        """Every prediction reached the service as a pair of events it took."""
        metrics = self.feedback.metrics()
        rejected = [line for line in metrics.splitlines() if "kserve_rejected_total{" in line]
        assert all(line.endswith(" 0.0") for line in rejected), rejected
        for server in self.servers.values():
            text = server_metrics(server)
            for outcome in ("refused", "dropped"):
                assert sample(text, "model_feedback_logged_total", outcome=outcome) == 0.0
            assert (sample(text, "model_feedback_logged_total", outcome="sent") or 0) > 0
        assert self.traffic.stats().label_errors == 0


def server_metrics(server: ModelServer) -> str:
    with urllib.request.urlopen(f"{server.url}/metrics", timeout=5) as response:
        text: str = response.read().decode()
        return text


@pytest.fixture
def late_label_world(
    kube: Kube,
    namespace: str,
    tmp_path: Path,
    traffic_crds: Path,
    feedback_service: Callable[[dict[str, Any]], FeedbackService],
    prometheus: Callable[..., PrometheusServer],
    operator: Callable[..., Process],
    traffic_generator: Callable[..., TrafficGenerator],
) -> Iterator[Callable[..., LateLabelWorld]]:
    """Makes the world with a candidate as good per region as the test says (and the
    Model's metrics besides accuracy, or its drift checks: ``metrics=[...], drift=[...]``)."""
    servers: list[ModelServer] = []

    def make(candidate: Mapping[str, float], **extra: list[dict[str, Any]]) -> LateLabelWorld:
        feedback = feedback_service(SETTINGS)
        for name, accuracy, seed in ((STABLE, GOOD, 1), (CANARY, candidate, 2)):
            servers.append(
                ModelServer(
                    tmp_path,
                    MODEL,
                    name,
                    accuracy,
                    seed=seed,
                    feedback=feedback.url,
                    feedback_format="kserve",
                    attribute="region",
                )
            )
        return LateLabelWorld(
            kube,
            namespace,
            tmp_path,
            feedback,
            {s.version: s for s in servers},
            prometheus,
            operator,
            traffic_generator,
            extra,
        )

    yield make
    for server in servers:
        server.stop()


def waiting_rows(analyses: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [r for rows in analyses for r in rows if r["outcome"] == "waiting"]


def test_a_candidate_as_good_waits_for_its_labels_and_is_promoted_not_rolled_back(
    late_label_world: Callable[..., LateLabelWorld],
    control_plane: ControlPlane,
    record_property: Callable[[str, object], None],
) -> None:
    started = time.monotonic()
    world = late_label_world(GOOD)
    log = StatusLog(control_plane.admin.kubeconfig, world.namespace, MODEL)
    try:
        world.release()
        ended = world.await_end(timeout=150)
    finally:
        log.stop()
    assert (ended, world.events("RolledBack")) == ("Serving", [])
    analyses = log.analyses()
    waiting = waiting_rows(analyses)
    assert waiting, analyses
    assert {r["code"] for r in waiting} <= WAITING_CODES, waiting
    assert "LabelsImmature" in {r["code"] for r in waiting}
    # Each analysed step lasted until its own traffic's labels came.
    wait_for(lambda: world.weight_changes()[-1][1] == 100, 30, "the data plane follows")
    moves = world.weight_changes()
    assert [w for _, w in moves] == [0, 10, 50, 100], moves
    steps = [round(b[0] - a[0], 1) for a, b in pairwise(moves[1:])]
    assert all(seconds >= DELAY for seconds in steps), steps
    inconclusive = [c["inconclusive"] for s in log.statuses if (c := s.get("canary"))]
    world.assert_nothing_lost()
    record_property("step_seconds", steps)
    record_property("most_inconclusive_at_a_step", max(inconclusive))
    record_property("test_seconds", round(time.monotonic() - started, 1))


def test_a_candidate_worse_in_one_region_is_rolled_back_once_its_labels_come_naming_it(
    late_label_world: Callable[..., LateLabelWorld],
    control_plane: ControlPlane,
    record_property: Callable[[str, object], None],
) -> None:
    started = time.monotonic()
    world = late_label_world(WORSE_IN_US)
    log = StatusLog(control_plane.admin.kubeconfig, world.namespace, MODEL)
    try:
        world.release()
        ended = world.await_end(timeout=120)
    finally:
        log.stop()
    assert ended == "RolledBack"
    rolled_back = wait_for(lambda: world.condition("RolledBack"), 30, "the RolledBack condition")
    assert rolled_back["reason"] == "AnalysisFailed"
    assert "on slice us" in rolled_back["message"]
    assert "on slice eu" not in rolled_back["message"]
    [event] = world.await_events("RolledBack")
    assert "accuracy on slice us: canary 0." in event
    analyses = log.analyses()
    assert waiting_rows(analyses), analyses
    failed = [r for rows in analyses for r in rows if r["outcome"] == "fail"]
    assert {r["slice"] for r in failed} == {"us"}, failed
    # Judged on the canary's own labels: not before they could come.
    wait_for(lambda: world.weight_changes()[-1][1] == 0, 30, "weights back on stable")
    moves = world.weight_changes()
    assert [w for _, w in moves] == [0, 10, 0], moves
    assert moves[2][0] - moves[1][0] >= DELAY, moves
    world.assert_nothing_lost()
    record_property("test_seconds", round(time.monotonic() - started, 1))


# Before the labels: the accuracy estimated from the candidate's calibrated scores, judged
# only while the labelled accuracy waits, and only on a gross drop.
ESTIMATE = {
    "name": "estimated-accuracy",
    "templateRef": {"name": "feedback-estimated-accuracy"},
    "minSamples": 30,
    "window": "15s",
    "canary": {"early": True, "test": "threshold", "absolute": 0.15},
}


# Before the labels: the canary's score distribution against stable's (Jensen-Shannon),
# from the feedback service's histogram of every prediction's score.
SCORES = {
    "name": "scores",
    "histogram": "modelloop_feedback_prediction_score",
    "matchers": [{"label": "model", "value": MODEL}],
    "test": "js",
    "threshold": 0.2,
    "window": "15s",
    "minSamples": 30,
    "canary": {"versionLabel": "version"},
}


@pytest.mark.parametrize(
    ("signal", "extra"),
    [
        ("estimated-accuracy", {"metrics": [ESTIMATE]}),
        # The worse candidate's scores collapse toward 0.5 where it is worse.
        ("scores", {"drift": [SCORES]}),
    ],
)
def test_an_early_signal_rolls_back_before_the_labels_and_the_labels_then_confirm_it(
    late_label_world: Callable[..., LateLabelWorld],
    record_property: Callable[[str, object], None],
    signal: str,
    extra: dict[str, list[dict[str, Any]]],
) -> None:
    started = time.monotonic()
    world = late_label_world(WORSE_IN_US, **extra)
    world.release()
    assert world.await_end(timeout=90) == "RolledBack"
    rolled_back = wait_for(lambda: world.condition("RolledBack"), 30, "the RolledBack condition")
    assert rolled_back["reason"] == "EarlyRollback"
    assert f"{signal} on slice us" in rolled_back["message"]
    assert f"{signal} on slice eu" not in rolled_back["message"]
    moves = world.weight_changes()
    wait_for(lambda: world.weight_changes()[-1][1] == 0, 30, "weights back on stable")
    moves = world.weight_changes()
    assert [w for _, w in moves] == [0, 10, 0], moves
    assert moves[2][0] - moves[1][0] < DELAY, moves  # before any label of its traffic
    [pending] = world.status()["labelsPending"]
    assert pending["version"] == CANARY

    def verdict() -> str | None:
        status = (world.kube.get(MODEL_VERSIONS, world.namespace, CANARY) or {}).get("status")
        found: str | None = (status or {}).get("labelVerdict")
        return found

    assert wait_for(verdict, 90, "the labels' verdict") == "Confirmed"
    # The version's mark, the Model's status and the Event are three writes, in that order.
    [confirmed] = world.await_events("EarlyRollbackConfirmed")
    assert "accuracy on slice us" in confirmed
    assert not world.status().get("labelsPending")
    record_property("test_seconds", round(time.monotonic() - started, 1))
