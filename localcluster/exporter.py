"""A model server's metrics, played by the harness: a real HTTP exporter process.

``python -m localcluster.exporter PORT STATE.json`` serves /metrics with counters
and histograms whose *rates* the test controls by rewriting the state file: on
every scrape each counter grows by rate x elapsed seconds, each histogram by its
per-bucket observation rates, so ``increase()`` and ``rate()`` over a window
show exactly the values the test chose, and counters never go backwards.

State file::

    {"counters": [{"name": "fraud_flagged_total", "labels": {"region": "eu"}, "rate": 10}],
     "histograms": [{"name": "feature_amount", "labels": {}, "bounds": [1, 10, 100],
                     "rates": [5, 3, 1, 0]}]}   # one rate per bucket, the last one for +Inf
"""

import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from localcluster.processes import Process, free_port, wait_healthy


def write_state(path: Path, state: dict[str, Any]) -> None:
    """Atomically replace the exporter's state (it never reads a half-written file)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, path)


def _key(entry: dict[str, Any]) -> tuple[str, tuple[tuple[str, str], ...]]:
    return entry["name"], tuple(sorted(entry.get("labels", {}).items()))


@dataclass
class _Integrator:
    """Totals that grow at the state's rates."""

    path: Path
    state: dict[str, Any] = field(default_factory=dict)
    mtime: float = -1.0
    last: float = field(default_factory=time.monotonic)
    counters: dict[Any, float] = field(default_factory=dict)
    buckets: dict[Any, list[float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def advance(self) -> None:
        with self.lock:
            now = time.monotonic()
            elapsed, self.last = now - self.last, now
            for entry in self.state.get("counters", []):
                key = _key(entry)
                self.counters[key] = self.counters.get(key, 0.0) + entry["rate"] * elapsed
            for entry in self.state.get("histograms", []):
                key = _key(entry)
                totals = self.buckets.setdefault(key, [0.0] * len(entry["rates"]))
                for i, rate in enumerate(entry["rates"]):
                    totals[i] += rate * elapsed
            mtime = self.path.stat().st_mtime if self.path.exists() else -1.0
            if mtime != self.mtime:
                self.mtime = mtime
                self.state = json.loads(self.path.read_text()) if mtime >= 0 else {}


class _StateCollector(Collector):
    def __init__(self, integrator: _Integrator) -> None:
        self.integrator = integrator

    def collect(self) -> Iterator[CounterMetricFamily | HistogramMetricFamily]:
        self.integrator.advance()
        state = self.integrator.state
        counters: dict[str, CounterMetricFamily] = {}
        for entry in state.get("counters", []):
            labels = entry.get("labels", {})
            name = entry["name"].removesuffix("_total")
            family = counters.setdefault(
                name, CounterMetricFamily(name, "test counter", labels=sorted(labels))
            )
            value = self.integrator.counters.get(_key(entry), 0.0)
            family.add_metric([labels[k] for k in sorted(labels)], value)
        yield from counters.values()
        histograms: dict[str, HistogramMetricFamily] = {}
        for entry in state.get("histograms", []):
            labels = entry.get("labels", {})
            histogram = histograms.setdefault(
                entry["name"],
                HistogramMetricFamily(entry["name"], "test histogram", labels=sorted(labels)),
            )
            per_bucket = self.integrator.buckets.get(_key(entry), [0.0] * len(entry["rates"]))
            cumulative, running = [], 0.0
            for bound, count in zip([*entry["bounds"], "+Inf"], per_bucket, strict=True):
                running += count
                cumulative.append((str(float(bound)) if bound != "+Inf" else "+Inf", running))
            histogram.add_metric([labels[k] for k in sorted(labels)], cumulative, sum_value=0.0)
        yield from histograms.values()


class Exporter:
    """The exporter as a child process of the test, on its own port."""

    def __init__(self, workdir: Path, name: str, state: dict[str, Any]) -> None:
        self.state_file = workdir / f"{name}.json"
        write_state(self.state_file, state)
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        argv = [
            sys.executable,
            "-m",
            "localcluster.exporter",
            str(self.port),
            str(self.state_file),
        ]
        self.process = Process(name, argv, workdir, cwd=Path(__file__).parents[1])
        wait_healthy(self.process, f"http://{self.address}/metrics", 30)

    def update(self, state: dict[str, Any]) -> None:
        write_state(self.state_file, state)

    def stop(self) -> None:
        self.process.stop()


def main(argv: list[str]) -> None:
    port, state = int(argv[0]), Path(argv[1])
    registry = CollectorRegistry()
    registry.register(_StateCollector(_Integrator(state)))
    start_http_server(port, addr="127.0.0.1", registry=registry)
    threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv[1:])
