"""The evaluation loop's shell: one scheduler for every Model, not a timer each.

Every tick it takes the Models whose ``evaluationInterval`` has elapsed, plans
one cycle for them together (so grouped template queries are shared; at most
``CYCLE_MODELS`` a cycle, more in cycles one after another), sends the requests
(bounded per provider, below Prometheus' own concurrency limit), folds the
answers into verdicts, and patches a Model's status only when a verdict or
condition changed. Models come from the watch cache the kopf event
handlers fill, so an unchanged evaluation costs no Kubernetes API call at all.

Faults stay with the Models they concern:

- Each provider is a *lane* (``lanes``), ticked on its own thread by the operator:
  a provider that hangs until its timeout delays only its own Models.
- A provider that cannot be asked (an unreadable CA file, missing credentials) or is
  not configured makes its Models ``MetricsUnavailable`` with the cause.
- An exception while concluding one Model (bad data, a refused status write) is
  logged with the Model and reported on it (the ``Healthy`` condition and a Warning
  Event, once per distinct fault); the other Models are concluded all the same.

What a breach rule remembers is in each verdict entry of the status; a Model this
evaluator has no state for (a restart, a new leader) resumes from there.
"""

import logging
import math
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import ValidationError

from ..api.metrictemplate import MetricTemplateSpec
from ..api.model import ModelSpec
from ..api.modelversion import DataWindow
from ..api.resources import MODELS
from ..conditions import condition, merge_conditions, stamp
from ..kube.events import post_event
from ..kube.rest import Kube, KubeError, Obj
from ..kube.status import owned_fields, write_status
from ..notify.evidence import verdict_evidence
from .evaluate import evaluate_model
from .plan import ModelKey, PlanMemo, Request, SeriesKey, Target, plan_cycle
from .promql import expand
from .readings import Answer, Readings, read
from .snapshot import Snapshot
from .source import PrometheusSource
from .specs import SPECS, SpecCache
from .status import (
    HEALTHY,
    METRICS_UNAVAILABLE,
    StatusUpdate,
    recall_states,
    status_inputs,
    update_status,
)
from .telemetry import Telemetry
from .verdicts import BreachState

log = logging.getLogger(__name__)
UNCONFIGURED = ""  # the lane of Models whose provider is not configured, or whose spec is invalid
ProviderProblem = tuple[str, str]  # the MetricsUnavailable reason and message


@dataclass
class WatchCache:
    """The latest body of every object the operator watches, keyed by (namespace, name)."""

    models: dict[ModelKey, Obj] = field(default_factory=dict)
    templates: dict[ModelKey, Obj] = field(default_factory=dict)
    versions: dict[ModelKey, Obj] = field(default_factory=dict)


def target_of(body: Obj, spec: ModelSpec, versions: Mapping[ModelKey, Obj]) -> Target:
    """The Model as the evaluation sees it."""
    meta, status = body["metadata"], body.get("status") or {}
    live = [status.get("stableVersion"), (status.get("canary") or {}).get("version")]
    # Early rollbacks whose labels have yet to judge them are evaluated until they do.
    live += [p.get("version") for p in status.get("labelsPending") or []]
    live_versions = tuple(dict.fromkeys(v for v in live if v))
    window = None
    if live_versions:
        stable = versions.get((meta["namespace"], live_versions[0])) or {}
        raw = ((stable.get("spec") or {}).get("lineage") or {}).get("dataWindow")
        window = DataWindow.model_validate(raw) if raw else None
    validated = {}
    if any(m.objective is not None and m.objective.max_drop is not None for m in spec.metrics):
        for version in live_versions:
            body_of = versions.get((meta["namespace"], version)) or {}
            offline = ((body_of.get("spec") or {}).get("metrics") or {}).get("candidate") or []
            for entry in offline:
                value = entry.get("value")
                if isinstance(value, int | float) and math.isfinite(value):
                    validated[(entry.get("metric"), entry.get("slice"), version)] = float(value)
    return Target(meta["namespace"], meta["name"], spec, live_versions, window, validated)


