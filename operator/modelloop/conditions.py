"""Conditions in the ``metav1.Condition`` shape, merged the way Kubernetes expects."""

from datetime import UTC, datetime
from typing import Any, Literal

ConditionStatus = Literal["True", "False", "Unknown"]


def stamp(moment: datetime) -> str:
    """A time as the Kubernetes API writes it (RFC 3339, whole seconds, UTC); an aware time
    is converted to UTC first."""
    return (moment.astimezone(UTC) if moment.tzinfo else moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(
    type_: str, status: ConditionStatus, reason: str, message: str = ""
) -> dict[str, Any]:
    return {"type": type_, "status": status, "reason": reason, "message": message}


def merge_conditions(
    current: list[dict[str, Any]],
    updates: list[dict[str, Any]],
    now: datetime,
    generation: int | None,
) -> list[dict[str, Any]]:
    """Replace the conditions of the updated types, keep the others.

    ``lastTransitionTime`` moves only when a condition's status changes, so
    merging the same updates twice yields the same list (no needless PATCH).
    """
    by_type = {c["type"]: c for c in current}
    written = stamp(now)
    for update in updates:
        previous = by_type.get(update["type"])
        unchanged = previous is not None and previous.get("status") == update["status"]
        by_type[update["type"]] = {
            **update,
            "lastTransitionTime": previous.get("lastTransitionTime", written)
            if previous is not None and unchanged
            else written,
            **({"observedGeneration": generation} if generation is not None else {}),
        }
    return sorted(by_type.values(), key=lambda c: str(c["type"]))


def find(conditions: list[dict[str, Any]], type_: str) -> dict[str, Any] | None:
    return next((c for c in conditions if c.get("type") == type_), None)
