"""Why no training starts: a reason code with the numbers behind it, and its words. Pure."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from ..api.model import TrainingRecord
from ..api.reasons import TrainingReason
from ..conditions import stamp


@dataclass(frozen=True)
class Hold:
    """No training starts now: the reason code and the numbers behind it."""

    code: TrainingReason
    trigger: str | None = None  # the trigger held back by a guard
    record: TrainingRecord | None = None  # the running training
    automation: str | None = None
    canary: str | None = None
    limit: str | None = None  # the guard's setting: cooldown, maxPerDay
    count: int | None = None  # trainings in the last 24 hours, failures or rejections in a row
    since: datetime | None = None  # the last training's start or end
    wait: timedelta | None = None  # the backoff
    until: datetime | None = None  # the end of the backoff after rejections
    grown: float | None = None  # new labelled examples since the last training of the kind
    minimum: int | None = None  # spec.retraining.newData.minimum

    @property
    def reason(self) -> str:
        return describe_hold(self)


def describe_hold(hold: Hold, kind: str = "Job") -> str:
    """The words for a hold, from its code and numbers; ``kind``: the running training's
    (a workload's, else Job)."""
    code = hold.code
    if code == TrainingReason.RUNNING:
        assert hold.record is not None
        return f"training {hold.record.sequence} is running ({kind} {hold.record.job})"
    if code == TrainingReason.DISABLED:
        return f"automation is {hold.automation}: no retraining"
    if code == TrainingReason.PAUSED:
        return "the Model is paused"
    if code == TrainingReason.IDLE:
        return "no trigger holds"
    held = f"{hold.trigger} trigger held: "
    if code == TrainingReason.ROLLOUT_IN_PROGRESS:
        return held + f"a rollout of {hold.canary} is in progress"
    if code == TrainingReason.COOLDOWN:
        assert hold.since is not None
        return held + f"cooldown {hold.limit} since the training of {stamp(hold.since)}"
    if code == TrainingReason.MAX_PER_DAY:
        return held + f"maxPerDay {hold.limit} reached ({hold.count} in the last 24h)"
    if code == TrainingReason.BACKOFF:
        return held + f"backoff after {hold.count} failed training(s): {hold.wait} since the last"
    if code == TrainingReason.NEW_DATA_UNKNOWN:
        return held + "the new-data counter has no reading: no training on data it cannot count"
    if code == TrainingReason.NO_NEW_DATA:
        assert hold.grown is not None
        return held + (
            f"{hold.grown:.0f} new labelled examples since its training of "
            f"{stamp(hold.since) if hold.since else 'unknown time'}, newData.minimum {hold.minimum}"
        )
    assert code == TrainingReason.REJECTED_BACKOFF
    assert hold.until is not None
    text = (
        f"backoff after {hold.count} rejected candidate(s) in a row: {hold.wait} from the last "
        f"rejection, until {stamp(hold.until)}"
    )
    if hold.minimum is not None:
        grown = f"{hold.grown:.0f}" if hold.grown is not None else "uncounted"
        text += f" or {hold.minimum} new labelled examples ({grown} so far)"
    return held + text
