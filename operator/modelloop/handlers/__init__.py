"""kopf registrations: watch events become keys in one work queue.

The handlers are thin on purpose: every event about a Model, one of its
ModelVersions or one of its Deployments and Services only says "look at this
Model again". The reconcile itself reads the world and is level-triggered, so
a missed or repeated event changes nothing. No handler here stores progress
on the objects (no finalizers, no kopf annotations): all state lives in status,
labels and deterministically named children.
"""

import asyncio
import logging
import time
from collections.abc import Callable, Hashable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import kopf

from ..api.resources import METRIC_TEMPLATES, MODEL_VERSIONS, MODELS
from ..api.vocabulary import GROUP, LABEL_MANAGED_BY, LABEL_MODEL, MANAGED_BY, VERSION
from ..control.leader import LeaderElector, default_identity, lead
from ..control.sharding import Shard
from ..control.turns import Turns
from ..control.workqueue import WorkQueue, call_on_loop, waker, work
from ..kube.cache import CachedKube, ObjectCache
from ..kube.delivery import write_delay
from ..kube.follow import start_following
from ..kube.kinds import resource_of
from ..kube.ratelimit import WriteLimiter
from ..kube.rest import (
    DEPLOYMENTS,
    HTTPROUTES,
    PAGE,
    SERVICES,
    VIRTUALSERVICES,
    Kube,
    Obj,
    Resource,
)
from ..kube.status import StatusBatch
from ..monitoring.evaluator import WatchCache
from ..monitoring.plan import ModelKey
from ..retraining.telemetry import TrainingTelemetry
from ..retraining.workloads import PRESETS
from ..rollout.router import INFERENCE_SERVICES
from ..rollout.telemetry import RolloutTelemetry
from .diffbase import NoDiffBase
from .evaluation import serve_metrics, start_evaluation
from .placing import place_versions, still_held, unplace_versions
from .resync import Seen, due, inputs_of, keeps_warm
from .serving import reconcile_serving
from .training import JOBS, reconcile_training
from .urgency import is_urgent

log = logging.getLogger(__name__)

RESYNC_SECONDS = 30  # default: schedules, cooldowns and backoffs expire without an event
# The watch caches are listed again every RELIST_PERIODS resync periods (10 minutes by
# default): kopf's watches, restarted, do not tell of objects deleted while they were down,
# and no watch of a shard selects a version labelled for a shard no instance runs.
RELIST_PERIODS = 20
LIST_RETRY_SECONDS = 5
WRITE_LIMIT = (200.0, 400)  # writes per second, at once: as `modelloop run` defaults

MANAGED = f"{LABEL_MANAGED_BY}={MANAGED_BY}"
# The children ModelLoop watches, each with the API server's label selector: objects of
# these kinds that are not ModelLoop's never reach the operator. Not pods: a training's
# result is read from its pods once, from the API server, when its Job has completed
# (handlers.training), and the Job's own events tell when that is.
CHILDREN: dict[Resource, str] = {
    DEPLOYMENTS: MANAGED,
    SERVICES: MANAGED,
    JOBS: MANAGED,
    INFERENCE_SERVICES: MANAGED,
    HTTPROUTES: MANAGED,  # the managed routes; a user's route is read from the API server
    VIRTUALSERVICES: MANAGED,
}
READS = (MODEL_VERSIONS, *CHILDREN)  # what a reconcile reads of a Model's, besides it


def _sharded(selector: str, shard: Shard) -> str:
    term = shard.model_selector()  # the children carry their Model's label
    return selector if term is None else f"{selector},{term}"


def child_selectors(shard: Shard) -> dict[Resource, str]:
    """Each child kind's label selector, for this instance's watches and lists. Every child
    carries its Model's shard label (control.sharding.shard_label), so a shard's watches
    select its own: each is ModelLoop's (Deployments, Services, a training's Job, the
    routes and InferenceServices it made), or a user's InferenceService it adopted and
    labelled. ModelVersions carry it by a rule of their own (Shard.version_selectors)."""
    return {kind: _sharded(s, shard) for kind, s in CHILDREN.items()}


def workload_selector(shard: Shard) -> str:
    """The label selector of the watches and lists of the preset training workloads."""
    return _sharded(MANAGED, shard)


