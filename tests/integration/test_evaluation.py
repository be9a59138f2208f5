"""Per-slice verdicts from a real Prometheus scraping real exporter processes."""

import re
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from localcluster.chart import OPERATOR_NAMESPACE
from localcluster.exporter import Exporter
from localcluster.processes import Process
from localcluster.prometheus import PrometheusServer, scrape_config
from localcluster.waiting import wait_for
from tests.harness.world import (
    BAD,
    GOOD,
    MODEL,
    PRECISION,
    SPARSE,
    World,
    create_served_model,
    model,
    sample,
    slices,
    traffic,
)

from modelloop.api.resources import MODEL_VERSIONS, MODELS
from modelloop.api.vocabulary import GROUP, VERSION
from modelloop.kube.rest import Kube, Resource


def test_each_slice_gets_its_own_verdict(world: Callable[..., World]) -> None:
    w = world(
        {"slices": slices("eu", "us", "apac", "latam"), "metrics": [PRECISION]},
        traffic({"eu": GOOD, "us": GOOD, "apac": BAD, "latam": SPARSE}),
    )
    w.await_verdicts(
        {
            "precision/eu": "pass",
            "precision/us": "pass",
            "precision/apac": "breach",
            "precision/latam": "inconclusive",
        }
    )
    degraded = w.condition("Degraded")
    assert degraded["status"] == "True"
    assert re.search(
        r"precision on slice apac of fraud-v1 = 0\.\d+ \(\d+ samples\): "
        r"below min 0\.8",
        degraded["message"],
    ), degraded
    assert "latam" not in degraded["message"]
    latam = next(v for v in w.status()["verdicts"] if v["slice"] == "latam")
    assert latam["reason"] == "fewer samples than minSamples 20"
    assert w.condition("MetricsUnavailable")["status"] == "False"
    wait_for(lambda: any("apac" in m for m in w.events("Breach")), 30, "apac's Breach Event")
    text = w.operator_metrics()
    eu = sample(text, "modelloop_metric_value", slice="eu", metric="precision")
    assert eu is not None
    assert 0.9 < eu < 1.0
    assert sample(text, "modelloop_metric_verdict", slice="apac", verdict="breach") == 1.0


def test_an_outage_is_inconclusive_never_a_breach_and_recovers(world: Callable[..., World]) -> None:
    w = world(
        {"slices": slices("eu", "us"), "metrics": [PRECISION]}, traffic({"eu": GOOD, "us": GOOD})
    )
    w.await_verdicts({"precision/eu": "pass", "precision/us": "pass"})

    w.prometheus.stop()
    w.await_verdicts({"precision/eu": "inconclusive", "precision/us": "inconclusive"})
    unavailable = w.condition("MetricsUnavailable")
    assert (unavailable["status"], unavailable["reason"]) == ("True", "QueryFailed")
    assert "unreachable" in unavailable["message"]
    assert w.condition("Degraded")["status"] == "False"
    assert w.events("Breach") == []

    w.prometheus.start_again()
    w.await_verdicts({"precision/eu": "pass", "precision/us": "pass"})
    assert w.condition("MetricsUnavailable")["status"] == "False"
    assert w.condition("Healthy")["status"] == "True"
    assert w.events("Breach") == []


def test_a_slice_without_traffic_is_no_data_and_the_status_stays_writable(
    world: Callable[..., World],
) -> None:
    """0 / 0 is NaN: it must never reach status, where the API server would refuse it and
    then every later write of the Model."""
    idle = (0.0, 0.0)
    w = world(
        {"slices": slices("eu", "us"), "metrics": [PRECISION]}, traffic({"eu": GOOD, "us": idle})
    )
    no_data = "no data: the query returned NaN (no traffic on this slice?)"

    def us() -> dict[str, Any]:
        return next((v for v in w.status().get("verdicts") or [] if v["slice"] == "us"), {})

    wait_for(lambda: us().get("reason") == no_data, 60, "the idle slice said to have no data")
    assert (us()["verdict"], "value" in us()) == ("inconclusive", False)
    assert no_data in w.condition("Healthy")["message"]

    w.exporter.update(traffic({"eu": BAD, "us": idle}))
    w.await_verdicts({"precision/eu": "breach", "precision/us": "inconclusive"})
    # The Event is posted after the status write that await_verdicts saw.
    wait_for(lambda: any("on slice eu" in m for m in w.events("Breach")), 30, "its Breach Event")


