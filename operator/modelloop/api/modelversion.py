"""The ``ModelVersion`` resource: one trained artifact, immutable once created."""

from datetime import datetime
from typing import ClassVar

from pydantic import Field

from .base import (
    DNS_LABEL_PATTERN,
    ApiModel,
    CelRule,
    Condition,
    MetricSlice,
    conditions_field,
    list_map,
    status_list,
)
from .vocabulary import LabelVerdict, NoiseTest, Origin, VersionPhase


class TriggerRecord(ApiModel):
    """What started the training that produced this version."""

    kind: Origin = Field(
        description="The trigger kind; external for versions made outside ModelLoop."
    )
    reason: str = Field(default="", description="The numbers behind it.", max_length=1024)
    failing: list[MetricSlice] = Field(
        default_factory=list,
        description="A breach: the metrics and slices that failed on the base version; the "
        "offline gate requires this version to do better than the champion on each.",
        **list_map("metric", "slice", max_items=512),
    )


class DataWindow(ApiModel):
    start: datetime = Field(description="First instant of training data.")
    end: datetime = Field(description="Last instant of training data.")


class Lineage(ApiModel):
    """Where this version came from."""

    trigger: TriggerRecord | None = Field(default=None, description="What started the training.")
    job: str | None = Field(default=None, description="The training Job.", max_length=253)
    sequence: int | None = Field(
        default=None, ge=1, description="The Model's training sequence number."
    )
    data_window: DataWindow | None = Field(default=None, description="The data trained on.")
    base_version: str | None = Field(
        default=None, description="The version it was trained to replace.", max_length=63
    )


class PairedCounts(ApiModel):
    """For a proportion over examples (accuracy: the share predicted right), the examples
    on which the candidate and the champion, scored on the same held-out data, disagree.
    The gate's paired test judges a regression by these rather than by the two values."""

    candidate_only: int = Field(
        ge=0,
        description="Examples counted in the candidate's value and not in the champion's "
        "(for accuracy: the candidate right, the champion wrong).",
    )
    champion_only: int = Field(
        ge=0,
        description="Examples counted in the champion's value and not in the candidate's "
        "(for accuracy: the champion right, the candidate wrong).",
    )


class OfflineMetric(ApiModel):
    """A metric computed on held-out data for one slice."""

    metric: str = Field(max_length=63, description="Metric name (from the Model's metrics).")
    slice: str = Field(max_length=63, description="Slice name (from the Model's slices).")
    value: float = Field(description="The value.")
    samples: int | None = Field(default=None, ge=0, description="Held-out examples behind it.")
    pairs: PairedCounts | None = Field(
        default=None,
        description="On a candidate's row of a proportion over its samples: where it and the "
        "champion disagree on the same examples (the gate then makes a paired test). "
        "Needs samples.",
    )

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            "!has(self.pairs) || (has(self.samples) && "
            "self.pairs.candidateOnly + self.pairs.championOnly <= self.samples)",
            "pairs need samples, and count at most samples examples",
            lambda m: (
                m.pairs is None
                or (
                    m.samples is not None
                    and m.pairs.candidate_only + m.pairs.champion_only <= m.samples
                )
            ),
            field_path=".pairs",
        ),
    )


class OfflineMetrics(ApiModel):
    """Offline evaluation for the candidate and, on the same held-out data, the champion."""

    candidate: list[OfflineMetric] = Field(
        default_factory=list,
        description="This version's metrics.",
        **list_map("metric", "slice", max_items=2048),
    )
    champion: list[OfflineMetric] = Field(
        default_factory=list,
        description="The base version's metrics on the same held-out data.",
        **list_map("metric", "slice", max_items=2048),
    )

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            "!has(self.champion) || self.champion.all(m, !has(m.pairs))",
            "pairs are reported on the candidate's rows only",
            lambda m: all(c.pairs is None for c in m.champion),
            field_path=".champion",
        ),
    )


class ModelVersionSpec(ApiModel):
    """One trained artifact of a Model. Immutable: a new artifact is a new ModelVersion."""

    model: str = Field(
        description="The Model (same namespace) this version belongs to.",
        pattern=DNS_LABEL_PATTERN,
        max_length=63,
    )
    uri: str = Field(
        description="Artifact location, passed to the server as MODEL_URI.",
        min_length=1,
        max_length=2048,
    )
    digest: str | None = Field(
        default=None,
        description="Artifact digest, e.g. sha256:<hex>.",
        pattern=r"^[a-z0-9]+:[a-fA-F0-9]{32,128}$",
        max_length=140,
    )
    lineage: Lineage = Field(default_factory=Lineage, description="Where it came from.")
    metrics: OfflineMetrics = Field(
        default_factory=OfflineMetrics, description="Offline metrics per metric and slice."
    )


class GateCheck(ApiModel):
    """One offline gate on one slice."""

    metric: str = Field(max_length=63)
    slice: str = Field(max_length=63)
    candidate: float | None = Field(default=None, description="This version's value.")
    gate: str = Field(
        default="default",
        description="The gate checked: gates[i] of the Model's spec.validation, default (no "
        "slice worse than the champion beyond noise), or repair (better where the breach "
        "that started the training was).",
        max_length=63,
    )
    champion: float | None = Field(default=None, description="The champion's value.")
    candidate_samples: int | None = Field(default=None, description="Held-out examples.")
    champion_samples: int | None = Field(default=None, description="The champion's examples.")
    pairs: PairedCounts | None = Field(
        default=None, description="Where the two disagree, when the trainer reported it."
    )
    limit: float | None = Field(
        default=None, description="The bound (min, max) or the tolerated regression."
    )
    regression: float | None = Field(
        default=None,
        description="How much worse than the champion, in the metric's direction "
        "(negative: better).",
    )
    test: NoiseTest | None = Field(
        default=None, description="How the regression was judged against noise."
    )
    p_value: float | None = Field(default=None, description="Of the noise test, when made.")
    level: float | None = Field(
        default=None, description="The Holm-corrected level the p-value was held to."
    )
    passed: bool
    code: str | None = Field(default=None, description="The reason code.", max_length=63)
    reason: str = Field(default="", max_length=512)


class ModelVersionStatus(ApiModel):
    phase: VersionPhase | None = Field(
        default=None,
        description="Pending -> Validated | Rejected -> Canary -> Serving | RolledBack -> Retired.",
    )
    reason: str | None = Field(default=None, description="Why it entered this phase.")
    message: str | None = Field(default=None, description="The numbers behind it.")
    last_transition_time: datetime | None = Field(default=None, description="Phase change time.")
    gates: list[GateCheck] = Field(
        default_factory=list,
        description="The offline validation, one row per gate, metric and slice.",
        **status_list(max_items=2048),
    )
    label_verdict: LabelVerdict | None = Field(
        default=None,
        description="An early signal rolled it back: what the labels of its traffic said "
        "once they came (Confirmed, Reversed: it is Validated again, Undecided).",
    )
    label_verdict_message: str | None = Field(
        default=None, description="The numbers behind labelVerdict.", max_length=1024
    )
    conditions: list[Condition] = conditions_field()
    observed_generation: int | None = Field(default=None)
