"""Kubernetes Events that explain ModelLoop's decisions, with their numbers."""

import logging
import time
from datetime import UTC, datetime
from typing import Literal

from ..conditions import stamp
from .rest import EVENTS, Kube, KubeError, Obj

log = logging.getLogger(__name__)
COMPONENT = "modelloop"


def post_event(
    kube: Kube,
    involved: Obj,
    reason: str,
    message: str,
    type_: Literal["Normal", "Warning"] = "Normal",
) -> None:
    """Post a core/v1 Event about ``involved``; a failure to post is logged, never raised."""
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
    try:
        kube.create(EVENTS, meta["namespace"], event)
    except KubeError as error:
        log.warning("could not post event %s: %s", reason, error)
