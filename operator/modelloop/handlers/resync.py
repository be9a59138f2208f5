"""Which Models the periodic resync reconciles again.

Every change a reconcile reads arrives as a watch event or an evaluation that wakes
its Model, and wakes it at once; the resync exists for what changes with time alone
(a schedule fires, a cooldown or backoff ends, a canary step is due, labels mature,
a retired version's warm replicas expire). Reconciling every Model every 30 s for
that grew with the fleet; instead the resync takes a Model when

- what its last reconcile read has changed since (a missed event costs one period), or
- it waits on time: a rollout in flight, labels pending, a training running or held by
  a cooldown, backoff or daily limit, a schedule that fired since, a retired version
  still warm; or
- it was not reconciled for its full-resync bound (``full_resync_bound``: a bound on
  any wait this list misses).

At rest — serving, healthy, nothing held — a Model costs the resync one comparison.
"""

import zlib
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..api.reasons import TrainingReason
from ..api.resources import MODEL_VERSIONS
from ..api.vocabulary import LABEL_VERSION, VersionPhase
from ..conditions import find
from ..kube.cache import ObjectCache
from ..kube.rest import DEPLOYMENTS, Obj, Resource
from ..retraining.cron import previous_fire

# The mean bound; each Model's is within ±SPREAD of it. Every wait on time the resync
# knows of is listed above, and a missed watch event is caught by the relist (10 minutes):
# the bound is a safety net, at the relist's period. At 5 minutes it took 637 reconciles of
# 2500 Models at rest in a 90 s window, at 10 minutes 74; the CPU of those reconciles was
# within the window's noise (docs/scale.md, "The full resync at 5 and at 10 minutes").
FULL_RESYNC = timedelta(minutes=10)
SPREAD = 0.25

# Training condition reasons that end with time, or with a training's end.
WAITS_ON_TIME = frozenset(
    {
        TrainingReason.STARTED,
        TrainingReason.RUNNING,
        TrainingReason.ROLLOUT_IN_PROGRESS,
        TrainingReason.COOLDOWN,
        TrainingReason.MAX_PER_DAY,
        TrainingReason.BACKOFF,
        TrainingReason.REJECTED_BACKOFF,
    }
)


@dataclass(frozen=True)
class Seen:
    """What a reconcile read (``inputs``) and when."""

    inputs: Hashable
    at: datetime


def inputs_of(
    cache: ObjectCache,
    kinds: tuple[Resource, ...],
    namespace: str,
    model: Obj,
    evaluation: Hashable,
) -> Hashable:
    """Everything a reconcile of ``model`` reads, by identity: its resourceVersion, its
    children's, and the evaluation's (snapshot, new-data reading)."""
    name = model["metadata"]["name"]
    children = tuple(cache.versions_of_model(kind, namespace, name) for kind in kinds)
    return (model["metadata"].get("resourceVersion"), children, evaluation)


def waits_on_time(model: Obj, warm: bool, since: datetime, now: datetime) -> bool:
    """Whether a reconcile now could do what one at ``since`` did not, with nothing read
    changed; ``warm``: a Deployment of a version no longer serving still has replicas."""
    status = model.get("status") or {}
    if warm or status.get("canary") or status.get("labelsPending"):
        return True
    if (status.get("training") or {}).get("running"):
        return True
    training = find(status.get("conditions") or [], "Training") or {}
    if training.get("reason") in WAITS_ON_TIME:
        return True
    retraining = (model.get("spec") or {}).get("retraining") or {}
    schedule = (retraining.get("triggers") or {}).get("schedule")
    if schedule:
        fired = previous_fire(schedule, now)
        if fired is not None and fired > since:
            return True
    return False


def full_resync_bound(model: Obj) -> timedelta:
    """How long a Model at rest goes without a reconcile: ``FULL_RESYNC`` ± ``SPREAD``,
    fixed per Model (a hash of its namespace and name, the same in every process).
    A started operator reconciles its whole fleet within a minute or two, and one bound
    for all would have taken the fleet again in the same few resyncs every period for
    good; bounds spread over 5 minutes take it in ten or more, and spread further as
    the Models' own periods drift apart."""
    meta = model["metadata"]
    key = f"{meta.get('namespace', '')}/{meta['name']}".encode()
    share = zlib.crc32(key) / 2**32  # in [0, 1)
    return FULL_RESYNC * (1 - SPREAD + 2 * SPREAD * share)


def due(model: Obj, inputs: Hashable, seen: Seen | None, warm: bool, now: datetime) -> bool:
    if seen is None or seen.inputs != inputs or now - seen.at >= full_resync_bound(model):
        return True
    return waits_on_time(model, warm, seen.at, now)


def keeps_warm(cache: ObjectCache, namespace: str, model: str) -> bool:
    """A Deployment of a version that no longer serves still has replicas: its scale-down
    waits for rollout.scaleDownDelay."""
    serving = {
        v["metadata"]["name"]
        for v in cache.held_of_model(MODEL_VERSIONS, namespace, model)
        if (v.get("status") or {}).get("phase") in (VersionPhase.SERVING, VersionPhase.CANARY)
    }
    return any(
        (d["metadata"].get("labels") or {}).get(LABEL_VERSION) not in serving
        and ((d.get("spec") or {}).get("replicas") or 0) > 0
        for d in cache.held_of_model(DEPLOYMENTS, namespace, model)
    )
