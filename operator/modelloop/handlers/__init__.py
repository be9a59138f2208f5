"""kopf registrations: watch events become keys in one work queue.

The handlers are thin on purpose: every event about a Model, one of its
ModelVersions or one of its Deployments and Services only says "look at this
Model again". The reconcile itself reads the world and is level-triggered, so
a missed or repeated event changes nothing. No handler here stores progress
on the objects (no finalizers, no kopf annotations): all state lives in status,
labels and deterministically named children.
"""

import asyncio
from collections.abc import Hashable, Mapping
from datetime import timedelta
from typing import Any

import kopf

from ..api.vocabulary import GROUP, LABEL_MANAGED_BY, LABEL_MODEL, MANAGED_BY, VERSION
from ..control.leader import LeaderElector, default_identity, lead
from ..control.workqueue import WorkQueue, work
from ..kube.rest import Kube, Obj
from ..monitoring.evaluator import WatchCache
from ..retraining.jobs import LABEL_TRAINING
from ..retraining.telemetry import TrainingTelemetry
from ..retraining.workloads import PRESETS
from ..rollout.telemetry import RolloutTelemetry
from .evaluation import serve_metrics, start_evaluation
from .serving import reconcile_serving
from .training import reconcile_training

RESYNC_SECONDS = 30  # schedules, cooldowns and backoffs expire without an event

WORKERS = 4
LEASE_DURATION = timedelta(seconds=15)  # a standby takes over within this after a crash


@kopf.on.startup()
async def start_workers(*, memo: kopf.Memo, settings: kopf.OperatorSettings, **_: Any) -> None:
    """Watches run on every replica; the workers and the evaluation only on the leader."""
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.watching.server_timeout = 300
    kube = memo.get("kube") or Kube.from_environment()
    memo["kube"] = kube
    memo["queue"] = WorkQueue()
    memo["workers"] = []
    # Before the first watch event: each object's memo is a shallow copy of this one, so a
    # standby fills the same cache its evaluation reads once it leads.
    _cache(memo)
    serve_metrics(memo)
    election = (memo.get("options") or {}).get("leader_election")
    if not election:
        _act(memo, kube)
        return
    namespace, name = election
    elector = LeaderElector(kube, namespace, name, default_identity(), LEASE_DURATION)
    memo["workers"].append(asyncio.create_task(lead(elector, lambda: _act(memo, kube))))


def _act(memo: Any, kube: Kube) -> None:
    queue: WorkQueue = memo["queue"]
    memo["telemetry"].leading.set(1)
    evaluation = start_evaluation(memo, kube, _cache(memo))
    evaluator = memo["evaluator"]
    loop = asyncio.get_running_loop()
    evaluator.wake = lambda key: loop.call_soon_threadsafe(queue.add, key)
    rollouts = RolloutTelemetry(evaluator.telemetry.registry)
    trainings = TrainingTelemetry(evaluator.telemetry.registry)

    def reconcile(key: Hashable) -> None:
        assert isinstance(key, tuple)
        namespace, name = str(key[0]), str(key[1])
        snapshot = evaluator.snapshots.get((namespace, name))
        reconcile_serving(kube, namespace, name, snapshot, telemetry=rollouts)
        new_data = evaluator.new_data.get((namespace, name))
        reconcile_training(kube, namespace, name, new_data, telemetry=trainings)

    memo["workers"] += [asyncio.create_task(work(queue, reconcile)) for _ in range(WORKERS)]
    memo["workers"].append(evaluation)
    memo["workers"].append(asyncio.create_task(_resync(queue, _cache(memo))))


@kopf.on.cleanup()
async def stop_workers(*, memo: kopf.Memo, **_: Any) -> None:
    for task in memo.get("workers", []):
        task.cancel()
    await asyncio.gather(*memo.get("workers", []), return_exceptions=True)


async def _resync(queue: WorkQueue, cache: WatchCache) -> None:
    while True:
        await asyncio.sleep(RESYNC_SECONDS)
        for key in list(cache.models):
            queue.add(key)


def _cache(memo: Any) -> WatchCache:
    cache: WatchCache | None = memo.get("cache")
    if cache is None:
        cache = memo["cache"] = WatchCache()
    return cache


def _remember(store: dict[tuple[str, str], Obj], type_: str | None, body: Any) -> None:
    """Keep the watch cache the evaluation reads (an informer's store, in effect)."""
    key = (body["metadata"]["namespace"], body["metadata"]["name"])
    if type_ == "DELETED":
        store.pop(key, None)
    else:
        store[key] = dict(body)


def _enqueue(memo: Any, namespace: str | None, model: str | None) -> None:
    queue: WorkQueue | None = memo.get("queue")
    if queue is not None and namespace and model:
        queue.add((namespace, model))


@kopf.on.event(GROUP, VERSION, "models")
def model_changed(
    *, memo: Any, namespace: str | None, name: str, type: str | None, body: kopf.Body, **_: Any
) -> None:
    _remember(_cache(memo).models, type, body)
    _enqueue(memo, namespace, name)


@kopf.on.event(GROUP, VERSION, "modelversions")
def version_changed(
    *,
    memo: Any,
    namespace: str | None,
    spec: kopf.Spec,
    type: str | None,
    body: kopf.Body,
    **_: Any,
) -> None:
    _remember(_cache(memo).versions, type, body)
    _enqueue(memo, namespace, spec.get("model"))


@kopf.on.event(GROUP, VERSION, "metrictemplates")
def template_changed(*, memo: Any, type: str | None, body: kopf.Body, **_: Any) -> None:
    _remember(_cache(memo).templates, type, body)


@kopf.on.event("apps", "v1", "deployments", labels={LABEL_MANAGED_BY: MANAGED_BY})
@kopf.on.event("batch", "v1", "jobs", labels={LABEL_MANAGED_BY: MANAGED_BY})
@kopf.on.event("", "v1", "pods", labels={LABEL_TRAINING: kopf.PRESENT})
@kopf.on.event("", "v1", "services", labels={LABEL_MANAGED_BY: MANAGED_BY})
@kopf.on.event(
    "serving.kserve.io", "v1beta1", "inferenceservices", labels={LABEL_MANAGED_BY: MANAGED_BY}
)
def child_changed(*, memo: Any, namespace: str | None, labels: Mapping[str, str], **_: Any) -> None:
    _enqueue(memo, namespace, labels.get(LABEL_MODEL))


# Training workloads of the preset kinds wake their Model as Jobs do (a custom kind is
# noticed at the resync). A kind whose CRD is absent: kopf says so once, and watches it
# from when the CRD appears.
for _preset in PRESETS.values():
    _group, _version = _preset.api_version.split("/")
    kopf.on.event(
        group=_group, version=_version, kind=_preset.kind, labels={LABEL_MANAGED_BY: MANAGED_BY}
    )(child_changed)
