"""The feedback service's /metrics in a real Prometheus, for exact answers: each
exposition is backfilled (promtool) as two scrapes of its own instance — every series at
0, then at its value ``WINDOW`` seconds later — so ``increase`` over the window (or any
longer one) is exactly the counts; MetricTemplates are then queried at the second
scrape, with the same placeholder expansion the evaluation uses."""

import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from localcluster.prometheus import PrometheusServer
from prometheus_api_client import PrometheusConnect
from prometheus_client.parser import text_string_to_metric_families

from modelloop.monitoring.promql import expand

WINDOW = 300
Key = tuple[str, str, str]  # model, version, region


def openmetrics(
    expositions: list[str], start: int, end: int, shifts: Mapping[str, int] | None = None
) -> str:
    """The expositions' feedback series (not gauges) as two scrapes each: 0 at ``start``,
    the value at ``end``; each exposition its own ``instance``. ``shifts``: seconds a
    family's two scrapes come later (labels that arrive late)."""
    lines: list[str] = []
    families: dict[str, tuple[str, list[str]]] = {}
    for instance, text in enumerate(expositions):
        for family in text_string_to_metric_families(text):
            if not family.name.startswith("modelloop_feedback_") or family.type == "gauge":
                continue
            _, samples = families.setdefault(family.name, (family.type, []))
            late = (shifts or {}).get(family.name, 0)
            for sample in family.samples:
                labels = {**sample.labels, "instance": f"replica-{instance}"}
                rendered = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
                samples.append(f"{sample.name}{{{rendered}}} 0 {start + late}")
                samples.append(f"{sample.name}{{{rendered}}} {sample.value!r} {end + late}")
    for name, (kind, samples) in families.items():
        lines.append(f"# TYPE {name} {kind}")
        lines += samples
    return "\n".join([*lines, "# EOF", ""])


@contextmanager
def backfilled(
    expositions: list[str], workdir: Path, shifts: Mapping[str, int] | None = None
) -> Iterator[tuple[PrometheusConnect, int]]:
    """A Prometheus holding the expositions (``openmetrics``), and the time to query at
    (the unshifted series' last scrape)."""
    end = int(time.time()) - 3600
    start = end - WINDOW + 1  # inside the window whether its start is open or closed
    workdir.mkdir(parents=True, exist_ok=True)
    source = workdir / "series.om"
    source.write_text(openmetrics(expositions, start, end, shifts))
    promtool = shutil.which("promtool")
    assert promtool, "promtool not found: run hack/install-system-deps.sh"
    data = workdir / "prometheus" / "data"
    built = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    server = PrometheusServer(
        workdir / "prometheus", {"global": {"scrape_interval": "1m"}, "scrape_configs": []}
    )
    try:
        yield PrometheusConnect(url=server.url, disable_ssl=True), end
    finally:
        server.stop()


def query(
    client: PrometheusConnect,
    text: str,
    at: int,
    variables: Mapping[str, str] | None = None,
    label_delay: str | None = None,
) -> dict[Key, float]:
    """A grouped template's query over ``WINDOW``, by model, version and region."""
    rendered = expand(
        text,
        version="",
        matchers=[],
        window=f"{WINDOW}s",
        model="",
        namespace="",
        variables=variables or {},
        label_delay=label_delay,
    )
    found = client.custom_query(rendered, params={"time": at})
    return {
        (s["metric"]["model"], s["metric"]["version"], s["metric"]["region"]): float(s["value"][1])
        for s in found
    }
