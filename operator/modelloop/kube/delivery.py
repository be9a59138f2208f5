"""How late a watch event reaches the operator: from the write that made it, as the API
server stamped it, to the event's arrival.

The API server stamps each field manager's entry in ``metadata.managedFields`` with the
time of that manager's latest change, to the second. The write that made an event is
the object's newest stamp. A write that changes nothing makes no event, and one that
touches no managed field (a deletion's timestamp) leaves an older stamp: read late.
The delay is taken against this process's clock, so a clock off from the API server's
shifts it by as much.
"""

from collections.abc import Mapping
from datetime import datetime
from typing import Any

# A stamp is truncated to its second; the write happened within it, in its middle on average.
WITHIN_SECOND = 0.5


def written_at(body: Mapping[str, Any], manager: str | None = None) -> float | None:
    """The epoch time of the object's newest stamped write (of ``manager``'s entries
    only, when named), in the middle of its second; None without a readable stamp."""
    entries = (body.get("metadata") or {}).get("managedFields") or []
    stamps = [
        stamp
        for entry in entries
        if isinstance(entry, Mapping)
        and isinstance(stamp := entry.get("time"), str)
        and (manager is None or entry.get("manager") == manager)
    ]
    if not stamps:
        return None
    try:  # RFC 3339 in UTC, as the API server writes it: ordered as text
        return datetime.fromisoformat(max(stamps)).timestamp() + WITHIN_SECOND
    except ValueError:
        return None


def write_delay(body: Mapping[str, Any], now: float) -> float | None:
    """Seconds from the object's newest stamped write to ``now`` (epoch seconds), at
    least 0; None without a readable stamp."""
    written = written_at(body)
    return None if written is None else max(0.0, now - written)
