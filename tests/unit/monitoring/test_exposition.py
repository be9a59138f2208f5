"""The operator's /metrics is streamed: the same bytes as prometheus-client's
``generate_latest``, rendered a Model's lines at a time and sent in chunks."""

import gzip
import math
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from modelloop.api.model import CanaryStatus
from modelloop.api.vocabulary import VerdictName
from modelloop.monitoring import exposition
from modelloop.monitoring.evaluate import Evaluated
from modelloop.monitoring.plan import SeriesKey
from modelloop.monitoring.series import BoundedRegistry
from modelloop.monitoring.telemetry import Telemetry
from modelloop.retraining.telemetry import TrainingTelemetry
from modelloop.rollout.telemetry import RolloutTelemetry


def evaluated(model: int) -> list[Evaluated]:
    """Metrics and a drift check with awkward slice names and numbers."""
    odd = ['say "hi"', "back\\slash", "new\nline", "région"][model % 4]
    v = VerdictName
    return [
        Evaluated(SeriesKey("metric", "acc", "all", "v1"), v.PASS, 0.9, 100.0, coverage=0.5),
        Evaluated(SeriesKey("metric", "acc", odd, "v2"), v.BREACH, 1e-7, 3.0, coverage=1.0),
        Evaluated(SeriesKey("metric", "p99", "all", "v2"), v.WAITING, math.inf, 0.0),
        Evaluated(SeriesKey("metric", "nan", "all", "v2"), v.INCONCLUSIVE, math.nan, None),
        Evaluated(SeriesKey("metric", "zero", "all", "v1"), v.PASS, -0.0, 1.0, coverage=0.0),
        Evaluated(SeriesKey("drift", "psi", odd, "v1"), v.PASS, 0.02, None),
    ]


@pytest.fixture
def registry() -> BoundedRegistry:
    """Every kind of family the operator exports, for a few Models."""
    registry = BoundedRegistry()
    telemetry = Telemetry(registry)
    rollouts, trainings = RolloutTelemetry(registry), TrainingTelemetry(registry)
    for m in range(5):
        telemetry.record(f"ns{m % 2}", f"m{m}", evaluated(m), canary="v2")
        rollouts.record(f"ns{m % 2}", f"m{m}", CanaryStatus(version="v2", weight=10), "pass")
        trainings.started.labels(f"ns{m % 2}", f"m{m}", "breach").inc()
        trainings.duration.observe(f"ns{m % 2}", f"m{m}", ("Succeeded",), 600.0 * m)
    telemetry.requests.labels("prometheus", "ok").inc(3)
    telemetry.cycle_seconds.observe(0.2)
    telemetry.queue.waited(0.01, urgent=True)
    return registry


def streamed(registry: BoundedRegistry, size: int = exposition.CHUNK_BYTES) -> Iterator[bytes]:
    return exposition.body(registry.collectors(), size)


def test_the_stream_is_the_text_prometheus_client_renders(registry: BoundedRegistry) -> None:
    assert b"".join(streamed(registry)) == generate_latest(registry)


def test_chunks_are_gathered_to_their_size_and_lose_nothing(registry: BoundedRegistry) -> None:
    parts = list(streamed(registry, size=1000))
    assert len(parts) > 3
    assert all(len(p) >= 1000 for p in parts[:-1])
    assert b"".join(parts) == generate_latest(registry)


def test_the_per_model_families_render_a_check_at_a_time() -> None:
    """No piece holds more than one check's lines (the verdicts': four), so a scrape
    holds a chunk, not the fleet's text."""
    registry = BoundedRegistry()
    telemetry = Telemetry(registry)
    for m in range(200):
        telemetry.record("ns", f"m{m}", evaluated(m))
    pieces = list(telemetry.evaluations.text())
    lines = [p.count("\n") for p in pieces if not p.startswith("# HELP")]
    assert sum(lines) == sum(len(f.samples) for f in telemetry.evaluations.collect())
    assert max(lines) == len(VerdictName)


def test_a_served_scrape_parses_plain_and_gzipped(registry: BoundedRegistry) -> None:
    server, thread = exposition.serve("127.0.0.1", 0, registry.collectors)
    url = f"http://127.0.0.1:{server.server_address[1]}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=10) as plain:
            assert plain.headers["Content-Type"] == exposition.CONTENT_TYPE
            text = plain.read()
        request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"})
        with urllib.request.urlopen(request, timeout=10) as packed:
            assert packed.headers["Content-Encoding"] == "gzip"
            assert gzip.decompress(packed.read()) == text
        with urllib.request.urlopen(f"{url}?name[]=modelloop_metric_verdict", timeout=10) as one:
            (family,) = text_string_to_metric_families(one.read().decode())
            assert family.name == "modelloop_metric_verdict"
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(url.replace("/metrics", "/favicon.ico"), timeout=10)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    assert text == generate_latest(registry)
    families = {f.name: f for f in text_string_to_metric_families(text.decode())}
    slices = {s.labels["slice"] for s in families["modelloop_metric_verdict"].samples}
    assert slices == {"all", 'say "hi"', "back\\slash", "new\nline", "région"}


@pytest.mark.parametrize(
    "names",
    [
        {"modelloop_reconcile_duration_seconds_count"},
        {"modelloop_workqueue_wait_seconds_sum", "modelloop_workqueue_wait_seconds_bucket"},
        {"modelloop_metric_verdict", "modelloop_drift_statistic"},
        {"modelloop_metric_value", "modelloop_prometheus_requests_total"},
        {"no_such_sample"},
    ],
)
def test_named_samples_alone_are_what_prometheus_client_restricts_to(
    registry: BoundedRegistry, names: set[str]
) -> None:
    """``?name[]=`` answers as prometheus-client's restricted registry does (its order of
    families is a set's, so lines are compared as sets)."""
    ours = b"".join(exposition.body(registry.collectors(), names=frozenset(names)))
    theirs = generate_latest(registry.restricted_registry(names))
    assert set(ours.decode().splitlines()) == set(theirs.decode().splitlines())
    sampled = {s.name for f in text_string_to_metric_families(ours.decode()) for s in f.samples}
    assert sampled == names & {s.name for f in registry.collect() for s in f.samples}


def test_a_request_for_one_counter_does_not_collect_the_per_model_families(
    registry: BoundedRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The families as big as the fleet are left alone unless they are asked for."""
    (series,) = [c for c in registry.collectors() if isinstance(c, exposition.Streamed)]

    def refused() -> None:
        raise AssertionError("the per-Model families were collected")

    monkeypatch.setattr(series, "collect", refused)
    monkeypatch.setattr(series, "text", refused)
    names = frozenset({"modelloop_reconcile_duration_seconds_count"})
    assert b"modelloop_reconcile_duration_seconds_count 0.0" in b"".join(
        exposition.body(registry.collectors(), names=names)
    )


@pytest.mark.parametrize(
    ("path", "names"),
    [
        ("/metrics", None),
        ("/metrics?name[]=a", {"a"}),
        ("/metrics?name%5B%5D=a&name[]=b_total&other=c", {"a", "b_total"}),
        ("/?name=a", None),
    ],
)
def test_the_names_a_request_asks_for(path: str, names: set[str] | None) -> None:
    assert exposition.requested_names(path) == (None if names is None else frozenset(names))
