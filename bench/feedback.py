"""``make bench-feedback``: the feedback service's ingest throughput (events per second
per core, in batches and one event at a time), its join latency and the memory a
pending prediction costs, for the embedded SQLite store and a real ``redis-server``
(docs/feedback.md).

Two parts. ``core``: the service's own code in this process (JSON batch in: parsing,
validation, the store, the counts) on one store (``--store``), timed on this process's
CPU clock, then profiled (cProfile) to say where the time goes. ``http``: ``modelloop
feedback`` as a process on each store in turn, posted to over one keep-alive
connection; its CPU time read from /proc, so the client's cost is not counted. The
Redis server's CPU is read from /proc too, and reported apart (``+server``): the
service's replicas scale, the server they share does not.

Redis runs with AOF fsynced every second, as durable as the SQLite file
(``synchronous=NORMAL``): both keep what was answered when the process is killed, and
may lose the last second on a power loss.

    python -m bench.feedback              # 200 000 predictions and labels, batches of 1000
    python -m bench.feedback --short      # CI: a few thousand
    python -m bench.feedback --parts core --store redis --json
"""

import argparse
import contextlib
import cProfile
import http.client
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import redis
from localcluster.feedback import FeedbackService
from localcluster.redisserver import RedisServer

from modelloop.feedback.config import Settings
from modelloop.feedback.redis_store import RedisStore
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


class Backend(Protocol):
    """Where a store keeps its data, for the service in this process or as a process."""

    def open(self, settings: Settings) -> JoinStore: ...

    def settings(self) -> dict[str, Any]:
        """The service's ``store`` settings."""
        ...

    def disk_bytes(self) -> int: ...

    def server_bytes(self) -> int:
        """The memory of the store's own server (0: the store is in the process)."""
        ...

    def server_cpu(self) -> float:
        """The CPU seconds of the store's own server so far (0: in the process)."""
        ...


class SqliteBackend:
    def __init__(self, work: Path) -> None:
        self.path = work / "bench.db"

    def open(self, settings: Settings) -> JoinStore:
        return SqliteStore(self.path, settings.horizon.delta.total_seconds(), settings.capacity)

    def settings(self) -> dict[str, Any]:
        return {"path": str(self.path)}

    def disk_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.path.parent.glob(f"{self.path.name}*"))

    def server_bytes(self) -> int:
        return 0

    def server_cpu(self) -> float:
        return 0.0


class RedisBackend:
    def __init__(self, server: RedisServer) -> None:
        self.server = server
        self.client = redis.Redis.from_url(server.url)
        self.client.config_set("appendfsync", "everysec")  # the module's docstring says why

    def open(self, settings: Settings) -> JoinStore:
        return RedisStore(
            self.server.url, settings.horizon.delta.total_seconds(), settings.capacity
        )

    def settings(self) -> dict[str, Any]:
        return {"redis": {"url": self.server.url}}

    def disk_bytes(self) -> int:
        return sum(p.stat().st_size for p in (self.server.workdir / "appendonlydir").iterdir())

    def server_bytes(self) -> int:
        used: int = self.client.info("memory")["used_memory"]
        return used

    def server_cpu(self) -> float:
        return _cpu(self.server.process.pid)


@contextlib.contextmanager
def backend(store: str, work: Path) -> Iterator[Backend]:
    """A fresh ``store`` with its data under ``work`` (for Redis: a server of its own)."""
    work.mkdir(parents=True)
    if store == "sqlite":
        yield SqliteBackend(work)
        return
    server = RedisServer(work)
    try:
        opened = RedisBackend(server)
        try:
            yield opened
        finally:
            opened.client.close()
    finally:
        server.stop()


STORES = ("sqlite", "redis")


@dataclass
class Throughput:
    mode: str  # batched (BATCH records a call) or single (one record a call)
    store: str
    events: int  # predictions + labels
    cpu_seconds: float  # the service's
    server_cpu_seconds: float  # the store's server's (Redis; 0: the store is in the service)
    per_core: float  # events per CPU second of the service
    per_core_with_server: float  # events per CPU second of the service and the store's server
    predictions_per_core: float
    labels_per_core: float  # each label joins a waiting prediction
    join_ms_p50: float  # the wall time of a label call, which joins its records
    join_ms_p99: float


@dataclass
class Memory:
    pending: int
    rss_bytes_each: float  # the process's resident memory growth per pending prediction
    disk_bytes_each: float  # the store's files (SQLite: database and WAL; Redis: its AOF)
    server_bytes_each: float  # the store's server's memory growth (Redis's used_memory)


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


@dataclass(frozen=True)
class Timed:
    cpu: float  # the service's CPU seconds
    server_cpu: float  # the store's server's
    walls: list[float]  # each call's wall milliseconds


def _timed(
    add: Callable[[bytes, float], Any], posted: list[bytes], server_cpu: Callable[[], float]
) -> Timed:
    walls = []
    cpu, server = time.process_time(), server_cpu()
    for body in posted:
        start = time.perf_counter()
        result = add(body, time.time())
        walls.append((time.perf_counter() - start) * 1000)
        assert isinstance(result, Accepted), result
        assert not result.skipped, result
    return Timed(time.process_time() - cpu, server_cpu() - server, walls)