# Reconciles wait on the API server's answers to their writes far more than they compute
# (the GIL is free meanwhile): a burst of 1000 edited Models took 4 workers 100 s.
WORKERS = 16
# Workers that may wait on the API server's ClusterIP allocation at once (control.turns):
# it answers one Service creation at a time, so more would only wait longer.
SERVICE_TURNS = 4
# kopf's per-object worker task lives this long after the object's last event (kopf's
# default: 5 s), holding that event's decoded body: in a burst, one body per object with
# an event in the last seconds, hundreds at once.
WORKER_IDLE_SECONDS = 0.5
LEASE_DURATION = timedelta(seconds=15)  # a standby takes over within this after a crash


def configure(settings: kopf.OperatorSettings, shard: Shard) -> list[str | None]:
    """kopf's settings: how it watches (each kind's server-side selector, for this
    shard), lists and queues. Returns the selectors of the ModelVersions kopf's one
    selector per kind cannot hold (control.sharding), for watches of the operator's own."""
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.diffbase_storage = NoDiffBase()  # event handlers only: no diffs
    settings.watching.server_timeout = 300
    settings.queueing.idle_timeout = WORKER_IDLE_SECONDS
    # kopf lists each watched kind whole (at start, and again when a watch's version is
    # gone) unless told a page size: the caches' lists read pages of the same size.
    settings.watching.chunk_size = PAGE
    for child, selector in child_selectors(shard).items():
        settings.watching.label_selectors[child.group, child.version, child.plural] = selector
    for preset in PRESETS.values():
        group, version = preset.api_version.split("/")
        settings.watching.label_selectors[group, version, preset.kind] = workload_selector(shard)
    shard_selector = shard.model_selector()
    if shard_selector is not None:  # the other shards' Models never reach this instance
        settings.watching.label_selectors[GROUP, "models"] = shard_selector
    own_versions, *unplaced = shard.version_selectors()
    if own_versions is not None:
        settings.watching.label_selectors[GROUP, "modelversions"] = own_versions
    return unplaced


@kopf.on.startup()
async def start_workers(*, memo: kopf.Memo, settings: kopf.OperatorSettings, **_: Any) -> None:
    """Watches run on every replica; the workers and the evaluation only on the leader."""
    options = memo.get("options") or {}
    shard = memo["shard"] = Shard(options.get("shard"))
    unplaced = configure(settings, shard)
    kube = memo.get("kube") or Kube.from_environment()
    memo["kube"] = kube
    telemetry = serve_metrics(memo)
    queue = memo["queue"] = WorkQueue(timing=telemetry.queue)
    kube.on_request = lambda verb, resource: telemetry.api_requests.labels(verb, resource).inc()
    loop = asyncio.get_running_loop()
    namespaces = (memo.get("options") or {}).get("namespaces") or [None]
    memo["following"] = [  # kopf's watch has one selector: the unplaced versions' is ours
        start_following(
            kube,
            MODEL_VERSIONS,
            namespaces,
            selector,
            lambda kind, body: call_on_loop(loop, _version_event, memo, kind, body),
        )
        for selector in unplaced
        if selector is not None
    ]
    telemetry.queue.depth.set_function(lambda: len(queue))
    memo["workers"] = []
    # Before the first watch event: each object's memo is a shallow copy of this one, so a
    # standby fills the same cache its evaluation reads once it leads. A standby drops the
    # other shards' children too: when it leads, its first full list repairs what a Model
    # that moved in meanwhile lacks.
    memo["workers"].append(asyncio.create_task(_evict_orphans(_objects(memo), _period(memo))))
    election = options.get("leader_election")
    if not election:
        _act(memo, kube)
        return
    namespace, name = election
    lease = shard.lease_name(name)  # each shard elects its own leader
    elector = LeaderElector(kube, namespace, lease, default_identity(), LEASE_DURATION)
    memo["workers"].append(asyncio.create_task(lead(elector, lambda: _act(memo, kube))))


def _act(memo: Any, kube: Kube) -> None:
    memo["workers"].append(asyncio.create_task(_start_acting(memo, kube)))


