"""``make bench-feedback``: the feedback service's ingest throughput (events per second
per core, in batches and one event at a time), its join latency and the memory a
pending prediction costs, for the embedded SQLite store (docs/feedback.md).

Two parts. ``core``: the service's own code in this process (JSON batch in: parsing,
validation, the store, the counts), timed on this process's CPU clock, then profiled
(cProfile) to say where the time goes. ``http``: ``modelloop feedback`` as a process,
posted to over one keep-alive connection; its CPU time read from /proc, so the
client's cost is not counted.

    python -m bench.feedback              # 200 000 predictions and labels, batches of 1000
    python -m bench.feedback --short      # CI: a few thousand
    python -m bench.feedback --parts core --json
"""

import argparse
import cProfile
import http.client
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from localcluster.feedback import FeedbackService

from modelloop.feedback.config import Settings
from modelloop.feedback.service import Accepted, Feedback
from modelloop.feedback.sqlite_store import SqliteStore
from modelloop.feedback.store import JoinStore

T0 = 1_700_000_000.0
SETTINGS: dict[str, Any] = {
    "attributes": [{"name": "region", "maxValues": 10}, {"name": "device", "maxValues": 10}],
    "capacity": 10_000_000,
}
SHORT = {"events": 5_000, "single": 500, "pending": 5_000}
FULL = {"events": 200_000, "single": 5_000, "pending": 200_000}
PARTS = ("core", "http")
# How each store is opened in this process (a path for its data, the settings).
STORES: dict[str, Callable[[Path, Settings], JoinStore]] = {
    "sqlite": lambda work, s: SqliteStore(
        work / "bench.db", s.horizon.delta.total_seconds(), s.capacity
    ),
}


@dataclass
class Throughput:
    mode: str  # batched (BATCH records a call) or single (one record a call)
    events: int  # predictions + labels
    cpu_seconds: float
    per_core: float  # events per CPU second
    predictions_per_core: float
    labels_per_core: float  # each label joins a waiting prediction
    join_ms_p50: float  # the wall time of a label call, which joins its records
    join_ms_p99: float


@dataclass
class Memory:
    pending: int
    rss_bytes_each: float  # the process's resident memory growth per pending prediction
    disk_bytes_each: float  # the store's files (database and WAL) per pending prediction


@dataclass
class Figures:
    store: str
    batch: int
    core: list[Throughput] = field(default_factory=list)
    memory: Memory | None = None
    http: list[Throughput] = field(default_factory=list)
    profile: list[dict[str, Any]] = field(default_factory=list)


def prediction(i: int) -> dict[str, Any]:
    return {
        "id": f"req-{i:012d}",
        "model": "churn",
        "version": "v7",
        "time": T0 + i * 0.001,
        "attributes": {"region": ("eu", "us", "ap")[i % 3], "device": ("web", "ios")[i % 2]},
        "predicted": "1" if i % 5 else "0",
        "score": (i % 100) / 100,
    }


def label(i: int) -> dict[str, Any]:
    return {"id": f"req-{i:012d}", "label": "1" if i % 4 else "0", "time": T0 + 3600 + i}


def bodies(kind: str, start: int, count: int, batch: int) -> list[bytes]:
    make = prediction if kind == "predictions" else label
    return [
        json.dumps({kind: [make(i) for i in range(s, min(s + batch, start + count))]}).encode()
        for s in range(start, start + count, batch)
    ]


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


def _timed(add: Callable[[bytes, float], Any], posted: list[bytes]) -> tuple[float, list[float]]:
    """CPU seconds of all the calls, and each one's wall milliseconds."""
    walls = []
    cpu = time.process_time()
    for body in posted:
        start = time.perf_counter()
        result = add(body, time.time())
        walls.append((time.perf_counter() - start) * 1000)
        assert isinstance(result, Accepted), result
        assert not result.skipped, result
    return time.process_time() - cpu, walls


def throughput(
    mode: str, n: int, predictions: tuple[float, Any], labels: tuple[float, list[float]]
) -> Throughput:
    (p_cpu, _), (l_cpu, walls) = predictions, labels
    return Throughput(
        mode,
        2 * n,
        round(p_cpu + l_cpu, 3),
        round(2 * n / (p_cpu + l_cpu)),
        round(n / p_cpu),
        round(n / l_cpu),
        round(percentile(walls, 50), 3),
        round(percentile(walls, 99), 3),
    )


def core(store: str, work: Path, n: int, single: int, batch: int) -> list[Throughput]:
    settings = Settings.model_validate(SETTINGS)
    feedback = Feedback(settings, STORES[store](work, settings))
    results = []
    offset = 0
    for mode, count, size in (("batched", n, batch), ("single", single, 1)):
        posted = bodies("predictions", offset, count, size)
        joined = bodies("labels", offset, count, size)
        offset += count
        p = _timed(feedback.add_predictions, posted)
        j = _timed(feedback.add_labels, joined)
        results.append(throughput(mode, count, p, j))
    feedback.store.close()
    return results


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def memory(store: str, work: Path, pending: int, batch: int) -> Memory:
    """The growth from a quarter of ``pending`` predictions waiting to all of them: the
    cost of one more, without what any service holds (its heap, the store's caches)."""
    settings = Settings.model_validate(SETTINGS)
    opened = STORES[store](work, settings)
    feedback = Feedback(settings, opened)
    posted = bodies("predictions", 10**9, pending, batch)
    warm = len(posted) // 4
    for body in posted[:warm]:
        feedback.add_predictions(body, time.time())
    before, waiting = _rss(), opened.pending().predictions
    for body in posted[warm:]:
        feedback.add_predictions(body, time.time())
    added = opened.pending().predictions - waiting
    grown = _rss() - before
    assert opened.pending().predictions == pending
    disk = sum(p.stat().st_size for p in work.glob("bench.db*"))
    opened.close()
    return Memory(pending, round(grown / added, 1), round(disk / pending, 1))


