"""Which kind of notification an Event is, and which receivers subscribed to it. Pure."""

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from ..api.model import NotificationEvent, NotificationReceiver

# The Event reasons of each kind a receiver subscribes to (api.model.NotificationEvent).
REASONS: dict[NotificationEvent, tuple[str, ...]] = {
    "breach": ("Breach",),
    "breachPending": ("BreachPending",),
    "recovered": ("Recovered",),
    "inconclusive": ("Inconclusive",),
    "waitingForLabels": ("WaitingForLabels",),
    "trainingStarted": ("TrainingStarted",),
    "trainingFinished": ("TrainingSucceeded", "TrainingFailed"),
    "trainingBackoff": ("TriggerBackoff",),
    "validated": ("Validated",),
    "rejected": ("Rejected",),
    "rolloutStarted": ("RolloutStarted", "RolloutRestarted"),
    "canaryStep": ("WeightChanged", "StepAdvanced"),
    "waitingForApproval": ("WaitingForApproval", "WaitingForConfirmation"),
    "paused": ("RolloutPaused",),
    "promoted": ("Promoted",),
    "rolledBack": ("RolledBack",),
    "earlyRollback": ("EarlyRollback", "EarlyRollbackReversed"),
    "fault": (
        "EvaluationFailed",
        "WriteRefused",
        "JobRefused",
        "InvalidSpec",
        "TrafficWriteFailed",
    ),
}
KIND_OF: dict[str, NotificationEvent] = {
    reason: kind for kind, reasons in REASONS.items() for reason in reasons
}


def kind_of(
    reason: str, type_: Literal["Normal", "Warning"], evidence: Mapping[str, Any] | None = None
) -> NotificationEvent | None:
    """The kind of an Event. Any other Warning is a fault, so a reason added later that a
    person should hear of is not lost; any other Normal Event (a Deployment updated, a
    version expired) is no notification. A Recovered Event that ended no breach (its
    evidence lists none: the first verdicts after inconclusive data) is none either."""
    kind = KIND_OF.get(reason)
    if kind is None:
        return "fault" if type_ == "Warning" else None
    if kind == "recovered" and evidence is not None and not evidence.get("verdicts"):
        return None
    return kind


def recipients(
    receivers: Sequence[NotificationReceiver], kind: NotificationEvent | None
) -> list[NotificationReceiver]:
    """The receivers subscribed to an Event of this kind (none for no kind)."""
    return [r for r in receivers if kind is not None and kind in r.events]