def test_a_breach_shorter_than_its_for_does_not_count(world: Callable[..., World]) -> None:
    metric = PRECISION | {"breach": {"for": "20s"}}
    w = world({"slices": slices("eu"), "metrics": [metric]}, traffic({"eu": GOOD}))
    w.await_verdicts({"precision/eu": "pass"})

    w.exporter.update(traffic({"eu": BAD}))
    wait_for(
        lambda: (sample(w.operator_metrics(), "modelloop_metric_value", slice="eu") or 1) < 0.8,
        30,
        "the operator to see the dip",
    )
    dip_seen = time.monotonic()
    w.exporter.update(traffic({"eu": GOOD}))
    wait_for(
        lambda: (sample(w.operator_metrics(), "modelloop_metric_value", slice="eu") or 0) > 0.9,
        30,
        "the recovery",
    )
    assert time.monotonic() - dip_seen < 20, "the dip lasted longer than the rule's 'for'"
    assert w.verdicts() == {"precision/eu": "pass"}
    assert w.events("Breach") == []

    w.exporter.update(traffic({"eu": BAD}))
    started = time.monotonic()
    w.await_verdicts({"precision/eu": "breach"}, timeout=60)
    assert time.monotonic() - started >= 20


def test_requests_per_cycle_do_not_grow_with_slices_and_quiet_cycles_write_nothing(
    world: Callable[..., World],
) -> None:
    regions = [f"r{i}" for i in range(12)]
    recall = PRECISION | {"name": "recall", "minSamples": 0}
    w = world(
        {"slices": slices(*regions), "metrics": [PRECISION, recall]},
        traffic(dict.fromkeys(regions, GOOD)),
    )
    w.await_verdicts({f"{m}/{r}": "pass" for m in ("precision", "recall") for r in regions})

    def counts() -> tuple[float, float, str]:
        with urllib.request.urlopen(f"{w.prometheus.url}/metrics", timeout=5) as response:
            prom = response.read().decode()
        queries = sample(prom, "prometheus_http_requests_total", handler="/api/v1/query") or 0
        cycles = sample(w.operator_metrics(), "modelloop_evaluation_duration_seconds_count") or 0
        model = w.kube.get(MODELS, w.namespace, MODEL) or {}
        return queries, cycles, model["metadata"]["resourceVersion"]

    q0, c0, rv0 = counts()
    wait_for(lambda: counts()[1] >= c0 + 5, 30, "five more evaluation cycles")
    q1, c1, rv1 = counts()
    # Two metrics, 12 slices: two requests a cycle (each joins every slice's value and
    # sample count); a request may straddle the two readings.
    assert 2 * (c1 - c0 - 1) <= q1 - q0 <= 2 * (c1 - c0 + 1), (q0, q1, c0, c1)
    assert rv1 == rv0, "an evaluation that changed no verdict wrote to the Model"


def amounts(rates: list[float]) -> dict[str, Any]:
    """The exporter state of a feature histogram observed at these per-bucket rates."""
    histogram = {
        "name": "fraud_feature_amount",
        "labels": {"region": "eu"},
        "bounds": [10, 100, 1000],
        "rates": rates,
    }
    return {"histograms": [histogram]}


def test_drift_against_an_earlier_window(world: Callable[..., World]) -> None:
    same, shifted = amounts([20, 20, 10, 0]), amounts([2, 8, 30, 10])
    drift = {
        "name": "amount",
        "histogram": "fraud_feature_amount",
        "test": "psi",
        "threshold": 0.2,
        "window": "5s",
        "reference": {"offset": "10s"},
        "minSamples": 50,
    }
    w = world({"slices": slices("eu"), "drift": [drift]}, same)
    w.await_verdicts({"amount/eu": "pass"}, timeout=60)

    w.exporter.update(shifted)
    w.await_verdicts({"amount/eu": "breach"}, timeout=60)
    entry = next(v for v in w.status()["verdicts"] if v["metric"] == "amount")
    assert entry["kind"] == "drift"
    assert entry["value"] > 0.2
    assert entry["reason"] == "psi above threshold 0.2"


def test_an_unknown_provider_is_a_condition_not_a_crash(world: Callable[..., World]) -> None:
    w = world(
        {"slices": slices("eu"), "metrics": [PRECISION], "metricsProvider": "elsewhere"},
        traffic({"eu": GOOD}),
    )
    wait_for(
        lambda: w.condition("MetricsUnavailable").get("reason") == "UnknownProvider",
        60,
        "MetricsUnavailable: UnknownProvider",
    )
    message = w.condition("MetricsUnavailable")["message"]
    assert "'elsewhere' is not configured in the operator (configured: test)" in message
    assert w.verdicts() == {"precision/eu": "inconclusive"}
    assert w.operator.running
    wait_for(lambda: w.condition("Ready").get("status") == "True", 60, "serving unaffected")


