"""Start the evaluation scheduler and the operator's /metrics at operator start-up."""

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

from prometheus_client import start_http_server

from ..kube.rest import Kube
from ..monitoring.evaluator import Evaluator, WatchCache
from ..monitoring.providers import load_providers, resolve_credentials
from ..monitoring.source import PrometheusSource
from ..monitoring.telemetry import Telemetry

log = logging.getLogger(__name__)
TICK_SECONDS = 1.0
IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def operator_namespace() -> str:
    """Where the operator's own Secrets live."""
    explicit = os.environ.get("MODELLOOP_NAMESPACE")
    if explicit:
        return explicit
    if IN_CLUSTER_NAMESPACE.exists():
        return IN_CLUSTER_NAMESPACE.read_text().strip()
    return "default"


def serve_metrics(memo: Any) -> Telemetry:
    """The operator's /metrics, served from start-up on every replica (a standby too)."""
    telemetry = memo["telemetry"] = Telemetry()
    address = (memo.get("options") or {}).get("metrics_address")
    if address:
        host, _, port = address.rpartition(":")
        start_http_server(int(port), addr=host or "0.0.0.0", registry=telemetry.registry)
        log.info("operator metrics on http://%s/metrics", address)
    return telemetry


def start_evaluation(memo: Any, kube: Kube, cache: WatchCache) -> "asyncio.Task[None]":
    options = memo.get("options") or {}
    telemetry: Telemetry = memo["telemetry"]
    namespace = operator_namespace()
    sources = {
        config.name: PrometheusSource(
            config, resolve_credentials(config, kube, namespace), telemetry
        )
        for config in load_providers(options.get("providers"))
    }
    log.info(
        "metrics providers: %s", ", ".join(f"{n}={s.url}" for n, s in sources.items()) or "none"
    )
    evaluator = Evaluator(kube, sources, telemetry)
    memo["evaluator"] = evaluator
    return asyncio.create_task(_run(evaluator, cache))


async def _run(evaluator: Evaluator, cache: WatchCache) -> None:
    try:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            try:
                await asyncio.to_thread(evaluator.tick, cache)
            except Exception:
                log.exception("evaluation cycle failed; retrying at the next tick")
    finally:
        evaluator.close()
