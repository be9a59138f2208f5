"""Start the evaluation scheduler and the operator's /metrics at operator start-up."""

import asyncio
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..kube.rest import Kube
from ..monitoring import exposition
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
        exposition.serve(host or "0.0.0.0", int(port), telemetry.registry.collectors)
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
    for source in sources.values():
        problem = source.problem()
        if problem is not None:
            log.warning("%s: its Models are MetricsUnavailable until it is fixed", problem)
    evaluator = Evaluator(kube, sources, telemetry)
    memo["evaluator"] = evaluator
    return asyncio.create_task(_run(evaluator, cache))


async def _run(evaluator: Evaluator, cache: WatchCache) -> None:
    """One loop per lane (provider), each on its own thread: a provider that hangs until
    its timeout holds up only its own Models."""
    try:
        await asyncio.gather(*(_tick_lane(evaluator, cache, lane) for lane in evaluator.lanes()))
    finally:
        evaluator.close()


async def _tick_lane(evaluator: Evaluator, cache: WatchCache, lane: str) -> None:
    loop = asyncio.get_running_loop()
    thread = ThreadPoolExecutor(1, thread_name_prefix=f"evaluate-{lane or 'unconfigured'}")
    try:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            try:
                await loop.run_in_executor(thread, evaluator.tick, cache, lane)
            except Exception:
                log.exception("evaluation cycle of lane %r failed; retrying at the next tick", lane)
    finally:
        thread.shutdown(wait=False, cancel_futures=True)
