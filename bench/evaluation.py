"""Benchmark of the evaluation loop at scale (``make bench``).

For 1, 100 and 1000 Models x 5 metrics x 10 slices it backfills a real Prometheus
(``promtool tsdb create-blocks-from openmetrics``) with counters for every model,
version and slice, creates the Models on a real API server, and runs the
operator's evaluation cycle in this process: a first cycle (every verdict is new,
so every Model's status is patched) and a steady cycle (nothing changed: no
PATCH). It reports Prometheus requests per cycle, operator CPU ms per
model-cycle, the wall time of a cycle, RSS and status PATCHes per cycle, and it
asserts the verdict counts the data implies, so it cannot pass on empty data.

The process runs with the operator's garbage-collector thresholds
(modelloop.gc_tuning), as ``modelloop run`` does.

The five metrics come from MetricTemplates with ``groupBy``: the way to run
1000 Models is one query per template for all of them. ``--metrics inline`` writes
them into each Model instead (one query per Model and metric, as a Model written by
hand has): it measures what each Model's own requests cost.
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from localcluster import binaries
from localcluster.apply import install_crds
from localcluster.controlplane import LocalControlPlane
from localcluster.prometheus import PrometheusServer

from modelloop import gc_tuning
from modelloop.api.resources import MODELS
from modelloop.api.vocabulary import GROUP, VERSION
from modelloop.kube.rest import Kube, Resource
from modelloop.monitoring.evaluator import Evaluator, WatchCache
from modelloop.monitoring.providers import Credentials, ProviderConfig
from modelloop.monitoring.source import PrometheusSource
from modelloop.monitoring.telemetry import Telemetry

TEMPLATES = Resource(GROUP, VERSION, "metrictemplates")
NAMESPACES = Resource("", "v1", "namespaces")
METRICS = 5
SLICES = 10
STEP_SECONDS = 30
HISTORY_SECONDS = 330
GOOD, BAD = 0.95, 0.5  # correct / predictions; slice r0 of every metric is BAD
RATE = 2.0  # predictions per second per series: 600 per 5m window
GROUP_BY = ["namespace", "model", "version", "region"]
REPO = Path(__file__).parents[1]


@dataclass
class CycleFigures:
    models: int
    metrics: str  # grouped (templates with groupBy) or inline (each Model's own queries)
    cycle: str
    prometheus_requests: float
    status_patches: float
    wall_seconds: float
    cpu_ms_per_model: float
    rss_mib: float
    verdicts_pass: int
    verdicts_breach: int


def openmetrics(namespaces: dict[str, int], end: int) -> str:
    """Counters for every model, slice and metric, ending at ``end`` (seconds)."""
    lines = []
    for family, share in (("bench_predictions", None), ("bench_correct", "ratio")):
        lines.append(f"# TYPE {family} counter")
        for namespace, count in namespaces.items():
            for m in range(count):
                model = f"m{m:04d}"
                for k in range(METRICS):
                    for r in range(SLICES):
                        ratio = (BAD if r == 0 else GOOD) if share else 1.0
                        labels = (
                            f'namespace="{namespace}",model="{model}",version="{model}-v1",'
                            f'region="r{r}",metric="q{k}"'
                        )
                        for t in range(end - HISTORY_SECONDS, end + 1, STEP_SECONDS):
                            value = RATE * ratio * (t - (end - HISTORY_SECONDS))
                            lines.append(f"{family}_total{{{labels}}} {value:.1f} {t}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def template(k: int) -> dict[str, Any]:
    by = ", ".join(GROUP_BY)
    # Only the Models the query serves: a shard's, not the fleet's (docs/sharding.md).
    selector = f'{{metric="q{k}", model=~"$models", namespace=~"$namespaces"}}[$window]'
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "MetricTemplate",
        "metadata": {"name": f"quality-{k}"},
        "spec": {
            "query": f"sum by ({by}) (increase(bench_correct_total{selector}))"
            f" / sum by ({by}) (increase(bench_predictions_total{selector}))",
            "sampleQuery": f"sum by ({by}) (increase(bench_predictions_total{selector}))",
            "groupBy": GROUP_BY,
        },
    }


def quality_metrics(count: int) -> list[dict[str, Any]]:
    """A Model's metrics, one per grouped template ``quality-K``."""
    return [
        {
            "name": f"quality-{k}",
            "templateRef": {"name": f"quality-{k}"},
            "objective": {"min": 0.8},
            "minSamples": 100,
            "window": "5m",
        }
        for k in range(count)
    ]


def inline_metrics(count: int, namespace: str) -> list[dict[str, Any]]:
    """The same metrics, each written into the Model: its own query per metric."""
    metrics = []
    for k, metric in enumerate(quality_metrics(count)):
        selector = (
            f'metric="q{k}", namespace="{namespace}", model="$model", version="$version", $slice'
        )
        del metric["templateRef"]
        metric["query"] = (
            f"sum(increase(bench_correct_total{{{selector}}}[$window]))"
            f" / sum(increase(bench_predictions_total{{{selector}}}[$window]))"
        )
        metric["sampleQuery"] = f"sum(increase(bench_predictions_total{{{selector}}}[$window]))"
        metrics.append(metric)
    return metrics


def model(name: str, metrics: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Model",
        "metadata": {"name": name},
        "spec": {
            "metricsProvider": "bench",
            "serving": {"template": {"spec": {"containers": [{"name": "s", "image": "x:1"}]}}},
            "slices": [
                {"name": f"r{r}", "matchLabels": {"region": f"r{r}"}} for r in range(SLICES)
            ],
            "metrics": metrics,
        },
    }


