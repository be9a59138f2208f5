"""A restart's successors are polled for their reconcile count alone: the poll reads one
counter from the operator's /metrics, and the operator renders nothing else for it."""

import pytest
from bench.scale.measure import Scraper

from modelloop.api.vocabulary import VerdictName
from modelloop.monitoring import exposition
from modelloop.monitoring.evaluate import Evaluated
from modelloop.monitoring.plan import SeriesKey
from modelloop.monitoring.telemetry import Telemetry


def test_the_reconcile_count_is_read_from_its_counter_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    telemetry = Telemetry()
    passed = Evaluated(SeriesKey("metric", "acc", "all", "v1"), VerdictName.PASS, 0.9, 100.0)
    for m in range(50):
        telemetry.record("ns", f"m{m}", [passed])
    for seconds in (0.01, 0.2, 3.0):
        telemetry.queue.worked(seconds)

    def refused() -> None:
        raise AssertionError("the per-Model families were rendered")

    monkeypatch.setattr(telemetry.evaluations, "collect", refused)
    monkeypatch.setattr(telemetry.evaluations, "text", refused)
    server, thread = exposition.serve("127.0.0.1", 0, telemetry.registry.collectors)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/metrics"
        assert Scraper(0, url, None, {}).reconciles() == 3  # type: ignore[arg-type]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
