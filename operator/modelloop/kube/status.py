"""The one way ModelLoop writes a custom resource's status.

Three loops write ``Model.status`` — the evaluation (verdicts, health conditions),
the serving and rollout reconcile (stable version, canary, phase, its conditions)
and the training reconcile (training bookkeeping, the Training condition) — and
each owns its own fields. Every write goes through ``write_status``:

1. The writer passes a *change*, a function from the status as it is now to the
   status with its own fields set — never the whole status as it read it once.
2. The change is applied to the freshest object and sent as a merge patch guarded
   by ``metadata.resourceVersion``; nothing is sent when it changes nothing.
3. On a conflict (another loop wrote in between) the object is read again and the
   change applied again, at most ``ATTEMPTS`` times. The other loop's fields are
   never overwritten, because the change only sets its own.

Why read-modify-write and not server-side apply with a field manager per loop:
conditions are one list keyed by type that all three loops share; a merge of
conditions by type (``merge_conditions``) keeps each condition's
``lastTransitionTime`` right, which apply cannot do without first reading it.

Callers post the Events of a decision only after ``write_status`` returned
``written=True`` (or nothing needed writing): an Event never reports a write that
did not happen, and a retried write posts nothing twice.
"""

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from ..conditions import merge_conditions
from .rest import KubeError, Obj, Resource

log = logging.getLogger(__name__)
ATTEMPTS = 4

StatusChange = Callable[[Obj], Obj]


class StatusApi(Protocol):
    """What the writer needs of the API client (``kube.rest.Kube`` is one)."""

    @property
    def live(self) -> "StatusApi":
        """The client whose reads are the API server's (after a conflict, a cache's
        copy may still be the one that conflicted)."""
        ...

    def get(self, resource: Resource, namespace: str | None, name: str) -> Obj | None: ...

    def merge_patch(
        self, resource: Resource, namespace: str | None, name: str, patch: Obj, sub: str = ""
    ) -> Obj: ...


@dataclass(frozen=True)
class StatusWrite:
    """The object after the write (or as read, when nothing changed), and whether a PATCH
    was sent and accepted."""

    body: Obj
    written: bool


def owned_fields(
    owned: Obj,
    conditions: Sequence[Obj] = (),
    now: datetime | None = None,
    generation: int | None = None,
) -> StatusChange:
    """The change of a writer that sets ``owned`` and merges its ``conditions`` (by type,
    ``merge_conditions``) into the conditions as they are at the time of the write."""

    def change(status: Obj) -> Obj:
        new = status | owned
        if conditions:
            assert now is not None
            current = status.get("conditions") or []
            new["conditions"] = merge_conditions(current, list(conditions), now, generation)
        return new

    return change


def json_safe(value: Any) -> Any:
    """``value`` with every NaN and infinity replaced by None: the API server refuses
    a status holding one, and would then refuse every later write of the object."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


def write_status(
    kube: StatusApi,
    resource: Resource,
    body: Obj,
    change: StatusChange,
    *,
    attempts: int = ATTEMPTS,
) -> StatusWrite | None:
    """Apply ``change`` to the object's status and persist it; None when the object is gone.

    ``body`` is the object as the caller last read it; ``change`` receives a copy of
    its status (a dict, possibly empty) and returns the new status. Raises the
    ``KubeError`` of a refused write (422, 403, ...), and a conflict after
    ``attempts`` tries.
    """
    meta = body["metadata"]
    namespace, name = meta.get("namespace"), meta["name"]
    current: Obj | None = body
    for attempt in range(attempts):
        if current is None:
            return None
        before = current.get("status") or {}
        after = json_safe(change(dict(before)))
        patch = {k: v for k, v in after.items() if before.get(k) != v}
        patch |= {k: None for k in before if k not in after}
        if not patch:
            return StatusWrite(current, written=False)
        try:
            written = kube.merge_patch(
                resource,
                namespace,
                name,
                {
                    "metadata": {"resourceVersion": current["metadata"]["resourceVersion"]},
                    "status": patch,
                },
                sub="status",
            )
        except KubeError as error:
            if not error.conflict or attempt == attempts - 1:
                raise
            log.debug("status of %s/%s: conflict, reading it again", namespace, name)
            current = kube.live.get(resource, namespace, name)  # not a cache's
            continue
        return StatusWrite(written, written=True)
    raise AssertionError("unreachable: the last attempt returns or raises")