def populate(kube: Kube, namespace: str, count: int, inline: bool) -> None:
    kube.create(
        NAMESPACES, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
    )
    for k in range(METRICS):
        kube.create(TEMPLATES, namespace, template(k))
    metrics = inline_metrics(METRICS, namespace) if inline else quality_metrics(METRICS)
    for m in range(count):
        name = f"m{m:04d}"
        kube.create(MODELS, namespace, model(name, metrics))
        kube.merge_patch(
            MODELS, namespace, name, {"status": {"stableVersion": f"{name}-v1"}}, sub="status"
        )


def watch_cache(kube: Kube, namespace: str) -> WatchCache:
    """What the kopf watch would hold: a list stands in for it here."""
    cache = WatchCache()
    for body in kube.list(MODELS, namespace):
        body |= {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Model"}
        cache.models[(namespace, body["metadata"]["name"])] = body
    for body in kube.list(TEMPLATES, namespace):
        cache.templates[(namespace, body["metadata"]["name"])] = body
    return cache


def verdict_counts(kube: Kube, namespace: str) -> tuple[int, int]:
    verdicts = [
        v["verdict"]
        for m in kube.list(MODELS, namespace)
        for v in (m.get("status") or {}).get("verdicts") or []
    ]
    return verdicts.count("pass"), verdicts.count("breach")


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_cycle(
    evaluator: Evaluator,
    telemetry: Telemetry,
    cache: WatchCache,
    count: int,
    name: str,
    kube: Kube,
    namespace: str,
    metrics: str,
) -> CycleFigures:
    requests = telemetry.requests.labels("bench", "success")
    errors = telemetry.requests.labels("bench", "error")
    before = (requests._value.get(), errors._value.get(), telemetry.patches._value.get())
    cpu, wall = time.process_time(), time.perf_counter()
    evaluator.due.clear()
    evaluated = evaluator.tick(cache)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert evaluated == count, (evaluated, count)
    sent = requests._value.get() + errors._value.get() - before[0] - before[1]
    passed, breached = verdict_counts(kube, namespace)
    return CycleFigures(
        count,
        metrics,
        name,
        sent,
        telemetry.patches._value.get() - before[2],
        wall,
        1000 * cpu / count,
        rss_mib(),
        passed,
        breached,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default="1,100,1000")
    parser.add_argument("--out", default=str(REPO / ".tmp" / "bench" / "evaluation.json"))
    parser.add_argument(
        "--metrics",
        choices=["grouped", "inline"],
        default="grouped",
        help="grouped: MetricTemplates with groupBy, one query each for every Model "
        "(default); inline: each Model's own queries",
    )
    args = parser.parse_args(argv)
    gc_tuning.tune()  # as `modelloop run` does
    sizes = [int(n) for n in args.models.split(",")]
    namespaces = {f"bench-{n}": n for n in sizes}
    work = Path(tempfile.mkdtemp(prefix="modelloop-bench-"))
    figures: list[CycleFigures] = []
    cluster = LocalControlPlane(work / "cluster").start()
    prometheus = None
    try:
        kube = cluster.admin.kube()
        install_crds(kube)
        started = time.perf_counter()
        for namespace, count in namespaces.items():
            populate(kube, namespace, count, args.metrics == "inline")
        print(f"created {sum(sizes)} Models in {time.perf_counter() - started:.0f}s", flush=True)

        data = work / "prometheus" / "data"
        data.mkdir(parents=True)
        source = work / "series.om"
        source.write_text(openmetrics(namespaces, int(time.time())))
        promtool = binaries.prometheus().with_name("promtool")
        started = time.perf_counter()
        subprocess.run(
            [str(promtool), "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
            check=True,
            capture_output=True,
        )
        print(
            f"backfilled {source.stat().st_size >> 20} MiB of OpenMetrics in "
            f"{time.perf_counter() - started:.0f}s",
            flush=True,
        )
        prometheus = PrometheusServer(work / "prometheus", {"global": {}})

        telemetry = Telemetry()
        config = ProviderConfig(name="bench", url=prometheus.url, timeout="30s")
        evaluator = Evaluator(
            kube, {"bench": PrometheusSource(config, Credentials(), telemetry)}, telemetry
        )
        try:
            for namespace, count in namespaces.items():
                first = run_cycle(
                    evaluator,
                    telemetry,
                    watch_cache(kube, namespace),
                    count,
                    "first",
                    kube,
                    namespace,
                    args.metrics,
                )
                steady = run_cycle(
                    evaluator,
                    telemetry,
                    watch_cache(kube, namespace),
                    count,
                    "steady",
                    kube,
                    namespace,
                    args.metrics,
                )
                for f in (first, steady):
                    expected = (count * METRICS * (SLICES - 1), count * METRICS)
                    assert (f.verdicts_pass, f.verdicts_breach) == expected, (f, expected)
                    figures.append(f)
                    print(_row(f), flush=True)
        finally:
            evaluator.close()
    finally:
        if prometheus is not None:
            prometheus.stop()
        cluster.stop()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps([asdict(f) for f in figures], indent=2))
    print(
        f"\n{'models':>6} {'metrics':>7} {'cycle':>6} {'requests':>8} {'patches':>7} {'wall s':>7} "
        f"{'cpu ms/model':>12} {'rss MiB':>7}"
    )
    for f in figures:
        print(_row(f))
    print(f"figures in {out}")
    return 0


def _row(f: CycleFigures) -> str:
    return (
        f"{f.models:>6} {f.metrics:>7} {f.cycle:>6} {f.prometheus_requests:>8.0f} "
        f"{f.status_patches:>7.0f} {f.wall_seconds:>7.2f} {f.cpu_ms_per_model:>12.2f} "
        f"{f.rss_mib:>7.0f}"
    )


if __name__ == "__main__":
    sys.exit(main())
