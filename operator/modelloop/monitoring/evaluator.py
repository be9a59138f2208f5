"""The evaluation loop's shell: one scheduler for every Model, not a timer each.

Every tick it takes the Models whose ``evaluationInterval`` has elapsed, plans
one cycle for all of them together (so grouped template queries are shared),
sends the requests (bounded per provider, below Prometheus' own concurrency
limit), folds the answers into verdicts, and patches a Model's status only when a
verdict or condition changed. Models come from the watch cache the kopf event
handlers fill, so an unchanged evaluation costs no Kubernetes API call at all.
"""

import logging
import math
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from ..api.durations import parse_duration
from ..api.metrictemplate import MetricTemplateSpec
from ..api.model import ModelSpec
from ..api.modelversion import DataWindow
from ..api.resources import MODELS
from ..conditions import condition, merge_conditions
from ..kube.events import post_event
from ..kube.rest import Kube, KubeError, Obj
from ..rollout.pairs import Snapshot
from .evaluate import evaluate_model
from .plan import ModelKey, PlanMemo, Request, SeriesKey, Target, plan_cycle
from .promql import expand
from .readings import Answer, Readings, read
from .source import PrometheusSource
from .status import METRICS_UNAVAILABLE, update_status
from .telemetry import Telemetry
from .verdicts import BreachState

log = logging.getLogger(__name__)


@dataclass
class WatchCache:
    """The latest body of every object the operator watches, keyed by (namespace, name)."""

    models: dict[ModelKey, Obj] = field(default_factory=dict)
    templates: dict[ModelKey, Obj] = field(default_factory=dict)
    versions: dict[ModelKey, Obj] = field(default_factory=dict)


def target_of(
    body: Obj, versions: Mapping[ModelKey, Obj], specs: dict[ModelKey, tuple[Any, ModelSpec]]
) -> Target | None:
    """The Model as the evaluation sees it; None when its spec is invalid (serving says why).

    ``specs`` caches parsed specs by generation: parsing 1000 specs every cycle would
    cost more than evaluating them."""
    meta, status = body["metadata"], body.get("status") or {}
    key = (meta["namespace"], meta["name"])
    cached = specs.get(key)
    if cached is not None and cached[0] == meta.get("generation"):
        spec = cached[1]
    else:
        try:
            spec = ModelSpec.model_validate(body.get("spec") or {})
        except ValidationError:
            return None
        specs[key] = (meta.get("generation"), spec)
    live = [status.get("stableVersion"), (status.get("canary") or {}).get("version")]
    live_versions = tuple(v for v in live if v)
    window = None
    if live_versions:
        stable = versions.get((meta["namespace"], live_versions[0])) or {}
        raw = ((stable.get("spec") or {}).get("lineage") or {}).get("dataWindow")
        window = DataWindow.model_validate(raw) if raw else None
    return Target(meta["namespace"], meta["name"], spec, live_versions, window)


def _single_value(answer: Answer) -> float | None:
    if answer.result is None or len(answer.result) != 1:
        return None
    value = float(answer.result[0]["value"][1])
    return value if math.isfinite(value) else None


