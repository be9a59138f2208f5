"""The canary harness on real processes: model servers answer as accurately per slice as the
test sets them, late labels count when they arrive, and the traffic generator splits traffic
by the replicas of real Deployments, which a real Prometheus sees."""

import json
import math
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from localcluster.modelserver import ModelServer
from localcluster.prometheus import PrometheusServer, scrape_config
from localcluster.traffic import TrafficGenerator, replica_weights
from localcluster.waiting import wait_for
from prometheus_api_client import PrometheusConnect
from tests.harness.world import sample

from modelloop.kube.rest import DEPLOYMENTS, Kube

MODEL = "churn"
V1, V2 = "churn-v1", "churn-v2"
ACCURACY = {V1: {"mobile": 0.9, "web": 0.9}, V2: {"mobile": 0.9, "web": 0.6}}
RATES = {"mobile": 25.0, "web": 25.0}
PHASE = 20.0  # seconds of traffic at each split
# A count may stray Z binomial standard deviations from its mean: a false failure per check
# has probability 6e-5, while v2's web accuracy (0.6 over ~300 labels) is 10 sd from 0.9.
Z = 4.0


def predict(server: ModelServer, slice_: str, **extra: Any) -> dict[str, Any]:
    body = json.dumps({"slice": slice_, **extra}).encode()
    request = urllib.request.Request(f"{server.url}/predict", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        answer: dict[str, Any] = json.loads(response.read())
        return answer


def counted(server: ModelServer, slice_: str) -> tuple[float | None, float | None]:
    """(predictions, correct predictions) of a slice on the server's /metrics."""
    with urllib.request.urlopen(f"{server.url}/metrics", timeout=5) as response:
        text = response.read().decode()
    labels = {"version": server.version, "slice": slice_}
    return (
        sample(text, "model_predictions_total", **labels),
        sample(text, "model_correct_predictions_total", **labels),
    )


def test_behaviour_follows_the_state_file_and_late_labels_count_when_they_arrive(
    model_servers: Callable[..., ModelServer],
) -> None:
    server = model_servers(MODEL, V1, {"web": 1.0}, default=0.0)
    assert predict(server, "web") == {"version": V1, "correct": True}
    assert not predict(server, "mobile")["correct"]  # not in the state: the default
    server.set_accuracy({"web": 0.0})
    assert not any(predict(server, "web")["correct"] for _ in range(20))
    assert counted(server, "web") == (21.0, 1.0)

    sent = time.monotonic()
    for _ in range(5):
        predict(server, "web", label_delay=2.0)
    assert counted(server, "web") == (21.0, 1.0)
    wait_for(lambda: counted(server, "web") == (26.0, 1.0), 10, "the late labels counted")
    assert time.monotonic() - sent >= 2.0


def test_a_trained_model_judges_each_example_by_its_own_prediction(
    model_servers: Callable[..., ModelServer], tmp_path: Path
) -> None:
    # mobile: churn when the first feature is positive; web: when the second is.
    np.savez(tmp_path / "model.npz", weights=np.array([4.0, 0.0, 0.0, 0.0, 4.0, 0.0]))
    server = model_servers(MODEL, V1, artifact=tmp_path)
    assert predict(server, "mobile", features=[1.0, -1.0], label=1)["correct"]
    assert not predict(server, "mobile", features=[1.0, -1.0], label=0)["correct"]
    assert predict(server, "web", features=[1.0, -1.0], label=0)["correct"]
    assert counted(server, "mobile") == (2.0, 1.0)
    assert counted(server, "web") == (1.0, 1.0)
    with urllib.request.urlopen(f"{server.url}/metrics", timeout=5) as response:
        metrics = response.read().decode()
    # sigmoid(4) = 0.982 twice on mobile, sigmoid(-4) = 0.018 once on web.
    assert sample(metrics, "model_prediction_score_bucket", slice="mobile", le="0.9") == 0.0
    assert sample(metrics, "model_prediction_score_bucket", slice="web", le="0.1") == 1.0
    for bad in ({"features": [1.0, 2.0, 3.0], "label": 1}, {"features": [1.0, 2.0]}):
        with pytest.raises(urllib.error.HTTPError) as refused:
            predict(server, "mobile", **bad)
        refused.value.close()
        assert refused.value.code == 400


def deployment(version: str, replicas: int) -> dict[str, Any]:
    labels = {"modelloop.dev/model": MODEL, "modelloop.dev/version": version}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": version, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "model", "image": "registry.invalid/m:1"}]},
            },
        },
    }