async def _start_acting(memo: Any, live: Kube) -> None:
    """Fill the watch caches with one list per kind, then reconcile from them."""
    rate, burst = (memo.get("options") or {}).get("write_limit") or WRITE_LIMIT
    kube = memo["cached"] = CachedKube.over(live, _objects(memo), WriteLimiter(rate, burst))
    while True:
        try:
            presets = await asyncio.to_thread(_served_presets, live)
            await asyncio.to_thread(kube.sync, _listed(memo, presets, first=True))
            listed = _listed(memo, presets)
            break
        except Exception:
            log.exception("filling the watch caches failed; again in %ss", LIST_RETRY_SECONDS)
            await asyncio.sleep(LIST_RETRY_SECONDS)
    queue: WorkQueue = memo["queue"]
    for key, _model in kube.cache.held(MODELS):  # the watch events it drew were not news
        queue.add(key)
    memo["telemetry"].leading.set(1)
    evaluation = start_evaluation(memo, kube, _cache(memo))
    evaluator = memo["evaluator"]
    wake = evaluator.wake = waker(asyncio.get_running_loop(), queue)
    rollouts = RolloutTelemetry(evaluator.telemetry.registry)
    trainings = TrainingTelemetry(evaluator.telemetry.registry)

    shard: Shard = memo["shard"]
    seen: dict[ModelKey, Seen] = {}
    # A Model whose Service waits for its turn is woken urgent: it has waited in line.
    services = Turns(SERVICE_TURNS, lambda key: wake(key, True))
    memo["telemetry"].queue.service_turns_waiting.set_function(services.waiting)

    def inputs(key: ModelKey, model: Obj) -> Hashable:
        return inputs_of(kube.cache, READS, key[0], model, evaluator.new_data.get(key))

    def reconcile(key: Hashable) -> None:
        assert isinstance(key, tuple)
        try:
            reconcile_model(str(key[0]), str(key[1]))
        finally:
            services.passed(key)

    def reconcile_model(namespace: str, name: str) -> None:
        model = kube.cache.get(MODELS, namespace, name)
        if model is None or not shard.owns(model["metadata"].get("labels") or {}):
            # Deleted, or another shard's: relabelled away, or a ModelVersion's Model.
            rollouts.forget(namespace, name)
            seen.pop((namespace, name), None)
            return
        if shard.name is not None:  # its versions in this shard's watch (control.sharding)
            place_versions(kube, model)
        read = Seen(inputs((namespace, name), model), datetime.now(UTC))
        snapshot = evaluator.snapshots.get((namespace, name))
        # One status write for both passes, where they change it in turn (kube.status).
        with StatusBatch(kube, MODELS, namespace, name) as batch:
            reconcile_serving(batch, namespace, name, snapshot, telemetry=rollouts, turns=services)
            served_from = kube.cache.versions_of_model(MODEL_VERSIONS, namespace, name)
            new_data = evaluator.new_data.get((namespace, name))
            reconcile_training(batch, namespace, name, new_data, telemetry=trainings)
        seen[(namespace, name)] = read
        if kube.cache.versions_of_model(MODEL_VERSIONS, namespace, name) != served_from:
            # The training pass made, judged or expired a ModelVersion after the serving
            # pass read them (a Validated candidate's canary starts on the next pass); the
            # echo of its own write wakes nothing, so it asks for that pass itself.
            wake((namespace, name), True)

    def due_now() -> list[ModelKey]:
        now = datetime.now(UTC)
        return [
            key
            for key, model in kube.cache.held(MODELS)
            if due(model, inputs(key, model), seen.get(key), keeps_warm(kube.cache, *key), now)
        ]

    threads = ThreadPoolExecutor(WORKERS, thread_name_prefix="reconcile")
    memo["workers"] += [
        asyncio.create_task(work(queue, reconcile, threads)) for _ in range(WORKERS)
    ]
    memo["workers"].append(evaluation)
    everyone = _cache(memo).models
    period = _period(memo)
    memo["workers"].append(
        asyncio.create_task(_resync(period, queue, due_now, lambda: list(everyone)))
    )
    memo["workers"].append(asyncio.create_task(_relist(kube, listed, RELIST_PERIODS * period)))
    if shard.name is not None:
        memo["workers"].append(asyncio.create_task(_unplace_misplaced(kube, period)))


@kopf.on.cleanup()
async def stop_workers(*, memo: kopf.Memo, **_: Any) -> None:
    for stopped in memo.get("following", []):
        stopped.set()
    for task in memo.get("workers", []):
        task.cancel()
    await asyncio.gather(*memo.get("workers", []), return_exceptions=True)


async def _resync(
    period: float,
    queue: WorkQueue,
    due_now: Callable[[], list[ModelKey]],
    everyone: Callable[[], list[ModelKey]],
) -> None:
    """Every ``period`` seconds, the Models whose time has come (handlers.resync)."""
    while True:
        await asyncio.sleep(period)
        try:
            due = await asyncio.to_thread(due_now)
        except Exception:
            log.exception("choosing the Models to resync failed; all of them this time")
            due = everyone()
        for key in due:
            queue.add(key)