class Evaluator:
    def __init__(
        self,
        kube: Kube,
        sources: Mapping[str, PrometheusSource],
        telemetry: Telemetry,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.kube = kube
        self.sources = dict(sources)
        self.telemetry = telemetry
        self.clock = clock
        self.states: dict[ModelKey, dict[SeriesKey, BreachState]] = {}
        self.due: dict[ModelKey, float] = {}
        self.specs: dict[ModelKey, tuple[Any, ModelSpec]] = {}
        self.new_data: dict[ModelKey, float] = {}
        self.snapshots: dict[ModelKey, Snapshot] = {}
        self.plan_memo = PlanMemo()
        # Wakes a Model's reconcile: its new-data counter moved, or its canary has new values.
        self.wake: Callable[[ModelKey], None] | None = None
        self._pools = {
            name: ThreadPoolExecutor(source.max_concurrency, thread_name_prefix=f"prom-{name}")
            for name, source in self.sources.items()
        }

    def close(self) -> None:
        for pool in self._pools.values():
            pool.shutdown(wait=False, cancel_futures=True)

    def tick(self, cache: WatchCache) -> int:
        """Evaluate the Models that are due; returns how many were evaluated."""
        now_mono = time.monotonic()
        for gone in set(self.due) - set(cache.models):
            self.due.pop(gone, None)
            self.states.pop(gone, None)
            self.specs.pop(gone, None)
            self.new_data.pop(gone, None)
            self.snapshots.pop(gone, None)
            self.plan_memo.forget(gone)
            self.telemetry.forget(*gone)
        due = [key for key in cache.models if self.due.get(key, 0.0) <= now_mono]
        targets = []
        for key in due:
            body = cache.models[key]
            target = target_of(body, cache.versions, self.specs)
            interval = parse_duration(
                (body.get("spec") or {}).get("evaluationInterval", "30s")
            ).total_seconds()
            self.due[key] = now_mono + max(interval, 1.0)
            if target is not None:
                targets.append(target)
        if targets:
            with self.telemetry.cycle_seconds.time():
                self.cycle(targets, cache)
            self.telemetry.models.set(len(targets))
        return len(targets)

    def cycle(self, targets: list[Target], cache: WatchCache) -> None:
        now = self.clock()
        templates = {}
        for key, body in cache.templates.items():
            try:
                templates[key] = MetricTemplateSpec.model_validate(body.get("spec") or {})
            except ValidationError:
                continue
        plan = plan_cycle(targets, templates, now, self.plan_memo)
        readings = read(plan, self._ask(plan.requests))
        self._read_new_data(targets)
        for target in targets:
            provider_error = None
            if target.spec.metrics_provider not in self.sources:
                known = ", ".join(sorted(self.sources)) or "none"
                provider_error = (
                    f"metricsProvider {target.spec.metrics_provider!r} is not configured in the "
                    f"operator (configured: {known})"
                )
            self._conclude(target, readings.get(target.key, Readings()), provider_error, now, cache)

    def _read_new_data(self, targets: list[Target]) -> None:
        """The counters of the new-data trigger; a changed one wakes the training reconcile."""
        asked = []
        for target in targets:
            retraining = target.spec.retraining
            source = self.sources.get(target.spec.metrics_provider)
            if retraining is None or retraining.triggers.new_data is None or source is None:
                continue
            try:
                query = expand(
                    retraining.triggers.new_data.query,
                    version=target.versions[0] if target.versions else "",
                    matchers=[],
                    window=retraining.data_window,
                    model=target.name,
                    namespace=target.namespace,
                )
            except ValueError:
                continue
            pool = self._pools[target.spec.metrics_provider]
            asked.append((target.key, pool.submit(source.query, query)))
        for key, future in asked:
            answer = future.result()
            value = _single_value(answer)
            if value is not None and value != self.new_data.get(key):
                self.new_data[key] = value
                if self.wake is not None:
                    self.wake(key)

    def _ask(self, requests: list[Request]) -> list[Answer]:
        futures: list[Future[Answer] | None] = []
        for request in requests:
            source = self.sources.get(request.provider)
            if source is None:
                futures.append(None)
                continue
            futures.append(self._pools[request.provider].submit(source.query, request.query))
        return [
            f.result()
            if f is not None
            else Answer(error=f"metricsProvider {r.provider!r} is not configured")
            for f, r in zip(futures, requests, strict=True)
        ]

    def _conclude(
        self,
        target: Target,
        readings: Readings,
        provider_error: str | None,
        now: datetime,
        cache: WatchCache,
    ) -> None:
        evaluated, states = evaluate_model(
            target.spec, readings, self.states.get(target.key, {}), now
        )
        self.states[target.key] = states
        self.telemetry.record(target.namespace, target.name, evaluated)
        self.snapshots[target.key] = Snapshot(now, tuple(evaluated))
        if len(target.versions) > 1 and self.wake is not None:
            self.wake(target.key)  # the canary analysis reads these values
        body = cache.models.get(target.key)
        for _attempt in range(2):
            if body is None:
                return
            status = body.get("status") or {}
            update = update_status(
                status.get("verdicts") or [],
                status.get("conditions") or [],
                evaluated,
                now,
                body["metadata"].get("generation"),
            )
            conditions = update.conditions
            if provider_error is not None:
                conditions = merge_conditions(
                    conditions,
                    [condition(METRICS_UNAVAILABLE, "True", "UnknownProvider", provider_error)],
                    now,
                    body["metadata"].get("generation"),
                )
            if update.verdicts == (status.get("verdicts") or []) and conditions == (
                status.get("conditions") or []
            ):
                return
            try:
                self.kube.merge_patch(
                    MODELS,
                    target.namespace,
                    target.name,
                    {
                        "metadata": {"resourceVersion": body["metadata"]["resourceVersion"]},
                        "status": {"verdicts": update.verdicts, "conditions": conditions},
                    },
                    sub="status",
                )
            except KubeError as error:
                if not error.conflict:
                    log.warning("status of %s/%s: %s", *target.key, error)
                    return
                body = self.kube.get(MODELS, target.namespace, target.name)
                continue
            self.telemetry.patches.inc()
            for event in update.events:
                post_event(self.kube, body, event.reason, event.message, event.type)
            return
