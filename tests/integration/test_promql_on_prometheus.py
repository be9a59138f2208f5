"""Rendered PromQL on a real Prometheus: hostile label values select exactly their
own series, an empty slice parses wherever $slice stands, and a combined query of
many slices and parts splits back per part."""

import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from localcluster.processes import free_port
from localcluster.prometheus import PrometheusServer, scrape_config
from localcluster.waiting import wait_for
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from modelloop.api.model import LabelMatcher
from modelloop.monitoring.promql import (
    MATCH_ALL,
    Part,
    Sample,
    combine,
    expand,
    names_regex,
    split,
)
from modelloop.monitoring.providers import Credentials, ProviderConfig
from modelloop.monitoring.series import BoundedRegistry
from modelloop.monitoring.source import PrometheusSource
from modelloop.monitoring.telemetry import Telemetry

# One series per region; powers of two, so a sum names exactly the series it added up.
REGIONS = {
    "eu": 1.0,
    'eu"} or vector(1) or {"x': 2.0,
    "back\\slash": 4.0,
    "{braces}\nnewline": 8.0,
    "trailing\\": 16.0,
    'x\\"} or vector(1) #': 32.0,
    "ctrl\x07\tc1\x85 sep\u2028rtl\u202e nbsp\xa0": 64.0,
    "us": 128.0,
}
ALL = set(REGIONS)
# Models' names: a grouped template's $models must pick "fraud.eu" and not "fraudxeu".
MODEL_NAMES = ["fraud", "fraud.eu", "fraudxeu", "churn", "churn-2"]
SLICES: dict[str, tuple[list[LabelMatcher], set[str]]] = {
    **{
        f"region-{i}": ([LabelMatcher(label="region", value=region)], {region})
        for i, region in enumerate(REGIONS)
    },
    "all": ([], ALL),
    "regex-backslash": (  # RE2 `back\\.*`: a literal backslash after "back"
        [LabelMatcher(label="region", op="=~", value="back\\\\.*")],
        {"back\\slash"},
    ),
    "regex-newline": (  # a newline in a regex is a newline (RE2's `.` does not match one)
        [LabelMatcher(label="region", op="=~", value="\\{braces\\}\nnewline|us")],
        {"{braces}\nnewline", "us"},
    ),
    "not-eu": ([LabelMatcher(label="region", op="!=", value="eu")], ALL - {"eu"}),
    "not-quoted": (
        [LabelMatcher(label="region", op="!~", value='.*".*')],
        ALL - {'eu"} or vector(1) or {"x', 'x\\"} or vector(1) #'},
    ),
}
SELECTOR = 'harness_slice{job="exporter", $slice}'


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusConnect]:
    """One exporter and one Prometheus for the module: the tests only read."""
    registry = CollectorRegistry()
    gauge = Gauge("harness_slice", "one series per region", ["region"], registry=registry)
    for region, value in REGIONS.items():
        gauge.labels(region=region).set(value)
    models = Gauge("harness_model", "one series per Model", ["model"], registry=registry)
    for name in MODEL_NAMES:
        models.labels(model=name).set(1)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    prom = None
    try:
        prom = PrometheusServer(
            tmp_path_factory.mktemp("prometheus"), scrape_config({"exporter": f"127.0.0.1:{port}"})
        )
        connection = PrometheusConnect(url=prom.url, disable_ssl=True)
        wait_for(
            lambda: len(connection.custom_query("harness_slice")) == len(REGIONS), 30, "scrape"
        )
        yield connection
    finally:
        if prom is not None:
            prom.stop()
        server.shutdown()
        server.server_close()
        thread.join(5)


def render(query: str, matchers: list[LabelMatcher]) -> str:
    return expand(query, version="v1", matchers=matchers, window="1m", model="m", namespace="n")


def regions(result: list[dict[str, Any]]) -> set[str]:
    return {series["metric"]["region"] for series in result}


def test_the_exporter_kept_every_hostile_value(client: PrometheusConnect) -> None:
    assert regions(client.custom_query("harness_slice")) == ALL


@pytest.mark.parametrize("name", sorted(SLICES))
def test_a_slice_selects_exactly_its_own_series(client: PrometheusConnect, name: str) -> None:
    matchers, expected = SLICES[name]
    assert regions(client.custom_query(render(SELECTOR, matchers))) == expected
    [total] = client.custom_query(render(f"sum({SELECTOR})", matchers))
    assert float(total["value"][1]) == sum(REGIONS[r] for r in expected)