async def _relist(
    kube: CachedKube, listed: list[tuple[Resource, str | None, str | None]], period: float
) -> None:
    while True:
        await asyncio.sleep(period)
        try:
            await asyncio.to_thread(kube.sync, listed)
        except Exception:  # the caches stay as the watches keep them; again next time
            log.exception("listing the watch caches again failed")


def _period(memo: Any) -> float:
    """The resync period (``--resync-period``)."""
    return float((memo.get("options") or {}).get("resync_seconds") or RESYNC_SECONDS)


async def _evict_orphans(cache: ObjectCache, period: float) -> None:
    """A shard's caches drop the other shards' Models' children between full lists too."""
    while True:
        await asyncio.sleep(period)
        dropped = cache.evict_orphans()
        if dropped:
            log.info("not caching the children of %d more Models of other shards", dropped)


async def _unplace_misplaced(kube: CachedKube, period: float) -> None:
    """Every resync period, the versions labelled for this shard that the caches dropped
    (their Model is not this shard's) are unplaced, for their Model's shard to see."""
    while True:
        await asyncio.sleep(period)
        misplaced = kube.cache.take_misplaced()
        if not misplaced:
            continue
        try:
            unplaced = await asyncio.to_thread(unplace_versions, kube, misplaced)
        except Exception:  # the next full list finds them again
            log.exception("unplacing %d ModelVersions failed", len(misplaced))
            continue
        if unplaced:
            log.info("unplaced %d ModelVersions of Models this shard does not hold", unplaced)


def _served_presets(kube: Kube) -> list[Resource]:
    """The training workload presets whose CRDs are installed (a CRD installed later: its
    lists are the API server's until the operator restarts)."""
    found = (resource_of(kube, preset.api_version, preset.kind) for preset in PRESETS.values())
    return [served for served in found if served is not None]


def _listed(
    memo: Any, presets: list[Resource], first: bool = False
) -> list[tuple[Resource, str | None, str | None]]:
    """What the caches hold: (kind, label selector, namespace or None for all), the
    served workload ``presets`` among them. As the watches select them; but every list
    takes every ModelVersion, whichever shard it is labelled for, and keeps its own
    Models' (one that moved here while this replica stood by; one labelled by hand or by
    mistake for a shard no instance runs, which no watch of any shard selects); and the
    first list after a replica starts leading takes every training too (a Job made
    before Jobs carried the label)."""
    namespaces = (memo.get("options") or {}).get("namespaces") or [None]
    shard: Shard = memo["shard"]
    workloads = MANAGED if first else workload_selector(shard)
    kinds: list[tuple[Resource, str | None]] = [(MODELS, shard.model_selector())]
    kinds += [(MODEL_VERSIONS, None)]
    kinds += [
        (kind, MANAGED if first and kind == JOBS else selector)
        for kind, selector in child_selectors(shard).items()
    ]
    kinds += [(preset, workloads) for preset in presets]
    return [(kind, selector, ns) for kind, selector in kinds for ns in namespaces]


def _cache(memo: Any) -> WatchCache:
    cache: WatchCache | None = memo.get("cache")
    if cache is None:
        cache = memo["cache"] = WatchCache()
    return cache


def _objects(memo: Any) -> ObjectCache:
    """The watch caches; those of Models, ModelVersions and MetricTemplates are the
    evaluation's."""
    objects: ObjectCache | None = memo.get("objects")
    if objects is None:
        cache = _cache(memo)
        shard: Shard = memo.get("shard") or Shard()
        objects = memo["objects"] = ObjectCache(
            {
                MODELS: cache.models,
                MODEL_VERSIONS: cache.versions,
                METRIC_TEMPLATES: cache.templates,
            },
            scoped=shard.model_selector() is not None,
            placed=shard.name,
        )
    return objects


def _remember(memo: Any, resource: Resource, type_: str | None, body: Any) -> bool:
    """Keep the watch caches (an informer's store, in effect) and count the event, with
    how late it came (not the objects a list brings, kopf's type None); whether it was
    news. The echo of the operator's own write is not: the pass that wrote it holds its
    answer, and a pass for it would find nothing to do (writers outside the reconciles,
    the evaluation, wake the Model themselves)."""
    telemetry = memo["telemetry"]
    telemetry.watch_events.labels(resource.plural).inc()
    if type_ in ("ADDED", "MODIFIED"):
        delay = write_delay(body, time.time())
        if delay is not None:
            telemetry.watch_delay.labels(resource.plural).observe(delay)
    return _objects(memo).remember(resource, type_, dict(body))


