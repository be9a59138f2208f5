"""The Grafana dashboard (charts/modelloop/dashboards/modelloop.json): every panel's
expression, run against the real Prometheus that scraped the operator through a
rollout with a drift check, returns data."""

import json
from collections.abc import Callable
from datetime import UTC, datetime

from prometheus_api_client import PrometheusConnect
from tests.harness.apply import REPO
from tests.harness.canary import CANARY, MODEL, CanaryWorld
from tests.harness.waiting import wait_for
from tests.harness.world import sample

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


def expressions() -> list[tuple[str, str]]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [(p["title"], t["expr"]) for p in panels for t in p["targets"]]


def test_every_panel_returns_data_after_a_rollout(
    canary_world: Callable[..., CanaryWorld],
) -> None:
    start = datetime.now(UTC)
    world = canary_world("gateway-managed", GOOD, BETTER, drift=[DRIFT])
    world.release()
    world.await_phase(CANARY, "Serving", timeout=150)
    wait_for(
        lambda: sample(world.operator_metrics(), "modelloop_drift_statistic") is not None,
        60,
        "a drift statistic (the reference window filled)",
    )
    client = PrometheusConnect(world.prometheus.url)
    wait_for(lambda: client.custom_query("modelloop_drift_statistic"), 30, "the statistic scraped")
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
    assert empty == [], empty