def _single_value(answer: Answer) -> float | None:
    if answer.result is None or len(answer.result) != 1:
        return None
    try:
        value = float(answer.result[0]["value"][1])
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _fault(error: Exception) -> str:
    text = str(error).splitlines()[0][:300] if str(error) else ""
    return text if isinstance(error, KubeError) else f"{type(error).__name__}: {text}"


CONCLUDERS = 8  # Models whose statuses are written at once, per evaluator
# The most Models one cycle asks for and reads at once; a tick with more due runs several
# cycles, one after another. Models come due together after a start (a restart, a new
# leader, a shard taking over): every one at the first tick. A grouped answer for 2500
# Models is 10 MiB of JSON decoding to 31 MiB, one per template, several in flight at
# once; for 250, a tenth of that, whatever the fleet.
CYCLE_MODELS = 250


class Evaluator:
    def __init__(
        self,
        kube: Kube,
        sources: Mapping[str, PrometheusSource],
        telemetry: Telemetry,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        specs: SpecCache = SPECS,
    ) -> None:
        self.kube = kube
        self.sources = dict(sources)
        self.telemetry = telemetry
        self.clock = clock
        self.states: dict[ModelKey, dict[SeriesKey, BreachState]] = {}
        self.due: dict[ModelKey, float] = {}
        # Parsing 1000 specs every cycle would cost more than evaluating them.
        self.specs = specs
        self.new_data: dict[ModelKey, float] = {}
        self.snapshots: dict[ModelKey, Snapshot] = {}
        self.failures: dict[ModelKey, str] = {}  # the fault last reported on each Model
        # Each Model's status (its resourceVersion) as this evaluator last compared or wrote
        # it, and the evaluation's status_inputs then: the same again needs no comparison.
        self.settled: dict[ModelKey, tuple[str, Hashable]] = {}
        # One per lane: a memo is not shared between threads.
        self.plan_memos: dict[str | None, PlanMemo] = {}
        self._evaluated: dict[str | None, int] = {}
        # Wakes a Model's reconcile (urgently: a decision may follow at once): its new-data
        # counter moved, its canary has new values, or its verdicts were written.
        self.wake: Callable[[ModelKey, bool], None] | None = None
        self._pools = {
            name: ThreadPoolExecutor(source.max_concurrency, thread_name_prefix=f"prom-{name}")
            for name, source in self.sources.items()
        }
        self._concluders = ThreadPoolExecutor(CONCLUDERS, thread_name_prefix="conclude")

    def close(self) -> None:
        for pool in [*self._pools.values(), self._concluders]:
            pool.shutdown(wait=False, cancel_futures=True)

    def lanes(self) -> list[str]:
        """What can be ticked apart, each on its own thread: one lane per configured
        provider, and one for the Models that name no configured provider."""
        return [*self.sources, UNCONFIGURED]

    def lane_of(self, spec: ModelSpec | None) -> str:
        if spec is None or spec.metrics_provider not in self.sources:
            return UNCONFIGURED
        return spec.metrics_provider

    def tick(self, cache: WatchCache, lane: str | None = None) -> int:
        """Evaluate the Models of ``lane`` (None: of every lane) that are due; returns how
        many were evaluated. Lanes may tick at once on different threads."""
        now_mono = time.monotonic()
        models = dict(cache.models)  # the watch changes the cache meanwhile, on its thread
        self._forget_gone(models)
        targets = []
        for key, body in models.items():
            if self.due.get(key, 0.0) > now_mono:
                continue
            spec = self.specs.parsed(body)
            if lane is not None and self.lane_of(spec) != lane:
                continue
            interval = (
                spec.evaluation_interval
                if spec is not None
                else ModelSpec.model_fields["evaluation_interval"].default
            ).delta.total_seconds()
            self.due[key] = now_mono + max(interval, 1.0)
            if spec is not None:
                targets.append(target_of(body, spec, cache.versions))
            else:  # not evaluated: no live verdicts to export
                self.telemetry.record(*key, [])
        if targets:
            with self.telemetry.cycle_seconds.time():
                for start in range(0, len(targets), CYCLE_MODELS):
                    self.cycle(targets[start : start + CYCLE_MODELS], cache, lane)
            self._evaluated[lane] = len(targets)
            self.telemetry.models.set(sum(self._evaluated.values()))
        return len(targets)

    def _forget_gone(self, models: Mapping[ModelKey, Obj]) -> None:
        # Every Model with state here was scanned by a tick, so it has a due time: one
        # difference of key views per tick (a tenth of a millisecond at 2500 Models).
        for gone in self.due.keys() - models.keys():
            self.due.pop(gone, None)
            self.states.pop(gone, None)
            self.specs.forget(gone)
            self.new_data.pop(gone, None)
            self.snapshots.pop(gone, None)
            self.failures.pop(gone, None)
            self.settled.pop(gone, None)
            for memo in list(self.plan_memos.values()):
                memo.forget(gone)
            self.telemetry.forget(*gone)

    def cycle(self, targets: list[Target], cache: WatchCache, lane: str | None = None) -> None:
        now = self.clock()
        templates = {}
        for key, body in dict(cache.templates).items():
            try:
                templates[key] = MetricTemplateSpec.model_validate(body.get("spec") or {})
            except ValidationError:
                continue
        memo = self.plan_memos.setdefault(lane, PlanMemo())
        plan = plan_cycle(targets, templates, now, memo)
        readings = read(plan, self._ask(plan.requests))
        self._read_new_data(targets)
        problems = {
            name: source.problem()
            for name, source in self.sources.items()
            if lane is None or lane == name
        }

        def conclude(target: Target) -> None:
            try:
                self._conclude(
                    target,
                    readings.get(target.key, Readings()),
                    self._provider_problem(target, problems),
                    now,
                    cache,
                )
            except KubeError as error:
                if not error.not_found:  # a Model deleted meanwhile is no fault
                    self._failed(target, error, now, cache)
            except Exception as error:
                self._failed(target, error, now, cache)
            else:
                self.failures.pop(target.key, None)

        # Each Model is concluded once a cycle, on its own: its status write and Events
        # wait on the API server, so they go CONCLUDERS at a time, not one after another.
        # `make bench-scale`: with 99 of 1000 Models breaching at once, one after another
        # took the cycle from 0.5 s to 52 s, past the 30 s interval.
        for _ in self._concluders.map(conclude, targets):
            pass

    def _provider_problem(
        self, target: Target, problems: Mapping[str, str | None]
    ) -> ProviderProblem | None:
        provider = target.spec.metrics_provider
        if provider not in self.sources:
            known = ", ".join(sorted(self.sources)) or "none"
            return (
                "UnknownProvider",
                f"metricsProvider {provider!r} is not configured in the operator "
                f"(configured: {known})",
            )
        problem = problems.get(provider)
        return ("ProviderUnusable", problem) if problem is not None else None

    def _read_new_data(self, targets: list[Target]) -> None:
        """The new-data counters (spec.retraining.newData, or the newData trigger's); a
        changed one wakes the training reconcile. A failed or empty reading forgets the
        last one: no training is decided on a count that may be stale."""
        asked = []
        for target in targets:
            retraining = target.spec.retraining
            counter = retraining.new_data_query() if retraining is not None else None
            source = self.sources.get(target.spec.metrics_provider)
            if retraining is None or counter is None or source is None:
                continue
            try:
                query = expand(
                    counter,
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
            if value != self.new_data.get(key):
                if value is None:
                    del self.new_data[key]
                else:
                    self.new_data[key] = value
                if self.wake is not None:  # data arriving, not a turn: the normal lane
                    self.wake(key, False)

    def _ask(self, requests: list[Request]) -> Iterator[Answer]:
        """The answers in the order asked, each let go of once the next is wanted: a
        grouped answer (every Model's series, decoded) is a cycle's largest object, and
        ``read`` keeps only the samples it picks from it."""
        asked: deque[tuple[Future[Answer] | None, Request]] = deque()
        for request in requests:
            source = self.sources.get(request.provider)
            future = None
            if source is not None:
                future = self._pools[request.provider].submit(source.query, request.query)
            asked.append((future, request))
        while asked:
            future, request = asked.popleft()
            if future is None:
                yield Answer(error=f"metricsProvider {request.provider!r} is not configured")
            else:
                yield future.result()

    def _conclude(
        self,
        target: Target,
        readings: Readings,
        problem: ProviderProblem | None,
        now: datetime,
        cache: WatchCache,
    ) -> None:
        body = cache.models.get(target.key)
        if body is None:
            return
        states = self.states.get(target.key)
        if states is None:  # a restart or a new leader: resume the breach clocks in status
            states = recall_states((body.get("status") or {}).get("verdicts") or [])
        evaluated, self.states[target.key] = evaluate_model(
            target.spec, readings, states, now, target.validated
        )
        canary = ((body.get("status") or {}).get("canary") or {}).get("version")
        self.telemetry.record(target.namespace, target.name, evaluated, canary)
        self.snapshots[target.key] = Snapshot(now, tuple(evaluated))
        if len(target.versions) > 1 and self.wake is not None:
            self.wake(target.key, True)  # the canary analysis reads these values
        inputs = (status_inputs(evaluated), problem)
        read_version = body["metadata"].get("resourceVersion")
        if read_version is not None and self.settled.get(target.key) == (read_version, inputs):
            return  # the status already says what this evaluation would write
        generation = body["metadata"].get("generation")
        updates: list[StatusUpdate] = []

        def change(status: Obj) -> Obj:
            update = update_status(
                status.get("verdicts") or [],
                status.get("conditions") or [],
                evaluated,
                now,
                generation,
            )
            updates.append(update)
            conditions = update.conditions
            if problem is not None:
                unavailable = condition(METRICS_UNAVAILABLE, "True", *problem)
                conditions = merge_conditions(conditions, [unavailable], now, generation)
            return status | {"verdicts": update.verdicts, "conditions": conditions}

        written = write_status(self.kube, MODELS, body, change)
        if written is None:
            self.settled.pop(target.key, None)
            return
        version = written.body["metadata"].get("resourceVersion")
        if version is not None:
            self.settled[target.key] = (version, inputs)
        if not written.written:
            return
        if self.wake is not None:  # its watch event is the echo of a cached write
            self.wake(target.key, bool(updates[-1].events))  # urgent when a verdict turned
        self.telemetry.patches.inc()
        verdicts, since = updates[-1].verdicts, stamp(now)
        before = (body.get("status") or {}).get("verdicts") or []  # as the cache last saw them
        for event in updates[-1].events:
            evidence = verdict_evidence(target.spec, event.reason, verdicts, since, before)
            post_event(self.kube, written.body, event.reason, event.message, event.type, evidence)

    def _failed(self, target: Target, error: Exception, now: datetime, cache: WatchCache) -> None:
        """One Model's fault: logged with the Model, and said on it once (the Healthy
        condition, when the status still takes a write, and a Warning Event)."""
        log.error("evaluation of %s/%s failed", *target.key, exc_info=error)
        message = f"evaluation failed: {_fault(error)}"
        body = cache.models.get(target.key)
        if body is None or self.failures.get(target.key) == message:
            return
        self.failures[target.key] = message
        failed = condition(HEALTHY, "Unknown", "EvaluationFailed", message)
        change = owned_fields({}, [failed], now, body["metadata"].get("generation"))
        try:
            write_status(self.kube, MODELS, body, change)
        except Exception as refused:  # e.g. the same refusal again: the Event still says it
            log.warning("status of %s/%s: %s", *target.key, _fault(refused))
        post_event(self.kube, body, "EvaluationFailed", message, "Warning")