def test_models_sharing_a_grouped_template_get_their_own_verdicts(
    kube: Kube,
    namespace: str,
    tmp_path: Path,
    exporter: Callable[[str, dict[str, Any]], Exporter],
    prometheus: Callable[[dict[str, Any]], PrometheusServer],
    operator: Callable[..., Process],
) -> None:
    counters = []
    for name, rates in (("fraud", {"eu": GOOD, "us": BAD}), ("churn", {"eu": BAD, "us": GOOD})):
        for region, (flagged, true_positives) in rates.items():
            labels = {"model": name, "version": f"{name}-v1", "region": region}
            counters.append({"name": "fraud_flagged_total", "labels": labels, "rate": flagged})
            counters.append(
                {"name": "fraud_true_positives_total", "labels": labels, "rate": true_positives}
            )
    served = exporter("exporter", {"counters": counters})
    prom = prometheus(scrape_config({"models": served.address}))
    by = "model, version, region"
    kube.create(
        Resource(GROUP, VERSION, "metrictemplates"),
        namespace,
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "MetricTemplate",
            "metadata": {"name": "precision"},
            "spec": {
                # $models: the Models this query serves (fraud and churn), not the fleet.
                "query": f"sum by ({by}) (increase(fraud_true_positives_total"
                '{model=~"$models"}[$window]))'
                f' / sum by ({by}) (increase(fraud_flagged_total{{model=~"$models"}}'
                "[$window]))",
                "groupBy": ["model", "version", "region"],
            },
        },
    )
    world = World(
        kube,
        namespace,
        tmp_path,
        served,
        prom,
        operator,
        {
            "slices": slices("eu", "us"),
            "metrics": [
                {
                    "name": "precision",
                    "templateRef": {"name": "precision"},
                    "objective": {"min": 0.8},
                    "window": "5s",
                }
            ],
        },
    )
    churn = model(
        {
            "slices": slices("eu", "us"),
            "metrics": [
                {
                    "name": "precision",
                    "templateRef": {"name": "precision"},
                    "objective": {"min": 0.8},
                    "window": "5s",
                }
            ],
        }
    )
    churn["metadata"]["name"] = "churn"
    kube.create(MODELS, namespace, churn)
    kube.create(
        MODEL_VERSIONS,
        namespace,
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ModelVersion",
            "metadata": {"name": "churn-v1"},
            "spec": {"model": "churn", "uri": "s3://m/churn/1"},
        },
    )
    world.await_verdicts({"precision/eu": "pass", "precision/us": "breach"})

    def churn_verdicts() -> dict[str, str]:
        status = (kube.get(MODELS, namespace, "churn") or {}).get("status") or {}
        return {v["slice"]: v["verdict"] for v in status.get("verdicts") or []}

    wait_for(lambda: churn_verdicts() == {"eu": "breach", "us": "pass"}, 60, "churn verdicts")


def test_provider_credentials_come_from_secrets_in_the_operator_namespace(
    kube: Kube,
    namespace: str,
    tmp_path: Path,
    exporter: Callable[[str, dict[str, Any]], Exporter],
    prometheus: Callable[..., PrometheusServer],
    operator: Callable[..., Process],
) -> None:
    served = exporter("exporter-v1", traffic({"eu": GOOD}))
    prom = prometheus(
        scrape_config({"model-v1": served.address}), basic_auth=("modelloop", "s3cret")
    )
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "prometheus-basic"},
        "stringData": {"username": "modelloop", "password": "s3cret"},
    }
    # Where the chart lets the operator read it, by name (localcluster/chart-values.yaml).
    kube.apply(Resource("", "v1", "secrets"), OPERATOR_NAMESPACE, secret)
    providers = tmp_path / "providers.yaml"
    providers.write_text(
        yaml.safe_dump(
            {
                "providers": [
                    {"name": "test", "url": prom.url, "basicAuth": {"secret": "prometheus-basic"}},
                    {"name": "unauthorised", "url": prom.url},
                    {"name": "missing", "url": prom.url, "bearerToken": {"secret": "absent"}},
                ]
            }
        )
    )
    operator(f"--providers={providers}")
    metric = PRECISION | {"minSamples": 0}
    for name, provider in (("fraud", "test"), ("plain", "unauthorised"), ("lost", "missing")):
        spec = {"slices": slices("eu"), "metrics": [metric], "metricsProvider": provider}
        create_served_model(kube, namespace, name, spec)

    def verdict(name: str) -> tuple[str, str]:
        status = (kube.get(MODELS, namespace, name) or {}).get("status") or {}
        found = [(v["verdict"], v.get("reason", "")) for v in status.get("verdicts") or []]
        return found[0] if found else ("", "")

    wait_for(lambda: verdict("fraud")[0] == "pass", 60, "a verdict through basic auth")
    wait_for(lambda: "401" in verdict("plain")[1], 60, "the unauthorised provider refused")
    wait_for(
        lambda: (
            verdict("lost")[1] == f"provider missing: Secret {OPERATOR_NAMESPACE}/absent not found"
        ),
        60,
        "the missing Secret named",
    )
