"""``make demo`` with ``KUBECONFIG`` set: the operator on that cluster, observing an
example Model.

The CRDs and the chart's ServiceAccount and RBAC are applied to the cluster; the
operator runs as a local subprocess with that identity; a Prometheus scrapes simulated
traffic of the example's first version. The demo applies examples/fraud-detector.yaml
and its first version, prints the Model as ``kubectl get models`` would and the first
verdicts, and keeps running until Ctrl-C (``--once`` stops once they are printed).
"""

import argparse
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from localcluster import binaries
from localcluster.apply import apply, apply_files, install_crds, load
from localcluster.chart import install_operator_identity
from localcluster.controlplane import ExternalCluster
from localcluster.exporter import Exporter
from localcluster.operator_process import start_operator
from localcluster.prometheus import PrometheusServer, scrape_config
from localcluster.waiting import wait_for
from modelloop.api.resources import MODELS
from modelloop.conditions import find
from modelloop.kube.rest import Kube, KubeError, Resource
from modelloop.plugin import views

REPO = Path(__file__).parents[2]
WORKDIR = REPO / ".tmp" / "demo-observe"
NAMESPACE = "modelloop-demo"
EXAMPLES = [REPO / "examples" / "fraud-detector.yaml", REPO / "examples" / "fraud-detector-v1.yaml"]
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"


def table(kube: Kube, resource: Resource, namespace: str) -> str:
    """The resource as ``kubectl get`` prints it: the CRD's printer columns."""
    result: dict[str, Any] = kube.request("GET", resource.path(namespace), accept=TABLE)
    columns = [c["name"].upper() for c in result["columnDefinitions"] if c.get("priority", 0) == 0]
    rows = [
        ["" if c is None else str(c) for c in row["cells"][: len(columns)]]
        for row in result["rows"]
    ]
    return views.table(columns, rows)


def fraud_traffic(version: str) -> dict[str, Any]:
    """What fraud-detector's servers would export: per region and account age, flagged
    and true-positive counters and a latency histogram. New users (age < 10 days) get
    worse precision, which examples/fraud-detector.yaml flags after its 15m 'for'."""
    counters, histograms = [], []
    for region, age, flagged, precision in (
        ("eu", "400", 6.0, 0.93),
        ("us", "400", 8.0, 0.9),
        ("eu", "3", 2.0, 0.7),
        ("us", "5", 2.0, 0.72),
    ):
        labels = {"version": version, "region": region, "account_age_days": age}
        counters.append({"name": "fraud_flagged_total", "labels": labels, "rate": flagged})
        counters.append(
            {"name": "fraud_true_positives_total", "labels": labels, "rate": flagged * precision}
        )
        histograms.append(
            {
                "name": "http_request_duration_seconds",
                "labels": labels,
                "bounds": [0.05, 0.1, 0.25, 0.5],
                "rates": [30, 15, 4.9, 0.1, 0.0],
            }
        )
    amount = {
        "name": "fraud_feature_amount",
        "labels": {"region": "eu"},
        "bounds": [10, 100, 1000],
        "rates": [20, 30, 10, 1],
    }
    return {"counters": counters, "histograms": [*histograms, amount]}


def verdicts(kube: Kube) -> list[dict[str, Any]]:
    model = kube.get(MODELS, NAMESPACE, "fraud-detector") or {}
    found: list[dict[str, Any]] = (model.get("status") or {}).get("verdicts") or []
    return found


def verdict_table(entries: list[dict[str, Any]]) -> str:
    header = ["KIND", "NAME", "SLICE", "VERSION", "VERDICT", "VALUE", "SAMPLES", "REASON"]
    rows = []
    for v in entries:
        value, samples = v.get("value"), v.get("samples")
        rows.append(
            [
                v["kind"],
                v["metric"],
                v["slice"],
                v["version"],
                v["verdict"],
                "" if value is None else f"{value:.4g}",
                "" if samples is None else f"{samples:.0f}",
                v.get("reason", ""),
            ]
        )
    return views.table(header, rows)


def ready(kube: Kube) -> bool:
    model = kube.get(MODELS, NAMESPACE, "fraud-detector") or {}
    found = find((model.get("status") or {}).get("conditions") or [], "Ready")
    return found is not None and found["status"] == "True"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--once", action="store_true", help="stop once the example Model is Ready")
    args = parser.parse_args(argv)

    cluster = ExternalCluster(Path(os.environ["KUBECONFIG"]))
    shutil.rmtree(WORKDIR, ignore_errors=True)
    WORKDIR.mkdir(parents=True)
    operator = None
    servers: list[Exporter | PrometheusServer] = []
    try:
        kube = cluster.admin.kube()
        print("installing CRDs:", ", ".join(install_crds(kube)))
        install_operator_identity(cluster, WORKDIR)
        print(f"the operator runs as {cluster.operator.user} (the chart's RBAC)")
        apply(kube, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
        traffic = Exporter(WORKDIR, "fraud-detector-v1-metrics", fraud_traffic("fraud-detector-v1"))
        prometheus = PrometheusServer(
            WORKDIR / "prometheus", scrape_config({"fraud-detector": traffic.address}, "5s")
        )
        servers += [traffic, prometheus]
        print(f"Prometheus at {prometheus.url}, scraping simulated traffic of fraud-detector-v1")
        providers = WORKDIR / "providers.yaml"
        providers.write_text(
            yaml.safe_dump({"providers": [{"name": "default", "url": prometheus.url}]})
        )
        operator = start_operator(
            cluster.operator.kubeconfig,
            WORKDIR / "logs",
            [NAMESPACE],
            args=(f"--providers={providers}", "--metrics-address=127.0.0.1:8000"),
        )
        print(f"operator running (pid {operator.pid}), log: {operator.log}")
        apply_files(kube, EXAMPLES, NAMESPACE)
        applied = [f"{m['kind']}/{m['metadata']['name']}" for p in EXAMPLES for m in load(p)]
        print(f"applied {', '.join(applied)} in namespace {NAMESPACE}")
        running = operator

        def model_ready() -> bool:
            running.check_running()
            return ready(kube)

        wait_for(model_ready, 120, "the example Model Ready")
        print("\n" + table(kube, MODELS, NAMESPACE) + "\n")

        def evaluated() -> bool:
            running.check_running()
            metrics = [v for v in verdicts(kube) if v["kind"] == "metric"]
            return len(metrics) == 6 and all(v["verdict"] != "inconclusive" for v in metrics)

        print("waiting for Prometheus to hold two scrapes, then for an evaluation ...")
        wait_for(evaluated, 120, "conclusive metric verdicts")
        print(verdict_table(verdicts(kube)) + "\n")
        print("operator metrics: http://127.0.0.1:8000/metrics (modelloop_metric_value, ...)")
        print(f"explore it: export KUBECONFIG={cluster.admin.kubeconfig}")
        built = binaries.control_plane_dir() / "kubectl"
        kubectl = built if built.exists() else "kubectl"
        print(f"            {kubectl} get models,modelversions,deployments,services -n {NAMESPACE}")
        if args.once:
            return 0
        print("running; Ctrl-C stops the operator")
        while True:
            time.sleep(5)
            operator.check_running()
    except KeyboardInterrupt:
        return 0
    except (KubeError, AssertionError, RuntimeError) as error:
        print(f"demo failed: {error}", file=sys.stderr)
        if operator is not None:
            print(operator.log_tail(), file=sys.stderr)
        return 1
    finally:
        if operator is not None:
            operator.stop()
        for server in servers:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
