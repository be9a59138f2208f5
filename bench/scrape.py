"""``make bench-scrape``: what one scrape of the operator's /metrics costs per series,
streamed (``monitoring/exposition.py``, as the operator serves it) and rendered whole by
prometheus-client's ``generate_latest`` (as it served it before): CPU per series, the
memory a scrape holds at its peak, the bytes per series (docs/metrics.md).

The series are the per-Model families of a fleet: ``--models`` Models x 2 versions x
5 metrics x 2 slices, each check with a value, samples and coverage (7 series), in
namespace ``team-payments``, Models named ``fraud-model-00042``.

    python -m bench.scrape               # 715 Models: about 100 000 series
    python -m bench.scrape --short       # CI: 20 Models
"""

import argparse
import gc
import json
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import asdict, dataclass

from prometheus_client import generate_latest

from modelloop.api.vocabulary import VerdictName
from modelloop.monitoring import exposition
from modelloop.monitoring.evaluate import Evaluated
from modelloop.monitoring.plan import SeriesKey
from modelloop.monitoring.telemetry import Telemetry

NAMESPACE = "team-payments"
REPEATS = 3


@dataclass(frozen=True)
class Way:
    """One way of rendering a scrape."""

    seconds_per_series_us: float  # the best of REPEATS, per series
    peak_mib: float  # the most a scrape held at once (tracemalloc)
    bytes_per_series: float


@dataclass(frozen=True)
class Figures:
    models: int
    series: int
    streamed: Way
    generate_latest: Way


def filled(models: int) -> Telemetry:
    telemetry = Telemetry()
    for m in range(models):
        name = f"fraud-model-{m:05d}"
        telemetry.record(
            NAMESPACE,
            name,
            [
                Evaluated(
                    SeriesKey("metric", f"metric-{k}", f"slice-{s}", f"{name}-v{v}"),
                    VerdictName.PASS,
                    0.91,
                    1200.0,
                    coverage=0.7,
                )
                for v in (1, 2)
                for k in range(5)
                for s in range(2)
            ],
        )
    return telemetry


def measure(scrape: Callable[[], int], series: int) -> Way:
    size = scrape()  # a first scrape warms what is cached
    best = float("inf")
    for _ in range(REPEATS):
        gc.collect()
        started = time.perf_counter()
        scrape()
        best = min(best, time.perf_counter() - started)
    tracemalloc.start()
    scrape()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return Way(round(best / series * 1e6, 2), round(peak / 2**20, 2), round(size / series, 1))


def run(models: int) -> Figures:
    telemetry = filled(models)
    registry = telemetry.registry
    series = int(registry.get_sample_value("modelloop_metrics_series") or 0)

    def streamed() -> int:
        return sum(len(chunk) for chunk in exposition.body(registry.collectors()))

    def whole() -> int:
        return len(generate_latest(registry))

    return Figures(models, series, measure(streamed, series), measure(whole, series))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scrape", description=__doc__)
    parser.add_argument("--models", type=int, default=715, help="Models (default 715)")
    parser.add_argument("--short", action="store_true", help="CI: 20 Models")
    args = parser.parse_args(argv)
    figures = run(20 if args.short else args.models)
    print(json.dumps(asdict(figures), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
