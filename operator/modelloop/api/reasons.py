"""Reason codes of ModelLoop's decisions: one home, so status, Events, the plugin and
tests speak the same words. Decisions return these with their numbers; prose is
rendered from them at the edge."""

from enum import StrEnum


class PairReason(StrEnum):
    """Why one canary-vs-stable pair (a metric on a slice) has its outcome."""

    LABELS_IMMATURE = "LabelsImmature"  # the traffic judged is younger than labels.delay
    LABELS_INCOMPLETE = "LabelsIncomplete"  # coverage below labels.minCoverage, or unknown
    TOO_FEW_SAMPLES = "TooFewSamples"
    NO_VALUE = "NoValue"
    NOT_FINITE = "NotFinite"
    NO_SAMPLE_COUNT = "NoSampleCount"
    NOT_A_PROPORTION = "NotAProportion"
    UNTESTABLE = "Untestable"
    WITHIN_ALLOWANCE = "WithinAllowance"
    BEYOND_ALLOWANCE = "BeyondAllowance"
    NOT_SIGNIFICANT = "NotSignificant"
    SIGNIFICANT = "SignificantRegression"


class GateReason(StrEnum):
    """Why one offline gate check on one slice passed or failed."""

    NO_CANDIDATE_VALUE = "NoCandidateValue"
    NO_CHAMPION_VALUE = "NoChampionValue"
    BELOW_MIN = "BelowMin"
    ABOVE_MAX = "AboveMax"
    WITHIN_BOUNDS = "WithinBounds"
    WITHIN_TOLERANCE = "WithinTolerance"
    BEYOND_TOLERANCE = "BeyondTolerance"
    NOT_SIGNIFICANT = "NotSignificant"
    SIGNIFICANT = "SignificantRegression"
    INCONSISTENT_PAIRS = "InconsistentPairs"  # paired counts that do not give the values
    REPAIRED = "Repaired"  # better than the champion where the breach that trained it was
    NOT_REPAIRED = "NotRepaired"


class TrainingReason(StrEnum):
    """What the retraining does, or why it does not: the Training condition's reason."""

    STARTED = "Started"
    RUNNING = "Running"
    IDLE = "Idle"
    COUNTING_NEW_DATA = "CountingNewData"
    DISABLED = "Disabled"
    PAUSED = "Paused"
    ROLLOUT_IN_PROGRESS = "RolloutInProgress"
    COOLDOWN = "Cooldown"
    MAX_PER_DAY = "MaxPerDay"
    BACKOFF = "Backoff"
    NEW_DATA_UNKNOWN = "NewDataUnknown"
    NO_NEW_DATA = "NoNewData"
    REJECTED_BACKOFF = "RejectedBackoff"
