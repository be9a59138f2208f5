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

One reconcile runs two of those loops in turn, serving then training, and each ended
with a write of its own: a new Model cost two status patches where one would do, and so
did every spec edit (each loop's conditions take the new generation). A reconcile holds
them in a ``StatusBatch``: the changes written to the Model's status are composed and
sent as one write, when the reconcile ends or before any other write it makes (a
training's number is written before its Job exists, a rollout's intent before its
traffic moves: the order of durable writes is the order of the code). The Events a
held change precedes wait for its write.
"""

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from ..conditions import merge_conditions
from .rest import Kube, KubeError, Obj, Objs, Resource

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
    if isinstance(kube, StatusBatch) and kube.holds(resource, body):
        return kube.hold(body, change)
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


class HeldWriteFailed(Exception):
    """The status a batch held could not be written before another write: raised past
    the handlers of that write's own errors (a refused Job is not a refused status), and
    as its cause, the ``KubeError``, when the batch's block ends."""


@dataclass
class _Held:
    """A change held back, and the actions (Events) that wait for its write."""

    change: StatusChange
    then: list[Callable[[], None]] = field(default_factory=list)
    urgent: bool = False


class StatusBatch(Kube):
    """A client over ``inner`` for one reconcile of one object, that holds back the
    writes of that object's status and sends them as one (see the module's docstring).

    Reads of the object see the changes held. Any other write sends them first. Use it
    as a context manager: the changes still held are written when the block ends, even
    when it ends in an error (what a pass wrote before failing stays written, as without
    the batch). Not thread-safe: one reconcile, one thread."""

    def __init__(self, inner: Kube, resource: Resource, namespace: str, name: str) -> None:
        super().__init__(inner.api_client, inner.timeout)
        self.inner = inner
        self.key = (resource, namespace, name)
        self._held: list[_Held] = []
        self._base: Obj | None = None  # the object the held changes apply to
        self._view: Obj | None = None  # ... and with them applied
        self._urgent = 0

    def __enter__(self) -> "StatusBatch":
        return self

    def __exit__(self, *exc: object) -> None:
        """Writes what is still held; the client over which it was made stays open."""
        if isinstance(exc[1], HeldWriteFailed) and isinstance(exc[1].__cause__, KubeError):
            raise exc[1].__cause__
        if exc[1] is None:
            self.flush()
            return
        try:
            self.flush()
        except Exception:
            log.exception("writing the status held when %s/%s's pass failed", *self.key[1:])

    def holds(self, resource: Resource, body: Obj) -> bool:
        meta = body["metadata"]
        return (resource, meta.get("namespace"), meta["name"]) == self.key

    def hold(self, body: Obj, change: StatusChange) -> StatusWrite:
        """Hold ``change`` back; the object as it will be written (``written``: False,
        nothing was sent)."""
        if self._view is None:
            self._base = self._view = body
        view = self._view
        status = json_safe(change(dict(view.get("status") or {})))
        self._view = {**view, "status": status}
        self._held.append(_Held(change, urgent=self._urgent > 0))
        return StatusWrite(self._view, written=False)

    def after_writes(self, action: Callable[[], None]) -> None:
        if self._held:
            self._held[-1].then.append(action)
        else:
            action()

    def flush(self) -> None:
        """Write the changes held as one, then run what waited for them. When that write
        fails, each change is written on its own, in order, as if never held: those
        before the one that fails are written and their Events posted; its error is
        raised."""
        if not self._held:
            return
        held, base = self._held, self._base
        self._held, self._base, self._view = [], None, None
        assert base is not None
        resource = self.key[0]

        def composed(status: Obj) -> Obj:
            for one in held:
                status = json_safe(one.change(dict(status)))
            return status

        with self._lane(any(h.urgent for h in held)):
            try:
                write_status(self.inner, resource, base, composed)
            except KubeError:
                log.debug("status of %s/%s: writing its changes one by one", *self.key[1:])
                current = base
                for one in held:
                    written = write_status(self.inner, resource, current, one.change)
                    current = written.body if written is not None else current
                    for action in one.then:
                        action()
                return
        for one in held:
            for action in one.then:
                action()

    def _send(self) -> None:
        """Before another write: what is held goes first, or that write does not happen."""
        try:
            self.flush()
        except KubeError as error:
            raise HeldWriteFailed(f"the status held for {self.key[2]}: {error}") from error

    def _lane(self, urgent: bool) -> AbstractContextManager[None]:
        return self.inner.urgent() if urgent else nullcontext()

    @contextmanager
    def urgent(self) -> Iterator[None]:
        """The inner client's urgent lane, which the changes held inside keep."""
        with self.inner.urgent():
            self._urgent += 1
            try:
                yield
            finally:
                self._urgent -= 1

    @property
    def live(self) -> Kube:
        return self.inner.live

    def get(self, resource: Resource, namespace: str | None, name: str) -> Obj | None:
        if self._view is not None and (resource, namespace, name) == self.key:
            return self._view
        return self.inner.get(resource, namespace, name)

    def list(
        self, resource: Resource, namespace: str | None, label_selector: str | None = None
    ) -> list[Obj]:
        return self.inner.list(resource, namespace, label_selector)

    def versions_of(self, namespace: str, model: str, fresh: bool = False) -> Objs:
        return self.inner.versions_of(namespace, model, fresh)

    def request(self, method: str, path: str, **options: Any) -> Obj:
        if method != "GET":
            self._send()
        return self.inner.request(method, path, **options)

    def create(self, resource: Resource, namespace: str | None, body: Obj) -> Obj:
        self._send()
        return self.inner.create(resource, namespace, body)

    def apply(self, resource: Resource, namespace: str | None, body: Obj) -> Obj:
        self._send()
        return self.inner.apply(resource, namespace, body)

    def merge_patch(
        self, resource: Resource, namespace: str | None, name: str, patch: Obj, sub: str = ""
    ) -> Obj:
        self._send()
        return self.inner.merge_patch(resource, namespace, name, patch, sub)

    def json_patch(
        self, resource: Resource, namespace: str | None, name: str, ops: Sequence[Obj]
    ) -> Obj:
        self._send()
        return self.inner.json_patch(resource, namespace, name, ops)

    def delete(self, resource: Resource, namespace: str | None, name: str) -> bool:
        self._send()
        return self.inner.delete(resource, namespace, name)