def profile(store: str, work: Path, n: int, batch: int) -> list[dict[str, Any]]:
    """The functions the batched ingest spends its time in, by own time."""
    settings = Settings.model_validate(SETTINGS)
    feedback = Feedback(settings, STORES[store](work, settings))
    posted, joined = bodies("predictions", 0, n, batch), bodies("labels", 0, n, batch)
    profiler = cProfile.Profile()
    profiler.enable()
    for body in posted:
        feedback.add_predictions(body, T0)
    for body in joined:
        feedback.add_labels(body, T0)
    profiler.disable()
    feedback.store.close()
    stats = pstats.Stats(profiler)
    total = sum(row[2] for row in stats.stats.values())  # type: ignore[attr-defined]
    rows = sorted(stats.stats.items(), key=lambda item: -item[1][2])[:12]  # type: ignore[attr-defined]
    return [
        {"function": f"{Path(file).name}:{line}({name})", "share": round(row[2] / total, 3)}
        for (file, line, name), row in rows
    ]


def _server_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def over_http(work: Path, n: int, single: int, batch: int) -> list[Throughput]:
    service = FeedbackService(work / "http", SETTINGS, name="bench-feedback")
    connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=60)
    results = []
    offset = 0
    try:
        for mode, count, size in (("batched", n, batch), ("single", single, 1)):
            measured = []
            for kind in ("predictions", "labels"):
                posted = bodies(kind, offset, count, size)
                before = _server_cpu(service.process.pid)
                walls = []
                for body in posted:
                    start = time.perf_counter()
                    connection.request("POST", f"/v1/{kind}", body=body)
                    response = connection.getresponse()
                    response.read()
                    assert response.status == 200, response.status
                    walls.append((time.perf_counter() - start) * 1000)
                measured.append((_server_cpu(service.process.pid) - before, walls))
            offset += count
            results.append(throughput(f"http {mode}", count, measured[0], measured[1]))
    finally:
        connection.close()
        service.stop()
    return results


def run(args: argparse.Namespace) -> Figures:
    sizes = SHORT if args.short else FULL
    figures = Figures(args.store, args.batch)
    parts = set(args.parts.split(","))
    with tempfile.TemporaryDirectory(prefix="bench-feedback-") as tmp:
        work = Path(tmp)
        if "core" in parts:
            for name in ("throughput", "memory", "profile"):
                (work / name).mkdir()
            figures.memory = memory(args.store, work / "memory", sizes["pending"], args.batch)
            figures.core = core(
                args.store, work / "throughput", sizes["events"], sizes["single"], args.batch
            )
            figures.profile = profile(
                args.store, work / "profile", sizes["events"] // 4, args.batch
            )
        if "http" in parts:
            figures.http = over_http(work, sizes["events"] // 2, sizes["single"], args.batch)
    return figures


def table(figures: Figures) -> str:
    lines = [f"store {figures.store}, batches of {figures.batch}"]
    header = f"{'mode':<14}{'events':>8}{'ev/s/core':>11}{'pred/s':>9}{'label/s':>9}"
    lines += ["", header + f"{'join p50 ms':>13}{'p99 ms':>9}"]
    for t in [*figures.core, *figures.http]:
        lines.append(
            f"{t.mode:<14}{t.events:>8}{t.per_core:>11}{t.predictions_per_core:>9}"
            f"{t.labels_per_core:>9}{t.join_ms_p50:>13}{t.join_ms_p99:>9}"
        )
    if figures.memory:
        m = figures.memory
        lines += [
            "",
            f"{m.pending} pending predictions: {m.rss_bytes_each} B of memory each, "
            f"{m.disk_bytes_each} B on disk each",
        ]
    if figures.profile:
        lines += ["", "where the batched ingest's time goes (own time):"]
        lines += [f"  {row['share']:>6.1%}  {row['function']}" for row in figures.profile]
    return "\n".join(lines)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.feedback", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--short", action="store_true", help="CI: a few thousand events")
    parser.add_argument("--batch", type=int, default=1000, help="records a batch (1000)")
    parser.add_argument("--store", choices=sorted(STORES), default="sqlite")
    parser.add_argument("--parts", default=",".join(PARTS), help="core,http (both)")
    parser.add_argument("--json", action="store_true", help="the figures as JSON")
    args = parser.parse_args(argv)
    unknown = set(args.parts.split(",")) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    figures = run(args)
    print(json.dumps(asdict(figures), indent=2) if args.json else table(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
