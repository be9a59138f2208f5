"""The evaluation world the tests share: a fraud model whose stable version's
exporter process serves counters the test controls, a real Prometheus scraping
it, and the operator pointed at that Prometheus."""

import os
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from localcluster.exporter import Exporter
from localcluster.processes import Process, free_port
from localcluster.prometheus import PrometheusServer
from localcluster.waiting import wait_for

from modelloop.api.resources import MODEL_VERSIONS, MODELS
from modelloop.api.vocabulary import GROUP, VERSION
from modelloop.kube.rest import EVENTS, Kube

MODEL = "fraud"
STABLE = "fraud-v1"
# The served pods' image: kwok "runs" any image; on a cluster with real kubelets
# (make e2e-kind) it must exist there, e.g. registry.k8s.io/pause:3.10.
SERVING_IMAGE = os.environ.get("MODELLOOP_TEST_SERVING_IMAGE", "x:1")
PRECISION = {
    "name": "precision",
    "query": 'sum(increase(fraud_true_positives_total{version="$version", $slice}[$window]))'
    ' / sum(increase(fraud_flagged_total{version="$version", $slice}[$window]))',
    "sampleQuery": 'sum(increase(fraud_flagged_total{version="$version", $slice}[$window]))',
    "minSamples": 20,
    "objective": {"min": 0.8},
    "window": "5s",
}
GOOD = (20.0, 19.0)  # flagged/s, true positives/s: precision 0.95, ~100 samples per window
BAD = (20.0, 10.0)  # precision 0.5
SPARSE = (1.0, 1.0)  # ~5 samples per window: under minSamples


def slices(*regions: str) -> list[dict[str, Any]]:
    return [{"name": r, "matchLabels": {"region": r}} for r in regions]


def traffic(rates: dict[str, tuple[float, float]], version: str = STABLE) -> dict[str, Any]:
    counters = []
    for region, (flagged, true_positives) in rates.items():
        labels = {"version": version, "region": region}
        counters.append({"name": "fraud_flagged_total", "labels": labels, "rate": flagged})
        counters.append(
            {"name": "fraud_true_positives_total", "labels": labels, "rate": true_positives}
        )
    return {"counters": counters}


def model(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Model",
        "metadata": {"name": MODEL},
        "spec": {
            "metricsProvider": "test",
            "evaluationInterval": "1s",
            "serving": {
                "template": {"spec": {"containers": [{"name": "s", "image": SERVING_IMAGE}]}}
            },
            **spec,
        },
    }


def create_served_model(kube: Kube, namespace: str, name: str, spec: dict[str, Any]) -> None:
    """A Model like the World's, named ``name``, with ``spec``, and its first version."""
    body = model(spec)
    body["metadata"]["name"] = name
    kube.create(MODELS, namespace, body)
    kube.create(
        MODEL_VERSIONS,
        namespace,
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ModelVersion",
            "metadata": {"name": f"{name}-v1"},
            "spec": {"model": name, "uri": f"s3://m/{name}"},
        },
    )


class OperatorWorld:
    """The operator pointed at a test Prometheus, and what tests read of the Model it runs."""

    def __init__(
        self,
        kube: Kube,
        namespace: str,
        tmp_path: Path,
        prometheus_url: str,
        operator: Callable[..., Process],
        model_name: str,
        metrics_port: int | None = None,
        providers: Sequence[Mapping[str, Any]] = (),
        operator_args: Sequence[str] = (),
        **provider: str,
    ) -> None:
        """``provider``: more settings of the one provider, ``test`` (e.g. timeout);
        ``providers``: more providers beside it; ``operator_args``: more operator flags
        (e.g. --leader-elect); ``metrics_port``: where the operator serves /metrics
        (default: a free port)."""
        self.kube, self.namespace, self.model_name = kube, namespace, model_name
        configured = [{"name": "test", "url": prometheus_url, **provider}, *map(dict, providers)]
        providers_file = tmp_path / "providers.yaml"
        providers_file.write_text(yaml.safe_dump({"providers": configured}))
        self.metrics_port = metrics_port or free_port()
        self._start_operator = operator
        self._operator_args = (f"--providers={providers_file}", *operator_args)
        self.operator = self.start_replica(self.metrics_port)

    def start_replica(self, metrics_port: int | None = None) -> Process:
        """One more operator process with the same configuration (with --leader-elect, a
        replica of an HA pair), serving /metrics on ``metrics_port`` (default: a free port)."""
        address = f"--metrics-address=127.0.0.1:{metrics_port or free_port()}"
        return self._start_operator(*self._operator_args, address)

    def start_operator_again(self) -> None:
        """After a crash: a fresh operator process with the same configuration."""
        self.operator = self.start_replica(self.metrics_port)

    def status(self) -> dict[str, Any]:
        return (self.kube.get(MODELS, self.namespace, self.model_name) or {}).get("status") or {}

    def condition(self, type_: str) -> dict[str, Any]:
        return next((c for c in self.status().get("conditions") or [] if c["type"] == type_), {})

    def events(self, reason: str) -> list[str]:
        return [
            e["message"]
            for e in self.kube.list(EVENTS, self.namespace)
            if e["reason"] == reason and e["involvedObject"]["name"] == self.model_name
        ]

    def await_events(self, reason: str, timeout: float = 30) -> list[str]:
        """Events are posted after the status write they report: wait for them."""
        found: list[str] = wait_for(lambda: self.events(reason), timeout, f"a {reason} Event")
        return found

    def operator_metrics(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text: str = response.read().decode()
            return text


class World(OperatorWorld):
    """An exporter for the stable version, a Prometheus scraping it and the operator."""

    def __init__(
        self,
        kube: Kube,
        namespace: str,
        tmp_path: Path,
        exporter: Exporter,
        prometheus: PrometheusServer,
        operator: Callable[..., Process],
        spec: dict[str, Any],
        **options: Any,
    ) -> None:
        """``options``: more settings of the operator (see OperatorWorld)."""
        self.exporter, self.prometheus = exporter, prometheus
        super().__init__(
            kube, namespace, tmp_path, prometheus.url, operator, MODEL, timeout="2s", **options
        )
        kube.create(MODELS, namespace, model(spec))
        kube.create(
            MODEL_VERSIONS,
            namespace,
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "ModelVersion",
                "metadata": {"name": STABLE},
                "spec": {"model": MODEL, "uri": "s3://m/fraud/1"},
            },
        )

    def verdicts(self) -> dict[str, str]:
        return {
            f"{v['metric']}/{v['slice']}": v["verdict"] for v in self.status().get("verdicts") or []
        }

    def await_verdicts(self, expected: dict[str, str], timeout: float = 60) -> None:
        wait_for(lambda: self.verdicts() == expected, timeout, f"verdicts {expected}")


def sample(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if (line.startswith(name + "{") or line.startswith(name + " ")) and all(
            f'{k}="{v}"' in line for k, v in labels.items()
        ):
            return float(line.rsplit(" ", 1)[1])
    return None
