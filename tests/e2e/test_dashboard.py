"""The Grafana dashboard (charts/modelloop/dashboards/modelloop.json): every panel's
expression, run against the real Prometheus that scraped the operator through a
rollout with a drift check and a training, returns data."""

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from localcluster.apply import REPO
from localcluster.kubelet import PODS, TRAINING_JOB, finish_pod
from localcluster.waiting import wait_for
from prometheus_api_client import PrometheusConnect
from tests.harness.canary import CANARY, MODEL, CanaryWorld
from tests.harness.world import sample

from modelloop.api.resources import MODELS
from modelloop.api.vocabulary import GROUP
from modelloop.sdk import report

DASHBOARD = REPO / "charts" / "modelloop" / "dashboards" / "modelloop.json"
GOOD = {"mobile": 0.85, "web": 0.85}
BETTER = {"mobile": 0.95, "web": 0.95}
DRIFT = {
    "name": "score",
    "histogram": "model_prediction_score",
    "test": "psi",
    "threshold": 0.25,
    "window": "15s",
    "reference": {"offset": "15s"},
    "minSamples": 20,
}


RETRAINING = {"outputURI": "s3://models/churn", "job": TRAINING_JOB}


def train_once(world: CanaryWorld, tmp_path: Path) -> None:
    """A manual retraining; the harness finishes its pod as a kubelet would."""
    world.kube.merge_patch(
        MODELS, world.namespace, MODEL, {"metadata": {"annotations": {f"{GROUP}/retrain": "x"}}}
    )
    pod = wait_for(
        lambda: [
            p
            for p in world.kube.list(PODS, world.namespace, f"{GROUP}/training")
            if p["status"].get("phase") == "Running"
        ],
        60,
        "the training pod Running",
    )[0]
    accuracy = {("accuracy", s): 0.9 for s in ("mobile", "web")}
    result = report("s3://models/churn/3", accuracy, accuracy, path=str(tmp_path / "result"))
    finish_pod(world.kube, world.namespace, pod["metadata"]["name"], result)


def expressions() -> list[tuple[str, str]]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [(p["title"], t["expr"]) for p in panels for t in p["targets"]]


def test_every_panel_returns_data_after_a_rollout_and_a_training(
    canary_world: Callable[..., CanaryWorld], tmp_path: Path
) -> None:
    start = datetime.now(UTC)
    world = canary_world("gateway-managed", GOOD, BETTER, drift=[DRIFT], retraining=RETRAINING)
    world.release()
    world.await_phase(CANARY, "Serving", timeout=150)
    train_once(world, tmp_path)
    # The released candidate was judged once already; the trained version is the second.
    wait_for(lambda: len(world.events("Validated")) >= 2, 60, "the trained version judged")
    wait_for(
        lambda: sample(world.operator_metrics(), "modelloop_drift_statistic") is not None,
        60,
        "a drift statistic (the reference window filled)",
    )
    client = PrometheusConnect(world.prometheus.url)
    wait_for(lambda: client.custom_query("modelloop_drift_statistic"), 30, "the statistic scraped")

    def empty_panels() -> list[tuple[str, str]]:
        """Panels whose expression returns nothing over the test so far (a counter that
        appeared a moment ago needs two scrapes before increase() has a value)."""
        end = datetime.now(UTC)
        empty = []
        for title, expr in expressions():
            query = (
                expr.replace("$namespace", world.namespace)
                .replace("$model", MODEL)
                .replace("$__rate_interval", "1m")
            )
            if not client.custom_query_range(query, start_time=start, end_time=end, step="2s"):
                empty.append((title, query))
        return empty

    try:
        wait_for(lambda: not empty_panels(), 30, "every panel with data")
    except AssertionError:
        assert empty_panels() == []
