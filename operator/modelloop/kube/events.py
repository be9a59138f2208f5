"""Kubernetes Events that explain ModelLoop's decisions, with their numbers.

Every Event posted also goes to the process' sink, when one is set (``set_sink``: the
notifier, see ``modelloop.notify``), with the evidence the caller passed: the numbers
behind the decision as structured data.
"""

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

from ..conditions import stamp
from .rest import EVENTS, Kube, KubeError, Obj

log = logging.getLogger(__name__)
COMPONENT = "modelloop"

# (the Event as posted, the object it is about, the evidence or None); must not block.
EventSink = Callable[[Obj, Obj, Obj | None], None]
_sink: EventSink | None = None


def set_sink(sink: EventSink | None) -> None:
    """Where every Event this process posts also goes (None: nowhere)."""
    global _sink
    _sink = sink


def post_event(
    kube: Kube,
    involved: Obj,
    reason: str,
    message: str,
    type_: Literal["Normal", "Warning"] = "Normal",
    evidence: Obj | None = None,
) -> None:
    """Hand a core/v1 Event about ``involved`` to the sink, and post it; a failure of
    either is logged, never raised. The sink has it even when the API server refuses it:
    the decision it tells of was made. Both wait for the writes ``kube`` holds back (a
    status a reconcile has yet to write: ``Kube.after_writes``)."""
    kube.after_writes(lambda: _post(kube, involved, reason, message, type_, evidence))


def _post(
    kube: Kube,
    involved: Obj,
    reason: str,
    message: str,
    type_: Literal["Normal", "Warning"],
    evidence: Obj | None,
) -> None:
    meta = involved["metadata"]
    now = stamp(datetime.now(UTC))
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            # As Kubernetes names them: the creation time in hex nanoseconds, so a list
            # (ordered by name) is in the order the events happened.
            "name": f"{meta['name']}.{time.time_ns():x}",
            "namespace": meta["namespace"],
        },
        "involvedObject": {
            "apiVersion": involved["apiVersion"],
            "kind": involved["kind"],
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        },
        "reason": reason,
        "message": message[:1024],
        "type": type_,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
    }
    log.info("%s %s/%s: %s", reason, meta["namespace"], meta["name"], message)
    sink = _sink
    if sink is not None:  # first: it only queues, and then follows the decisions' order
        try:
            sink(event, involved, evidence)
        except Exception:
            log.exception("could not hand event %s to the notifier", reason)
    try:
        kube.create(EVENTS, meta["namespace"], event)
    except KubeError as error:
        log.warning("could not post event %s: %s", reason, error)
