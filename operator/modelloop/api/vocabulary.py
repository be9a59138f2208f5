"""The words of ModelLoop's API, in one place: its group, the labels and annotations it
reads and writes, and the enumerations its resources use (phases, trigger kinds,
outcomes). Reason codes, with their own documentation, are in ``reasons``.

The enumerations are ``StrEnum``: a value is its wire string, so it compares equal
to the text in a manifest or a status read back as JSON.
"""

from enum import StrEnum

GROUP = "modelloop.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "modelloop"

# Labels and annotations ModelLoop reads and writes.
LABEL_MODEL = f"{GROUP}/model"
LABEL_VERSION = f"{GROUP}/version"
LABEL_ROLE = f"{GROUP}/role"
# On a Model: the shard of operator instances that acts on it (docs/sharding.md); none: the
# default shard.
LABEL_SHARD = f"{GROUP}/shard"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "modelloop"
ANNOTATION_ROLE_SINCE = f"{GROUP}/role-since"
# On a ModelVersion: when it last took production traffic (as stable or canary). Never
# removed: a restore that drops status (Velero's default) keeps metadata, and this tells
# that the Model served before, so no other version is bootstrapped while the one serving
# is still on its way.
ANNOTATION_SERVED = f"{GROUP}/served"
# On a Model: approve the canary's step, "<version>/<step index>"; abort (roll back) "<version>".
ANNOTATION_APPROVE = f"{GROUP}/approve"
ANNOTATION_ABORT = f"{GROUP}/abort"
# On a Model: request a training; the value is the reason (kubectl modelloop retrain).
ANNOTATION_RETRAIN = f"{GROUP}/retrain"


class Automation(StrEnum):
    """How much of the loop ModelLoop runs by itself, each level including the ones before."""

    OBSERVE = "observe"
    RETRAIN = "retrain"
    PROPOSE = "propose"
    PROMOTE = "promote"

    @property
    def trains(self) -> bool:
        return self is not Automation.OBSERVE


class ModelPhase(StrEnum):
    PENDING = "Pending"
    SERVING = "Serving"
    PROGRESSING = "Progressing"
    PAUSED = "Paused"
    FAILED = "Failed"


class CanaryPhase(StrEnum):
    PROGRESSING = "Progressing"
    WAITING_FOR_APPROVAL = "WaitingForApproval"
    # Every step passed; a confirm-promotion webhook has not said yes yet.
    WAITING_FOR_CONFIRMATION = "WaitingForConfirmation"
    PAUSED = "Paused"
    ROLLING_BACK = "RollingBack"


class LabelVerdict(StrEnum):
    """What the labels of a canary's traffic said of an early rollback, once they came."""

    CONFIRMED = "Confirmed"  # a labelled pair fails: the early signal was right
    REVERSED = "Reversed"  # every labelled pair passes: the early signal was wrong
    UNDECIDED = "Undecided"  # too few labels, or none matured in time


class VersionPhase(StrEnum):
    """A ModelVersion's life: judged offline, then canary, serving, and retired."""

    PENDING = "Pending"
    VALIDATED = "Validated"
    REJECTED = "Rejected"
    CANARY = "Canary"
    SERVING = "Serving"
    ROLLED_BACK = "RolledBack"
    RETIRED = "Retired"


class TriggerKind(StrEnum):
    """What starts a training."""

    BREACH = "breach"
    DRIFT = "drift"
    SCHEDULE = "schedule"
    NEW_DATA = "newData"
    MANUAL = "manual"


class Origin(StrEnum):
    """Where a ModelVersion came from: a trigger, the first version, or outside ModelLoop."""

    BOOTSTRAP = "bootstrap"
    BREACH = "breach"
    DRIFT = "drift"
    SCHEDULE = "schedule"
    NEW_DATA = "newData"
    MANUAL = "manual"
    EXTERNAL = "external"


class VerdictName(StrEnum):
    """A metric or drift check on one slice of one version."""

    PASS = "pass"
    BREACH = "breach"
    INCONCLUSIVE = "inconclusive"
    WAITING = "waiting"  # its labels have not matured (labels.minCoverage)


class CheckKind(StrEnum):
    METRIC = "metric"
    DRIFT = "drift"


class PairOutcome(StrEnum):
    """The canary against stable on one metric and slice."""

    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    WAITING = "waiting"  # labels not mature yet: counts toward nothing


class TrainingOutcome(StrEnum):
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class NoiseTest(StrEnum):
    """How a regression against the champion was judged against noise."""

    PAIRED = "paired"  # McNemar / paired score test on the discordant pairs
    TWO_PROPORTION = "twoProportion"  # two independent proportions: conservative, weaker
    NONE = "none"  # no counts to test with: the tolerance holds as given