def throughput(mode: str, store: str, n: int, predictions: Timed, labels: Timed) -> Throughput:
    cpu = predictions.cpu + labels.cpu
    server = predictions.server_cpu + labels.server_cpu
    return Throughput(
        mode,
        store,
        2 * n,
        round(cpu, 3),
        round(server, 3),
        round(2 * n / cpu),
        round(2 * n / (cpu + server)),
        round(n / predictions.cpu),
        round(n / labels.cpu),
        round(percentile(labels.walls, 50), 3),
        round(percentile(labels.walls, 99), 3),
    )


def core(store: str, work: Path, n: int, single: int, batch: int) -> list[Throughput]:
    settings = Settings.model_validate(SETTINGS)
    results = []
    with backend(store, work) as data:
        feedback = Feedback(settings, data.open(settings))
        offset = 0
        for mode, count, size in (("batched", n, batch), ("single", single, 1)):
            posted = bodies("predictions", offset, count, size)
            joined = bodies("labels", offset, count, size)
            offset += count
            p = _timed(feedback.add_predictions, posted, data.server_cpu)
            j = _timed(feedback.add_labels, joined, data.server_cpu)
            results.append(throughput(mode, store, count, p, j))
        feedback.store.close()
    return results


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def memory(store: str, work: Path, pending: int, batch: int) -> Memory:
    """The growth from a quarter of ``pending`` predictions waiting to all of them: the
    cost of one more, without what any service holds (its heap, the store's caches)."""
    settings = Settings.model_validate(SETTINGS)
    with backend(store, work) as data:
        opened = data.open(settings)
        feedback = Feedback(settings, opened)
        posted = bodies("predictions", 10**9, pending, batch)
        warm = len(posted) // 4
        for body in posted[:warm]:
            feedback.add_predictions(body, time.time())
        before, server, waiting = _rss(), data.server_bytes(), opened.pending().predictions
        for body in posted[warm:]:
            feedback.add_predictions(body, time.time())
        added = opened.pending().predictions - waiting
        grown, server_grown = _rss() - before, data.server_bytes() - server
        assert opened.pending().predictions == pending
        disk = data.disk_bytes()
        opened.close()
    return Memory(
        pending,
        round(grown / added, 1),
        round(disk / pending, 1),
        round(server_grown / added, 1),
    )


def profile(store: str, work: Path, n: int, batch: int) -> list[dict[str, Any]]:
    """The functions the batched ingest spends its time in, by own time."""
    settings = Settings.model_validate(SETTINGS)
    profiler = cProfile.Profile()
    with backend(store, work) as data:
        feedback = Feedback(settings, data.open(settings))
        posted, joined = bodies("predictions", 0, n, batch), bodies("labels", 0, n, batch)
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


def _cpu(pid: int) -> float:
    """The CPU seconds of process ``pid`` and of its children waited for (Redis's
    rewrites of its AOF)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def over_http(store: str, work: Path, n: int, single: int, batch: int) -> list[Throughput]:
    results = []
    with backend(store, work / "store") as data:
        settings = SETTINGS | {"store": data.settings()}
        service = FeedbackService(work / "service", settings, name="bench-feedback")
        connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=60)
        offset = 0
        try:
            for mode, count, size in (("batched", n, batch), ("single", single, 1)):
                measured = []
                for kind in ("predictions", "labels"):
                    posted = bodies(kind, offset, count, size)
                    before, server = _cpu(service.process.pid), data.server_cpu()
                    walls = []
                    for body in posted:
                        start = time.perf_counter()
                        connection.request("POST", f"/v1/{kind}", body=body)
                        response = connection.getresponse()
                        response.read()
                        assert response.status == 200, response.status
                        walls.append((time.perf_counter() - start) * 1000)
                    cpu = _cpu(service.process.pid) - before
                    measured.append(Timed(cpu, data.server_cpu() - server, walls))
                offset += count
                results.append(throughput(f"http {mode}", store, count, *measured))
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
            figures.memory = memory(args.store, work / "memory", sizes["pending"], args.batch)
            figures.core = core(
                args.store, work / "throughput", sizes["events"], sizes["single"], args.batch
            )
            figures.profile = profile(
                args.store, work / "profile", sizes["events"] // 4, args.batch
            )
        if "http" in parts:
            for store in STORES:
                figures.http += over_http(
                    store, work / f"http-{store}", sizes["events"] // 2, sizes["single"], args.batch
                )
    return figures


def table(figures: Figures) -> str:
    lines = [
        f"batches of {figures.batch}; in process: the {figures.store} store; "
        "per core: the service's CPU (+server: and the Redis server's)"
    ]
    header = f"{'mode':<14}{'store':<8}{'events':>8}{'ev/s/core':>11}{'+server':>9}"
    lines += ["", header + f"{'pred/s':>9}{'label/s':>9}{'join p50 ms':>13}{'p99 ms':>9}"]
    for t in [*figures.core, *figures.http]:
        lines.append(
            f"{t.mode:<14}{t.store:<8}{t.events:>8}{t.per_core:>11}{t.per_core_with_server:>9}"
            f"{t.predictions_per_core:>9}{t.labels_per_core:>9}{t.join_ms_p50:>13}"
            f"{t.join_ms_p99:>9}"
        )
    if figures.memory:
        m = figures.memory
        lines += [
            "",
            f"{m.pending} pending predictions ({figures.store}): {m.rss_bytes_each} B of the "
            f"service's memory each, {m.server_bytes_each} B of the server's, "
            f"{m.disk_bytes_each} B on disk",
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
    parser.add_argument(
        "--store", choices=STORES, default="sqlite", help="the in-process part's (sqlite)"
    )
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
