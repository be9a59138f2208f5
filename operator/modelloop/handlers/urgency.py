"""Which watch events go to the work queue's urgent lane: someone's change.

An event is someone's change when its object is new, or its spec (generation), labels
or annotations (a retraining request, a pin) differ from the cache's copy; a change of
status alone is the operator's own echo or a child's progress, and waits its turn.

Objects a list brings (kopf's event type ``None``: the first list after a start, a
relist after a broken watch) are news only when the cache held them and they changed
meanwhile — an edit the watch missed. A list of objects the cache never held is the
whole fleet arriving at once (a restart): sent to the urgent lane, it would put a
user's edit made during the catch-up behind every Model. controller-runtime's priority
queue likewise ranks its initial list below the events that follow.
"""

from collections.abc import Mapping
from typing import Any

SOMEONES_CHANGE = ("generation", "labels", "annotations")


def is_urgent(type_: str | None, held: Mapping[str, Any] | None, body: Mapping[str, Any]) -> bool:
    """Whether the event of ``type_`` bringing ``body`` is someone's change, given the
    cache's copy ``held`` as it was before the event (None: not held)."""
    if type_ == "DELETED":
        return False
    if held is None:
        return type_ is not None
    before, after = held["metadata"], body["metadata"]
    return any(before.get(k) != after.get(k) for k in SOMEONES_CHANGE)