def by_labels(
    client: PrometheusConnect, query: str, at: float, *labels: str
) -> dict[tuple[str, ...], float]:
    """The query's value per label combination, evaluated at the wall time ``at``."""
    return {
        tuple(r["metric"][label] for label in labels): float(r["value"][1])
        for r in client.custom_query(query, params={"time": at})
    }


def scraped_after(client: PrometheusConnect, wall: float) -> bool:
    """Whether every target's latest scrape is later than ``wall``: its samples are final."""
    latest = client.custom_query("min(timestamp(up))")
    return bool(latest) and float(latest[0]["value"][1]) > wall


def within_binomial(successes: float, trials: float, p: float) -> bool:
    return abs(successes - trials * p) <= Z * math.sqrt(trials * p * (1 - p))


def test_split_by_replicas_and_accuracy_per_slice_as_set(
    kube: Kube,
    namespace: str,
    model_servers: Callable[..., ModelServer],
    prometheus: Callable[..., PrometheusServer],
    traffic_generator: Callable[..., TrafficGenerator],
) -> None:
    kube.create(DEPLOYMENTS, namespace, deployment(V1, 9))
    kube.create(DEPLOYMENTS, namespace, deployment(V2, 1))
    servers = {v: model_servers(MODEL, v, accuracy) for v, accuracy in ACCURACY.items()}
    prom = prometheus(scrape_config({v: s.address for v, s in servers.items()}))
    client = PrometheusConnect(url=prom.url, disable_ssl=True)
    wait_for(
        lambda: len(client.custom_query("model_predictions_total")) == 4,
        30,
        "both versions' zeroed series scraped",
    )

    generator = traffic_generator(replica_weights(kube, namespace, MODEL), servers, RATES)
    first = wait_for(lambda: generator.timeline, 10, "the first weights read")[0]
    wait_for(lambda: scraped_after(client, first.wall + PHASE), PHASE + 15, "the 9:1 phase")
    # One write: the reader must never see a state in between (two patches would show one).
    kube.merge_patch(DEPLOYMENTS, namespace, V2, {"spec": {"replicas": 9}})
    second = wait_for(lambda: generator.timeline[1:], 10, "the new weights read")[0]
    end = second.wall + PHASE
    wait_for(lambda: scraped_after(client, end), PHASE + 15, "the 1:1 phase")

    assert [o.weights for o in generator.timeline] == [{V1: 9, V2: 1}, {V1: 9, V2: 9}]
    stats = generator.stats()
    assert (stats.failed, stats.unrouted, stats.dropped, stats.read_errors) == ({}, 0, 0, 0)

    split = "sum by (version) (increase(model_predictions_total[{}ms]))"
    for start, stop, share in ((first.wall, second.wall, 0.1), (second.wall, end, 0.5)):
        per_version = by_labels(client, split.format(int((stop - start) * 1000)), stop, "version")
        total = sum(per_version.values())
        assert within_binomial(per_version[(V2,)], total, share), (share, per_version)

    window = f"{int((end - first.wall) * 1000)}ms"
    predictions = by_labels(
        client,
        f"sum by (version, slice) (increase(model_predictions_total[{window}]))",
        end,
        "version",
        "slice",
    )
    correct = by_labels(
        client,
        f"sum by (version, slice) (increase(model_correct_predictions_total[{window}]))",
        end,
        "version",
        "slice",
    )
    for version, accuracies in ACCURACY.items():
        for slice_, accuracy in accuracies.items():
            key = (version, slice_)
            assert within_binomial(correct[key], predictions[key], accuracy), (key, correct)