@pytest.mark.parametrize(
    "query",
    [
        'harness_slice{job="exporter", $slice}',
        'harness_slice{$slice, job="exporter"}',
        "harness_slice{$slice}",
        '{__name__="harness_slice", $slice}',
        "max_over_time(harness_slice{$slice}[$window])",
    ],
)
def test_an_empty_slice_parses_and_selects_every_series(
    client: PrometheusConnect, query: str
) -> None:
    assert regions(client.custom_query(render(query, []))) == ALL


@pytest.mark.parametrize(
    ("query", "error"),
    [
        # Why an empty slice is a matcher and not nothing: a leading comma does not parse.
        ('harness_slice{, job="exporter"}', "unexpected"),
        # ...and why nothing rescues a selector that is only $slice.
        (f"{{{MATCH_ALL}}}", "at least one non-empty matcher"),
        ('harness_slice{__name__=~".+"}', "metric name must not be set twice"),
    ],
)
def test_what_prometheus_refuses(client: PrometheusConnect, query: str, error: str) -> None:
    with pytest.raises(PrometheusApiClientException, match=error):
        client.custom_query(query)


def test_a_combined_query_answers_every_slice_and_part(client: PrometheusConnect) -> None:
    tags = ("test_slice", "test_part")
    parts = []
    for name, (matchers, _) in SLICES.items():
        parts.append(Part((name, "sum"), render(f"sum({SELECTOR})", matchers)))
        parts.append(Part((name, "count"), render(f"count({SELECTOR}) # a comment", matchers)))
    parts.append(Part(("none", "sum"), 'sum(harness_slice{region="absent"})'))
    parts.append(Part(('odd"$1${x}', "by"), "sum by (region) (harness_slice)"))
    parts.append(Part(("scalar", "sum"), "vector(scalar(sum(harness_slice)))"))

    answers = split(client.custom_query(combine(parts, tags)), tags)

    for name, (_, expected) in SLICES.items():
        assert answers[(name, "sum")] == [sample(sum(REGIONS[r] for r in expected))], name
        assert answers[(name, "count")] == [sample(len(expected))], name
    assert ("none", "sum") not in answers  # a part with no series has no entry
    by_region = answers[('odd"$1${x}', "by")]
    assert {s.labels["region"]: s.value for s in by_region} == REGIONS
    assert answers[("scalar", "sum")] == [sample(sum(REGIONS.values()))]
    assert len(answers) == 2 * len(SLICES) + 2


def sample(value: float) -> Sample:
    return Sample({}, value)


@pytest.mark.parametrize("delay", ["1s", "2h"])
def test_a_label_delay_renders_as_an_offset_prometheus_takes(
    client: PrometheusConnect, delay: str
) -> None:
    """``$labelDelay`` is the metric's labels.delay as written, at least 1s: Prometheus
    refuses ``offset 0s`` (hence no default), and an offset before the first sample is
    an empty answer, not an error."""
    query = expand(
        f"sum(sum_over_time({SELECTOR}[$window] offset $labelDelay))",
        version="v1",
        matchers=[LabelMatcher(label="region", value="eu")],
        window="1m",
        model="m",
        namespace="n",
        label_delay=delay,
    )
    assert f"offset {delay}" in query
    assert isinstance(client.custom_query(query), list)
    with pytest.raises(PrometheusApiClientException, match="duration must be greater than 0"):
        client.custom_query(query.replace(f"offset {delay}", "offset 0s"))


@pytest.mark.parametrize(
    "served", [["fraud.eu", "churn"], ["fraud"], ["churn-2", "fraudxeu", "fraud"], []]
)
def test_models_selects_exactly_the_models_served(
    client: PrometheusConnect, served: list[str]
) -> None:
    """A grouped template's `{model=~"$models"}`: each Model served, no other (a dot in a
    name is no wildcard; RE2 anchors the whole alternation)."""
    query = expand(
        'harness_model{model=~"$models"}',
        version="",
        matchers=[],
        window="1m",
        model="",
        namespace="",
        served={"models": names_regex(served), "namespaces": ""},
    )
    assert {r["metric"]["model"] for r in client.custom_query(query)} == set(served)


def test_a_query_longer_than_a_url_may_be_is_answered(client: PrometheusConnect) -> None:
    """Past Prometheus' 1 MiB of request headers once quoted into a URL: the operator's
    source sends it in the body."""
    others = "|".join(f"region-{i:06d}" for i in range(80_000))
    query = f'sum(harness_slice{{job="exporter", region=~"eu|{others}"}})'
    assert len(urllib.parse.quote(query)) > 1 << 20
    config = ProviderConfig(name="p", url=client.url, timeout="30s")
    answer = PrometheusSource(config, Credentials(), Telemetry(BoundedRegistry())).query(query)
    assert answer.error is None
    assert [float(series["value"][1]) for series in answer.result or []] == [REGIONS["eu"]]
