"""Rendered PromQL on a real Prometheus: hostile label values select exactly their
own series, an empty slice parses, and a combined query splits back per part."""

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from prometheus_api_client import PrometheusConnect
from prometheus_client import CollectorRegistry, Gauge, start_http_server
from tests.harness.processes import free_port
from tests.harness.prometheus import PrometheusServer, scrape_config
from tests.harness.waiting import wait_for

from modelloop.api.model import LabelMatcher
from modelloop.monitoring.promql import Part, combine, expand, split

REGIONS = {
    "eu": 1.0,
    'eu"} or vector(1) or {"x': 2.0,
    "back\\slash": 3.0,
    "{braces}\nnewline": 4.0,
    "us": 5.0,
}
QUERY = 'sum(harness_slice{job="exporter", $slice})'


@pytest.fixture
def client(prometheus: Callable[[dict[str, Any]], PrometheusServer]) -> Iterator[PrometheusConnect]:
    registry = CollectorRegistry()
    gauge = Gauge("harness_slice", "one series per region", ["region"], registry=registry)
    for region, value in REGIONS.items():
        gauge.labels(region=region).set(value)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        prom = prometheus(scrape_config({"exporter": f"127.0.0.1:{port}"}))
        connection = PrometheusConnect(url=prom.url, disable_ssl=True)
        wait_for(
            lambda: len(connection.custom_query("harness_slice")) == len(REGIONS), 30, "scrape"
        )
        yield connection
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def render(region: str | None) -> str:
    matchers = [] if region is None else [LabelMatcher(label="region", value=region)]
    return expand(QUERY, version="", matchers=matchers, window="1m", model="", namespace="")


def test_hostile_label_values_select_only_their_own_series(client: PrometheusConnect) -> None:
    for region, value in REGIONS.items():
        [result] = client.custom_query(render(region))
        assert float(result["value"][1]) == value, region


def test_an_empty_slice_parses_and_selects_every_series(client: PrometheusConnect) -> None:
    [result] = client.custom_query(render(None))
    assert float(result["value"][1]) == sum(REGIONS.values())


def test_a_combined_query_answers_every_part(client: PrometheusConnect) -> None:
    parts = [Part((str(i),), render(region)) for i, region in enumerate(REGIONS)]
    parts.append(Part((str(len(parts)),), "sum(harness_slice{region='absent'})"))
    answers = split(client.custom_query(combine(parts, ["modelloop_part"])), ["modelloop_part"])
    for i, value in enumerate(REGIONS.values()):
        assert [s.value for s in answers[(str(i),)]] == [value]
    assert (str(len(REGIONS)),) not in answers  # no series is an answer too: none