def _enqueue(memo: Any, namespace: str | None, model: str | None, urgent: bool = False) -> None:
    queue: WorkQueue | None = memo.get("queue")
    if queue is not None and namespace and model:
        queue.add((namespace, model), urgent)


def _urgent(
    memo: Any, resource: Resource, namespace: str | None, type_: str | None, body: Mapping[str, Any]
) -> bool:
    """Whether a watch event is someone's change (handlers.urgency), against the cache's
    copy: read before the event is remembered."""
    held = _objects(memo).get(resource, namespace or "", body["metadata"]["name"])
    return is_urgent(type_, held, body)


@kopf.on.event(GROUP, VERSION, "models")
async def model_changed(
    *, memo: Any, namespace: str | None, name: str, type: str | None, body: kopf.Body, **_: Any
) -> None:
    cached: CachedKube | None = memo.get("cached")
    if (
        cached is not None
        and namespace
        and type != "DELETED"
        and cached.cache.adopts(namespace, name, body)
    ):
        # Moved here from another shard: held with its children at once, so that no
        # reconcile or evaluation reads this Model without them.
        memo["telemetry"].watch_events.labels(MODELS.plural).inc()
        await asyncio.to_thread(cached.adopt, dict(body))
        _enqueue(memo, namespace, name, urgent=True)
        return
    urgent = _urgent(memo, MODELS, namespace, type, body)
    if _remember(memo, MODELS, type, body):
        _enqueue(memo, namespace, name, urgent)


@kopf.on.event(GROUP, VERSION, "modelversions")
async def version_changed(*, memo: Any, type: str | None, body: kopf.Body, **_: Any) -> None:
    cached: CachedKube | None = memo.get("cached")
    if type == "DELETED" and cached is not None:
        gone = dict(body)
        if cached.cache.hides(gone):
            # Deleted, or relabelled away from this shard: read again. One relabelled is
            # held on, and its Model's reconcile labels it back (handlers.placing).
            try:
                found = await asyncio.to_thread(still_held, cached.live, memo["shard"], gone)
            except Exception:  # held as it was: the next full list says whether it is gone
                log.exception("reading ModelVersion %s again failed", gone["metadata"]["name"])
                return
            if found is not None:
                _version_event(memo, "MODIFIED", found)
                return
    _version_event(memo, type, body)


def _version_event(memo: Any, type_: str | None, body: Mapping[str, Any]) -> None:
    """A ModelVersion's event, from kopf's watch or the unplaced versions' (on the loop)."""
    namespace = body["metadata"].get("namespace")
    urgent = _urgent(memo, MODEL_VERSIONS, namespace, type_, body)
    if _remember(memo, MODEL_VERSIONS, type_, body):
        _enqueue(memo, namespace, (body.get("spec") or {}).get("model"), urgent)


@kopf.on.event(GROUP, VERSION, "metrictemplates")
async def template_changed(*, memo: Any, type: str | None, body: kopf.Body, **_: Any) -> None:
    _remember(memo, METRIC_TEMPLATES, type, body)


# No label filters here: the API server applies child_selectors, so every event that
# arrives is about one of ModelLoop's children, and counting them here counts the watch.
@kopf.on.event("apps", "v1", "deployments")
@kopf.on.event("batch", "v1", "jobs")
@kopf.on.event("", "v1", "services")
@kopf.on.event("serving.kserve.io", "v1beta1", "inferenceservices")
@kopf.on.event("gateway.networking.k8s.io", "v1", "httproutes")
@kopf.on.event("networking.istio.io", "v1", "virtualservices")
async def child_changed(
    *,
    memo: Any,
    resource: kopf.Resource,
    namespace: str | None,
    labels: Mapping[str, str],
    type: str | None,
    body: kopf.Body,
    **_: Any,
) -> None:
    if _remember(memo, Resource(resource.group, resource.version, resource.plural), type, body):
        _enqueue(memo, namespace, labels.get(LABEL_MODEL))


# Training workloads of the preset kinds wake their Model as Jobs do (a custom kind is
# noticed at the resync). A kind whose CRD is absent: kopf says so once, and watches it
# from when the CRD appears.
for _preset in PRESETS.values():
    _group, _version = _preset.api_version.split("/")
    kopf.on.event(group=_group, version=_version, kind=_preset.kind)(child_changed)
