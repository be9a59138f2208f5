"""The ``Model`` resource: one served model, its metrics, slices and policies."""

import re
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from .base import (
    DNS_LABEL_PATTERN,
    LABEL_NAME_PATTERN,
    ApiModel,
    CelRule,
    Condition,
    Embedded,
    MetricSlice,
    OpenObject,
    conditions_field,
    list_map,
    list_set,
    status_list,
)
from .durations import DURATION_PATTERN, Duration, Within, cel_milliseconds, milliseconds
from .schedule import Schedule
from .templates import JobTemplate, ObjectMeta, PodTemplate
from .vocabulary import (
    Automation,
    CanaryPhase,
    CheckKind,
    ModelPhase,
    PairOutcome,
    TrainingOutcome,
    TriggerKind,
    VerdictName,
)

DnsName = Annotated[
    str,
    Field(
        description="Name, a DNS label (lower case letters, digits and '-').",
        pattern=DNS_LABEL_PATTERN,
        max_length=63,
    ),
]

# --------------------------------------------------------------------------- slices


class LabelMatcher(ApiModel):
    """One Prometheus label matcher, kept structured so escaping is never the user's job."""

    label: str = Field(
        description="Prometheus label name.", pattern=LABEL_NAME_PATTERN, max_length=128
    )
    op: Literal["=", "!=", "=~", "!~"] = Field(
        default="=", description="Match operator, as in PromQL."
    )
    value: str = Field(description="Label value (or RE2 regex for =~ and !~).", max_length=1024)


class Slice(ApiModel):
    """A data slice: the subset of a metric's series that these label matchers select.

    The trainer receives the same structured definition, so the slice it
    retrains on is exactly the slice that was measured.
    """

    name: DnsName
    match_labels: dict[str, str] | None = Field(
        default=None,
        description="Equality matchers, label name to value (shorthand for matchers with '=').",
        json_schema_extra={"maxProperties": 16},
    )
    matchers: list[LabelMatcher] | None = Field(
        default=None, description="Label matchers (=, !=, =~, !~).", max_length=16
    )

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            "!has(self.matchLabels) || self.matchLabels.all(k, k.matches('"
            + LABEL_NAME_PATTERN
            + "'))",
            "matchLabels keys must be Prometheus label names ([a-zA-Z_][a-zA-Z0-9_]*)",
            lambda s: all(re.fullmatch(LABEL_NAME_PATTERN, k) for k in s.match_labels or {}),
            field_path=".matchLabels",
        ),
    )


# --------------------------------------------------------------------------- metrics


class Objective(ApiModel):
    """The acceptable range of a metric's value; a value outside it is a breach."""

    min: float | None = Field(default=None, description="Lowest acceptable value.")
    max: float | None = Field(default=None, description="Highest acceptable value.")
    max_drop: float | None = Field(
        default=None,
        ge=0,
        description="Largest acceptable drop below the level the serving version was "
        "validated at on this slice (its ModelVersion's offline value; the direction follows "
        "higherIsBetter). Once beyond it, the value must come back within half of it to pass "
        "again. Versions without an offline value for the slice are judged by min and max only.",
    )

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            "has(self.min) || has(self.max) || has(self.maxDrop)",
            "an objective needs min, max, maxDrop or several of them",
            lambda o: o.min is not None or o.max is not None or o.max_drop is not None,
        ),
        CelRule(
            "!has(self.min) || !has(self.max) || self.min <= self.max",
            "objective min must not be greater than max",
            lambda o: o.min is None or o.max is None or o.min <= o.max,
        ),
    )


class OfLast(ApiModel):
    """M failing evaluations out of the last N."""

    failures: int = Field(description="M: failing evaluations needed.", ge=1, le=100)
    evaluations: int = Field(description="N: evaluations looked at.", ge=1, le=100)


class BreachRule(ApiModel):
    """When failing evaluations add up to a breach, so one noisy point does not act."""

    for_: Annotated[Duration, Within("0s", "30d")] | None = Field(
        default=None,
        alias="for",
        description="The value must stay outside the objective this long (e.g. 10m). At most "
        "30d: a breach that must last longer would never act in time.",
    )
    of_last: OfLast | None = Field(
        default=None, description="Or: M failing evaluations out of the last N."
    )

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            # 'for' is a CEL reserved word: API servers before 1.32 only select it escaped.
            "!(has(self.__for__) && has(self.ofLast))",
            "a breach rule takes either 'for' or 'ofLast', not both",
            lambda b: b.for_ is None or b.of_last is None,
        ),
        CelRule(
            "!has(self.ofLast) || self.ofLast.failures <= self.ofLast.evaluations",
            "ofLast.failures must not exceed ofLast.evaluations",
            lambda b: b.of_last is None or b.of_last.failures <= b.of_last.evaluations,
            field_path=".ofLast",
        ),
    )


class TemplateRef(ApiModel):
    """A reference to a MetricTemplate in the Model's namespace, with values for its variables."""

    name: str = Field(description="MetricTemplate name.", max_length=253)
    vars: dict[str, str] | None = Field(
        default=None,
        description="Values for the template's variables ($name in its query).",
        json_schema_extra={"maxProperties": 32},
    )


class CanaryCheck(ApiModel):
    """How this metric judges a canary against stable on every slice."""

    absolute: float = Field(
        default=0, ge=0, description="Allowed regression of the canary, in the metric's unit."
    )
    relative: float = Field(
        default=0,
        ge=0,
        le=1,
        description="Allowed regression as a fraction of stable's value (0.02 = 2%); the "
        "larger of absolute and relative applies.",
    )
    test: Literal["auto", "proportion", "threshold"] = Field(
        default="auto",
        description="How a difference is judged. proportion: the value is a proportion of the "
        "sampleQuery's count (accuracy = correct / predictions); a regression beyond the "
        "allowance must also be significant by a one-sided two-proportion z-test at "
        "rollout.analysis.confidence, Holm-corrected across the pairs of one analysis. "
        "threshold: any regression beyond the allowance fails (for metrics with no sample "
        "model, e.g. latency, with an allowance chosen on purpose). auto: proportion when "
        "both values lie in [0, 1] with sample counts, else threshold when an allowance is "
        "set, else inconclusive: a raw difference of noisy values is no evidence.",
    )
    enabled: bool = Field(default=True, description="false leaves this metric out of the canary.")
    early: bool = Field(
        default=False,
        description="An early signal (e.g. an estimated accuracy, or the share of positive "
        "predictions): judged only while a metric with labels waits for them, to take the "
        "traffic back on a gross regression (set an allowance) before the labels come; the "
        "labels then confirm the rollback or reverse it. Its passes advance nothing.",
    )


class Labels(ApiModel):
    """When a metric's ground truth arrives, and how much of it a decision waits for."""

    delay: Annotated[Duration, Within("1s", "90d")] = Field(
        description="How late most labels come after their prediction. A canary step is "
        "judged on this metric only once its own traffic is this old (the step lasts at "
        "least this long, and its timeout is extended by it); $labelDelay in the queries."
    )
    min_coverage: float = Field(
        default=0,
        ge=0,
        le=1,
        description="The share of the window's predictions that must have their label "
        "before a value is judged (coverageQuery, or the MetricTemplate's); below it the "
        "verdict or canary pair is waiting: never a breach, a failure or an inconclusive.",
    )
    coverage_query: str | None = Field(
        default=None,
        description="PromQL: the share of predictions whose label arrived, e.g. labels in "
        "$window over predictions in $window offset $labelDelay (same placeholders as "
        "query). Default: the MetricTemplate's coverageQuery.",
        max_length=4096,
    )


class Metric(ApiModel):
    """A model-quality metric read from Prometheus, per version and per slice."""

    name: DnsName
    query: str | None = Field(
        default=None,
        description=(
            "PromQL returning one value. Placeholders: $version (the model version), "
            '$slice (the slice\'s label matchers, e.g. region="eu"), $window (the window), '
            "$model and $namespace."
        ),
        max_length=4096,
    )
    template_ref: TemplateRef | None = Field(
        default=None, description="Or: use a MetricTemplate instead of a query."
    )
    sample_query: str | None = Field(
        default=None,
        description=(
            "PromQL counting the labelled samples behind the value (same placeholders); "
            "needed when minSamples > 0."
        ),
        max_length=4096,
    )
    min_samples: int = Field(
        default=0,
        ge=0,
        description="Fewer samples than this makes the verdict inconclusive, never a breach.",
    )
    higher_is_better: bool = Field(
        default=True, description="True for accuracy-like metrics, false for error-like ones."
    )
    objective: Objective | None = Field(
        default=None, description="The acceptable range; without one the metric is only reported."
    )
    window: Annotated[Duration, Within("1s", "90d")] = Field(
        default=Duration("5m"),
        description="The $window the query aggregates over, from 1s to 90d. Queries of all "
        "Models on a provider are grouped: an empty range would fail the whole group, and "
        "Prometheus reads every sample in the window, so one huge window would slow all.",
    )
    breach: BreachRule | None = Field(
        default=None,
        description="When failing evaluations count as a breach; default: the first one.",
    )
    slices: list[str] | None = Field(
        default=None,
        description="Slices this metric is evaluated on (names from spec.slices), each once; "
        "default: all.",
        **list_set(max_items=64),
    )
    canary: CanaryCheck = Field(
        default_factory=CanaryCheck,
        description="How the canary is judged on this metric; default: a significant "
        "regression fails (test auto).",
    )
    labels: Labels | None = Field(
        default=None,
        description="Ground truth that arrives late: how late, and the label coverage a "
        "value needs before it is judged. Default: labels arrive with the prediction.",
    )

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            "has(self.query) != has(self.templateRef)",
            "a metric needs exactly one of query or templateRef",
            lambda m: (m.query is None) != (m.template_ref is None),
        ),
        CelRule(
            "self.minSamples == 0 || has(self.sampleQuery) || has(self.templateRef)",
            "minSamples > 0 needs a sampleQuery to count the samples",
            lambda m: (
                m.min_samples == 0 or m.sample_query is not None or m.template_ref is not None
            ),
        ),
        CelRule(
            "!has(self.canary) || !has(self.canary.early) || !self.canary.early"
            " || !has(self.labels)",
            "canary.early marks a signal read before the labels: it cannot wait for labels",
            lambda m: not m.canary.early or m.labels is None,
        ),
        CelRule(
            "!has(self.labels) || !has(self.labels.minCoverage) || self.labels.minCoverage == 0.0"
            " || has(self.labels.coverageQuery) || has(self.templateRef)",
            "labels.minCoverage > 0 needs labels.coverageQuery to measure the coverage",
            lambda m: (
                m.labels is None
                or m.labels.min_coverage == 0
                or m.labels.coverage_query is not None
                or m.template_ref is not None
            ),
        ),
    )


class DriftReference(ApiModel):
    """What the current distribution is compared against."""

    offset: Annotated[Duration, Within("1s", "365d")] | None = Field(
        default=None,
        description="The same window this long ago (e.g. 7d): from 1s to 365d (a year of "
        "seasonality), and at least the window, so that the two do not overlap.",
    )
    training_window: bool = Field(
        default=False,
        description="The data window the serving version was trained on (from its lineage).",
    )


class DriftCanary(ApiModel):
    """The canary's distribution against stable's, during a rollout: an early signal."""

    version_label: str = Field(
        default="version",
        description="The histogram's label that holds the model version.",
        pattern=LABEL_NAME_PATTERN,
        max_length=63,
    )


class Drift(ApiModel):
    """Distribution drift of a feature or of the predictions, from a Prometheus histogram."""

    name: DnsName
    histogram: str = Field(
        description="Histogram metric name (its _bucket series are read), e.g. feature_amount.",
        pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$",
        max_length=256,
    )
    matchers: list[LabelMatcher] | None = Field(
        default=None, description="Extra matchers that select the series.", max_length=16
    )
    test: Literal["psi", "ks", "js"] = Field(
        default="psi",
        description="psi: population stability index; ks: Kolmogorov-Smirnov D; js: "
        "Jensen-Shannon divergence (base 2).",
    )
    threshold: float = Field(gt=0, description="Drift when the statistic exceeds this.")
    window: Annotated[Duration, Within("1s", "30d")] = Field(
        default=Duration("1h"),
        description="The current window, from 1s to 30d: every bucket series is read over it, "
        "in a query grouped with those of all Models on the provider.",
    )
    reference: DriftReference = Field(
        default_factory=lambda: DriftReference(offset="7d"),
        description="The reference distribution; default: the same window 7d earlier.",
    )
    min_samples: int = Field(
        default=100, ge=0, description="Fewer observations makes the verdict inconclusive."
    )
    slices: list[str] | None = Field(
        default=None,
        description="Slices to test (names from spec.slices), each once; default: all.",
        **list_set(max_items=64),
    )
    canary: DriftCanary | None = Field(
        default=None,
        description="Also compare the canary's distribution with stable's over the window "
        "during a rollout, as an early signal (like canary.early on a metric): above the "
        "threshold while labels wait, the traffic goes back to stable and the labels decide. "
        "Suits the predictions' own distribution (e.g. the feedback service's "
        "modelloop_feedback_prediction_score).",
    )

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            "has(self.reference.offset) != self.reference.trainingWindow",
            "a drift reference takes exactly one of offset or trainingWindow: true",
            lambda d: (d.reference.offset is not None) != d.reference.training_window,
            field_path=".reference",
        ),
        CelRule(
            "!has(self.reference.offset) || !self.reference.offset.matches('"
            + DURATION_PATTERN
            + "') || !self.window.matches('"
            + DURATION_PATTERN
            + "') || "
            + cel_milliseconds("self.reference.offset")
            + " >= "
            + cel_milliseconds("self.window"),
            "a drift reference offset must be at least the window: the reference must not "
            "overlap the current window",
            lambda d: (
                d.reference.offset is None
                or milliseconds(d.reference.offset) >= milliseconds(d.window)
            ),
            field_path=".reference.offset",
        ),
    )


# --------------------------------------------------------------------------- serving


class KServeModelFormat(OpenObject):
    """The model's format, which picks KServe's serving runtime."""

    name: str = Field(description="e.g. sklearn, xgboost, onnx.", max_length=253)


class KServeModel(OpenObject):
    """The predictor's model: its format and runtime; ModelLoop sets its storageUri."""

    model_format: KServeModelFormat = Field(description="The model format.")
    storage_uri: str | None = Field(
        default=None,
        description="Set by ModelLoop: the serving ModelVersion's spec.uri. Leave it out.",
    )

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            "!has(self.storageUri)",
            "storageUri is set by ModelLoop from each ModelVersion's uri: leave it out",
            lambda m: m.storage_uri is None,
            field_path=".storageUri",
        ),
    )


class KServePredictor(OpenObject):
    """An InferenceService's spec.predictor (model format, runtime, resources, replicas...),
    kept as written; ModelLoop sets model.storageUri, canaryTrafficPercent and the labels
    modelloop.dev/model and modelloop.dev/version."""

    model: KServeModel = Field(description="The model: format, runtime, resources.")
    labels: dict[str, str] | None = Field(
        default=None, description="Labels of the predictor's pods; ModelLoop adds its own."
    )
    canary_traffic_percent: int | None = Field(
        default=None, description="Set by ModelLoop during a canary. Leave it out."
    )

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            "!has(self.canaryTrafficPercent)",
            "canaryTrafficPercent is set by ModelLoop's rollout: leave it out",
            lambda p: p.canary_traffic_percent is None,
            field_path=".canaryTrafficPercent",
        ),
    )


class KServeServing(ApiModel):
    """Serve through one KServe InferenceService per Model: the stable version's artifact
    as the predictor's storageUri, a canary as KServe's canaryTrafficPercent."""

    predictor: Annotated[dict[str, Any], Embedded(KServePredictor)] | None = Field(
        default=None,
        description="The InferenceService to create (named after the Model, owned by it): "
        "its spec.predictor.",
    )
    adopt: str | None = Field(
        default=None,
        description="Or: the name of an existing InferenceService (with spec.predictor.model) "
        "whose storageUri, canaryTrafficPercent and version label ModelLoop then sets.",
        pattern=DNS_LABEL_PATTERN,
        max_length=63,
    )
    deployment_mode: Literal["Serverless", "RawDeployment"] = Field(
        default="Serverless",
        description="Serverless (Knative revisions; canaries by canaryTrafficPercent) or "
        "RawDeployment (serves the stable version only: KServe's v1beta1 API has no canary "
        "split in this mode, so no rollout starts).",
    )

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            "has(self.predictor) != has(self.adopt)",
            "kserve needs exactly one of predictor (an InferenceService to create) or adopt "
            "(the name of one to adopt)",
            lambda k: (k.predictor is None) != (k.adopt is None),
        ),
    )


class Serving(ApiModel):
    """How one version is served: a Deployment per version plus Services (template), or
    one KServe InferenceService (kserve)."""

    template: Annotated[dict[str, Any], Embedded(PodTemplate)] | None = Field(
        default=None,
        description="Pod template (metadata and spec) of every version's Deployment, with at "
        "least one container. ModelLoop adds the labels modelloop.dev/model and "
        "modelloop.dev/version and the env MODEL_NAME, MODEL_VERSION and MODEL_URI to every "
        "container.",
    )
    kserve: KServeServing | None = Field(
        default=None,
        description="Or: serve through a KServe InferenceService (replicas and port are then "
        "the predictor's).",
    )
    replicas: int = Field(default=1, ge=0, le=1000, description="Replicas of the stable version.")
    port: int = Field(default=8080, ge=1, le=65535, description="Container port served.")
    version_services: Literal["Auto", "Always"] = Field(
        default="Auto",
        description="A Service per serving version (template serving). Auto: only where the "
        "traffic provider routes to it (gatewayAPI, istio); with replicas, the Model's one "
        "Service carries the traffic. Always: one for every serving version, to reach a "
        "version directly. A version's Service, once made, stays while the version exists.",
    )

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            "has(self.template) != has(self.kserve)",
            "serving needs exactly one of template (a Deployment per version) or kserve "
            "(an InferenceService)",
            lambda s: (s.template is None) != (s.kserve is None),
        ),
    )


class GatewayAPITraffic(ApiModel):
    """Traffic split with a Gateway API HTTPRoute."""

    mode: Literal["managed", "patch"] = Field(
        default="managed",
        description="managed: ModelLoop owns the route; patch: it changes only the backend "
        "weights of routeName.",
    )
    route_name: str | None = Field(
        default=None, description="The user's HTTPRoute (patch mode).", max_length=253
    )
    parent_refs: list[dict[str, Any]] | None = Field(
        default=None,
        description="Gateways the managed route attaches to (HTTPRoute parentRefs).",
        max_length=16,
        json_schema_extra={
            "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        },
    )
    hostnames: list[str] | None = Field(
        default=None, description="Hostnames of the managed route.", max_length=16
    )


class IstioTraffic(ApiModel):
    """Traffic split with an Istio VirtualService."""

    mode: Literal["managed", "patch"] = Field(
        default="managed",
        description="managed: ModelLoop owns the VirtualService; patch: it changes only the "
        "route weights of virtualServiceName.",
    )
    virtual_service_name: str | None = Field(
        default=None, description="The user's VirtualService (patch mode).", max_length=253
    )
    hosts: list[str] | None = Field(
        default=None, description="Hosts (managed mode).", max_length=16
    )
    gateways: list[str] | None = Field(
        default=None, description="Gateways (managed mode).", max_length=16
    )


class Traffic(ApiModel):
    """How traffic is split between the stable and the canary version."""

    provider: Literal["gatewayAPI", "istio", "replicas"] = Field(
        default="replicas",
        description="gatewayAPI (HTTPRoute weights), istio (VirtualService weights) or "
        "replicas (no mesh: split approximated by replica counts behind one Service).",
    )
    gateway_api: GatewayAPITraffic | None = Field(
        default=None, alias="gatewayAPI", description="Settings of the gatewayAPI provider."
    )
    istio: IstioTraffic | None = Field(default=None, description="Settings of the istio provider.")

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            "!has(self.gatewayAPI) || self.gatewayAPI.mode != 'patch' || "
            "has(self.gatewayAPI.routeName)",
            "gatewayAPI patch mode needs routeName",
            lambda t: (
                t.gateway_api is None
                or t.gateway_api.mode != "patch"
                or t.gateway_api.route_name is not None
            ),
            field_path=".gatewayAPI",
        ),
        CelRule(
            "!has(self.istio) || self.istio.mode != 'patch' || has(self.istio.virtualServiceName)",
            "istio patch mode needs virtualServiceName",
            lambda t: (
                t.istio is None
                or t.istio.mode != "patch"
                or t.istio.virtual_service_name is not None
            ),
            field_path=".istio",
        ),
    )


# --------------------------------------------------------------------------- retraining


class NewDataTrigger(ApiModel):
    """Retrain when enough new labelled data has arrived since the last training."""

    query: str | None = Field(
        default=None,
        description="PromQL for a counter of labelled examples available for training; "
        "leave it out when spec.retraining.newData declares the counter.",
        max_length=4096,
    )
    volume: int = Field(ge=1, description="Retrain once the counter grew by this much.")


class NewData(ApiModel):
    """The labelled examples available for training, counted by Prometheus, and how many new
    ones a training needs: a trigger (manual excepted) starts a training only once at least
    ``minimum`` arrived since the last training of the same trigger kind that made a
    candidate, so a rejected candidate is not trained again on the same data. No reading of
    the counter holds every trigger but manual."""

    query: str = Field(
        description="PromQL for a counter of labelled examples available for training, one "
        "series ($model, $namespace and $window are replaced); the newData trigger counts "
        "it too.",
        max_length=4096,
    )
    minimum: int = Field(
        default=1,
        ge=1,
        description="New labelled examples a trigger needs since the last training of its kind.",
    )


class Triggers(ApiModel):
    """What starts a training. Several may be set; guards apply to all."""

    on_breach: list[str] | None = Field(
        default=None,
        description="Metrics (names from spec.metrics), each once, whose sustained breach "
        "retrains.",
        **list_set(max_items=32),
    )
    on_drift: list[str] | None = Field(
        default=None,
        description="Drift entries (names from spec.drift), each once, that retrain.",
        **list_set(max_items=32),
    )
    schedule: Schedule | None = Field(
        default=None,
        description="Cron schedule (5 fields, UTC: minute 0-59, hour 0-23, day of month "
        "1-31, month 1-12, day of week 0-7), e.g. '0 3 * * 1'. Each field is *, a number, a "
        "range a-b, a step */n or a-b/n, or a comma-separated list of these.",
    )
    new_data: NewDataTrigger | None = Field(default=None, description="New-data volume trigger.")
    manual: bool = Field(
        default=True,
        description="Allow the annotation modelloop.dev/retrain=<reason> (kubectl modelloop "
        "retrain) to start a training.",
    )


SERVICE_ACCOUNT_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# A preset names the kind it reads: (preset, apiVersion, kind).
WORKLOAD_PRESETS = (
    ("trainJob", "trainer.kubeflow.org/v1alpha1", "TrainJob"),
    ("pyTorchJob", "kubeflow.org/v1", "PyTorchJob"),
    ("rayJob", "ray.io/v1", "RayJob"),
)


class OutcomeRule(ApiModel):
    """When a training workload has succeeded, or failed: a condition of its status with
    status True, or a field of its status holding one of some values."""

    condition: str | None = Field(
        default=None,
        description="A condition type in status.conditions; the rule holds while its status "
        "is True.",
        pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$",
        max_length=64,
    )
    field: str | None = Field(
        default=None,
        description="Or: a field below status, as a dotted path (status.phase).",
        pattern=r"^status(\.[A-Za-z0-9_-]+)+$",
        max_length=256,
    )
    values: list[str] | None = Field(
        default=None,
        description="The field's values that make the rule hold, each once.",
        **list_set(max_items=16),
    )

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            "has(self.condition) != has(self.field)",
            "an outcome rule names exactly one of condition or field",
            lambda r: (r.condition is None) != (r.field is None),
        ),
        CelRule(
            "has(self.field) == has(self.values)",
            "a field rule needs values, a condition rule takes none",
            lambda r: (r.field is None) == (r.values is None),
            field_path=".values",
        ),
    )


class WorkloadTemplate(OpenObject):
    """The custom resource a training creates: metadata and spec, kept as written for the
    API server (and the kind's controller) to validate."""

    metadata: ObjectMeta | None = Field(default=None, description="Labels and annotations.")
    spec: dict[str, Any] = Field(description="The resource's spec.")


class Workload(ApiModel):
    """A custom resource that trains (Kubeflow TrainJob or PyTorchJob, KubeRay RayJob, or
    another kind), and the rule that reads its outcome. The trainer reports through a
    ConfigMap ModelLoop creates per training (modelloop.sdk.report finds it)."""

    api_version: str = Field(
        description="Its apiVersion, group/version (ray.io/v1).",
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[a-z0-9]+$",
        max_length=253,
    )
    kind: str = Field(
        description="Its kind (RayJob).", pattern=r"^[A-Z][A-Za-z0-9]*$", max_length=63
    )
    template: Annotated[dict[str, Any], Embedded(WorkloadTemplate)] = Field(
        description="Its metadata and spec. ModelLoop adds the labels modelloop.dev/model and "
        "modelloop.dev/training, and the env MODELLOOP_* it gives a Job plus "
        "MODELLOOP_RESULT_CONFIGMAP to every container at the preset's paths (without a "
        "preset: to every item of every containers list in the spec)."
    )
    preset: Literal["trainJob", "pyTorchJob", "rayJob"] | None = Field(
        default=None,
        description="How to read a known kind: trainJob (trainer.kubeflow.org/v1alpha1 "
        "TrainJob: condition Complete or Failed), pyTorchJob (kubeflow.org/v1 PyTorchJob: "
        "Succeeded or Failed), rayJob (ray.io/v1 RayJob: succeeded when jobDeploymentStatus "
        "is Complete and jobStatus SUCCEEDED; failed when jobDeploymentStatus is Failed or "
        "ValidationFailed, or Complete with any other jobStatus).",
    )
    success: OutcomeRule | None = Field(
        default=None, description="Without a preset: when the workload has succeeded."
    )
    failure: OutcomeRule | None = Field(
        default=None,
        description="Without a preset: when it has failed (checked first: a workload both "
        "failed and succeeded has failed).",
    )
    service_account_name: str | None = Field(
        default=None,
        description="The ServiceAccount the trainer runs as, allowed to write the result. "
        "Default: every one the template names at the preset's pod specs (without a preset: "
        "every serviceAccountName in the spec), else default.",
        pattern=SERVICE_ACCOUNT_PATTERN,
        max_length=253,
    )

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            "has(self.preset) || (has(self.success) && has(self.failure))",
            "a workload needs a preset, or both a success and a failure rule",
            lambda w: w.preset is not None or (w.success is not None and w.failure is not None),
        ),
        CelRule(
            "!has(self.preset) || (!has(self.success) && !has(self.failure))",
            "a preset brings its own success and failure rules: give a preset or the rules",
            lambda w: w.preset is None or (w.success is None and w.failure is None),
            field_path=".preset",
        ),
        CelRule(
            "!has(self.preset) || "
            + " || ".join(
                f"(self.preset == '{p}' && self.apiVersion == '{a}' && self.kind == '{k}')"
                for p, a, k in WORKLOAD_PRESETS
            ),
            "a preset reads one kind: "
            + ", ".join(f"{p} is for {a} {k}" for p, a, k in WORKLOAD_PRESETS),
            lambda w: w.preset is None or (w.preset, w.api_version, w.kind) in WORKLOAD_PRESETS,
            field_path=".preset",
        ),
    )


class Retraining(ApiModel):
    """Training policy: triggers, guards and the Job (or workload) that trains."""

    triggers: Triggers = Field(default_factory=Triggers, description="What starts a training.")
    cooldown: Annotated[Duration, Within("0s", "30d")] = Field(
        default=Duration("1h"),
        description="Minimum time between two trainings; at most 30d (use schedule for "
        "rarer trainings).",
    )
    max_per_day: int = Field(default=4, ge=1, le=1440, description="Trainings per 24h at most.")
    data_window: Annotated[Duration, Within("1s", "5y")] = Field(
        default=Duration("7d"),
        description="How much recent data the trainer is given, from 1s to 5y.",
    )
    during_rollout: bool = Field(
        default=False, description="Allow triggers while a rollout is in progress."
    )
    new_data: NewData | None = Field(
        default=None,
        description="The counter of labelled examples, and the new ones a trigger needs.",
    )
    output_uri: str = Field(
        alias="outputURI",
        description="Where artifacts go; each training writes below it (e.g. s3://b/models/fraud).",
        max_length=1024,
    )
    job: Annotated[dict[str, Any], Embedded(JobTemplate)] | None = Field(
        default=None,
        description="batch/v1 Job template (metadata and spec) that trains, with at least "
        "one container. ModelLoop adds the env MODELLOOP_* (model, base version, trigger, "
        "failing slices and since when each fails, data window, output URI) to every container.",
    )
    workload: Workload | None = Field(
        default=None,
        description="Or: a custom resource that trains beyond one pod (TrainJob, PyTorchJob, "
        "RayJob, ...).",
    )

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            "has(self.job) != has(self.workload)",
            "retraining needs exactly one of job (a batch/v1 Job) or workload (a custom resource)",
            lambda r: (r.job is None) != (r.workload is None),
        ),
        CelRule(
            "!has(self.triggers.newData) || has(self.triggers.newData.query) || has(self.newData)",
            "triggers.newData needs a counter: its query, or spec.retraining.newData",
            lambda r: r.triggers.new_data is None or r.new_data_query() is not None,
            field_path=".triggers.newData",
        ),
        CelRule(
            "!has(self.newData) || !has(self.triggers.newData) || "
            "!has(self.triggers.newData.query)",
            "the counter of labelled examples is declared once: with spec.retraining.newData "
            "set, triggers.newData takes no query",
            lambda r: (
                r.new_data is None
                or r.triggers.new_data is None
                or r.triggers.new_data.query is None
            ),
            field_path=".triggers.newData.query",
        ),
    )

    def new_data_query(self) -> str | None:
        """The counter of labelled examples, declared once: by newData, or by the newData
        trigger."""
        if self.new_data is not None:
            return self.new_data.query
        return self.triggers.new_data.query if self.triggers.new_data is not None else None


# --------------------------------------------------------------------------- validation


class NotWorseThan(ApiModel):
    """Tolerated regression against the champion on the same held-out data."""

    absolute: float | None = Field(default=None, ge=0, description="By at most this much.")
    relative: float | None = Field(
        default=None, ge=0, le=1, description="By at most this fraction of the champion's value."
    )


class Gate(ApiModel):
    """An offline gate a candidate must pass on every slice it names."""

    metric: str = Field(description="Metric name (from spec.metrics).", max_length=63)
    slices: list[str] | None = Field(
        default=None,
        description="Slices the gate applies to, each once; default: all.",
        **list_set(max_items=64),
    )
    min: float | None = Field(default=None, description="Absolute lower bound.")
    max: float | None = Field(default=None, description="Absolute upper bound.")
    not_worse_than: NotWorseThan | None = Field(
        default=None, description="Tolerated regression against the champion."
    )


class Validation(ApiModel):
    """Offline gates that decide Validated or Rejected."""

    gates: list[Gate] = Field(
        default_factory=list,
        description="The gates. None: a default gate per metric, no slice worse than the "
        "champion beyond noise.",
        max_length=64,
    )
    require_all_slices: bool = Field(
        default=True, description="A slice or metric missing from the result fails the gate."
    )
    confidence: float = Field(
        default=0.95,
        gt=0.5,
        lt=1,
        description="Confidence of the noise test: a regression beyond a gate's tolerance, on "
        "proportions with sample counts, rejects only when significant at this level "
        "(one-sided two-proportion z-test, Holm-corrected across the candidate's checks).",
    )


# --------------------------------------------------------------------------- rollout


class Step(ApiModel):
    """One canary step."""

    weight: int = Field(ge=1, le=100, description="Percent of traffic to the canary.")
    duration: Annotated[Duration, Within("0s", "7d")] = Field(
        default=Duration("5m"),
        description="Minimum time at this weight, at most 7d and at most analysis.stepTimeout.",
    )
    approval: bool = Field(default=False, description="Wait for an approval before advancing.")


def _default_steps() -> list[Step]:
    return [Step(weight=10), Step(weight=50), Step(weight=100)]


class Analysis(ApiModel):
    """How a canary is judged against stable, per metric and slice."""

    interval: Annotated[Duration, Within("1s", "1h")] = Field(
        default=Duration("1m"),
        description="Time between analyses, from 1s to 1h (an analysis judges the latest "
        "evaluation; a longer interval would leave a step unjudged for hours).",
    )
    confidence: float = Field(
        default=0.95,
        gt=0.5,
        lt=1,
        description="Confidence of the canary-vs-stable tests: a canary as good as stable "
        "is rolled back with probability at most 1 - confidence over its whole rollout.",
    )
    failure_limit: int = Field(default=1, ge=1, description="Failed analyses that roll back.")
    consecutive_successes: int = Field(
        default=1, ge=1, description="Successful analyses needed before advancing a step."
    )
    max_inconclusive: int = Field(
        default=10, ge=1, description="Inconclusive analyses tolerated at one step."
    )
    on_inconclusive: Literal["rollback", "pause"] = Field(
        default="rollback",
        description="What happens after maxInconclusive, or when a step outlives stepTimeout "
        "without concluding.",
    )
    step_timeout: Annotated[Duration, Within("1s", "30d")] = Field(
        default=Duration("1h"),
        description="The deadline of one step, counted from reaching its weight; from 1s to "
        "30d, and at least every step's duration.",
    )


class SecretKey(ApiModel):
    """A key of a Secret in the Model's namespace."""

    name: DnsName
    key: str = Field(max_length=253, pattern=r"^[-._a-zA-Z0-9]+$", description="The key.")


class WebhookUrlFrom(ApiModel):
    secret_key_ref: SecretKey = Field(description="The Secret key holding the URL.")


class Webhook(ApiModel):
    """A check ModelLoop cannot compute (a fairness audit, a load test, a business KPI),
    asked over HTTP: a POST with the candidate and its evidence; a 2xx answer passes."""

    name: DnsName
    type: Literal["pre-rollout", "rollout", "confirm-promotion"] = Field(
        description="pre-rollout: before the first weight; rollout: at every analysis; "
        "confirm-promotion: before the promotion, holding it until the answer is 2xx."
    )
    url: str | None = Field(
        default=None, description="The URL to POST to.", max_length=2048, pattern=r"^https?://"
    )
    url_from: WebhookUrlFrom | None = Field(
        default=None, description="Or: the URL from a Secret (it may carry a token)."
    )
    timeout: Annotated[Duration, Within("1s", "5m")] = Field(
        default=Duration("10s"),
        description="An answer later than this is inconclusive (the step holds), never a failure.",
    )
    on_failure: Literal["hold", "fail"] = Field(
        default="hold",
        description="A non-2xx answer: hold (the step waits, within its stepTimeout) or fail "
        "(a failed analysis, toward failureLimit; a pre-rollout hook rolls back at once). "
        "confirm-promotion always holds.",
    )
    metadata: dict[str, str] | None = Field(
        default=None,
        description="Sent as they are in the payload's metadata.",
        json_schema_extra={"maxProperties": 32},
    )

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            "has(self.url) != has(self.urlFrom)",
            "a webhook needs exactly one of url or urlFrom",
            lambda w: (w.url is None) != (w.url_from is None),
        ),
    )


class Rollout(ApiModel):
    """Progressive delivery of a validated version."""

    steps: list[Step] = Field(
        default_factory=_default_steps,
        description="Canary weights, strictly increasing, ending at 100.",
        min_length=1,
        max_length=20,
    )
    analysis: Analysis = Field(default_factory=Analysis, description="Canary analysis.")
    scale_down_delay: Annotated[Duration, Within("0s", "7d")] = Field(
        default=Duration("10m"),
        description="How long the previous stable stays warm after a promotion, at most 7d.",
    )
    on_newer_version: Literal["wait", "supersede"] = Field(
        default="wait",
        description="A newer Validated version during a rollout: wait for the rollout to end, "
        "or supersede (roll the canary back and start the newer one).",
    )
    webhooks: list[Webhook] = Field(
        default_factory=list,
        description="Webhook gates, each name once: checks ModelLoop cannot compute.",
        **list_map("name", max_items=16),
    )

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            "self.steps.map(s, s.weight).isSorted() && "
            "self.steps.all(s, self.steps.exists_one(t, t.weight == s.weight))",
            "rollout step weights must be strictly increasing",
            lambda r: all(a.weight < b.weight for a, b in zip(r.steps, r.steps[1:], strict=False)),
            field_path=".steps",
        ),
        CelRule(
            "size(self.steps) == 0 || self.steps[size(self.steps) - 1].weight == 100",
            "the last rollout step must have weight 100",
            lambda r: r.steps[-1].weight == 100,
            field_path=".steps",
        ),
        CelRule(
            "!self.analysis.stepTimeout.matches('"
            + DURATION_PATTERN
            + "') || self.steps.all(s, !s.duration.matches('"
            + DURATION_PATTERN
            + "') || "
            + cel_milliseconds("s.duration")
            + " <= "
            + cel_milliseconds("self.analysis.stepTimeout")
            + ")",
            "a rollout step's duration must not exceed analysis.stepTimeout: the step would "
            "always time out",
            lambda r: all(
                milliseconds(s.duration) <= milliseconds(r.analysis.step_timeout) for s in r.steps
            ),
            field_path=".steps",
        ),
    )


class History(ApiModel):
    keep: int = Field(
        default=5, ge=1, le=100, description="ModelVersions kept besides those serving."
    )


# --------------------------------------------------------------------------- notifications

# What a receiver may subscribe to: each names one or more Event reasons
# (modelloop.notify.subscriptions maps them).
NotificationEvent = Literal[
    "breach",
    "breachPending",
    "recovered",
    "inconclusive",
    "waitingForLabels",
    "trainingStarted",
    "trainingFinished",
    "trainingBackoff",
    "validated",
    "rejected",
    "rolloutStarted",
    "canaryStep",
    "waitingForApproval",
    "paused",
    "promoted",
    "rolledBack",
    "earlyRollback",
    "fault",
]


def _default_notification_events() -> list[NotificationEvent]:
    """Outcomes, and what waits for a person; not progress (trainingStarted,
    rolloutStarted, canaryStep) nor what a Prometheus blip makes (breachPending,
    inconclusive, waitingForLabels)."""
    return [
        "breach",
        "recovered",
        "trainingFinished",
        "validated",
        "rejected",
        "promoted",
        "rolledBack",
        "earlyRollback",
        "paused",
        "waitingForApproval",
        "fault",
    ]


class NotificationReceiver(ApiModel):
    """Who hears of a Model's decisions: a POST per Event of the kinds subscribed."""

    name: DnsName
    type: Literal["webhook", "slack", "teams"] = Field(
        description="webhook: the notification as JSON; slack: a Slack incoming webhook "
        "(text and blocks); teams: a Microsoft Teams Workflows webhook (an Adaptive Card)."
    )
    url_from: WebhookUrlFrom = Field(
        description="The Secret key holding the URL (a webhook URL is a credential): in the "
        "Model's namespace, or the operator's for its own receivers."
    )
    events: list[NotificationEvent] = Field(
        default_factory=_default_notification_events,
        description="The kinds of Event sent (fault: a refused write, an invalid spec, a "
        "failed evaluation). Default: the outcomes and what waits for a person.",
        min_length=1,
        **list_set(max_items=32),
    )


# --------------------------------------------------------------------------- spec

_SLICE_NAMES = "(size(self.slices) == 0 ? ['all'] : self.slices.map(x, x.name))"
# Verdicts per metric x slice x version (stable and canary) and drift x slice live in the
# status, itself at most 4096 verdicts and well below etcd's object size limit (1.5 MiB).
MAX_PAIRS = 512
_CEL_PAIRS = "has({0}.slices) ? size({0}.slices) : (size(self.slices) == 0 ? 1 : size(self.slices))"


class ModelSpec(ApiModel):
    """A served model and its continual-learning policy."""

    serving: Serving = Field(description="How each version is served.")
    traffic: Traffic = Field(default_factory=Traffic, description="How traffic is split.")
    metrics_provider: str = Field(
        default="default",
        description="Name of a Prometheus endpoint configured in the operator.",
        max_length=63,
    )
    evaluation_interval: Annotated[Duration, Within("1s", "1h")] = Field(
        default=Duration("30s"),
        description="How often metrics and drift are evaluated, from 1s (the evaluation "
        "scheduler's tick) to 1h (breach rules and canary analyses need fresh verdicts).",
    )
    slices: list[Slice] = Field(
        default_factory=list,
        description="Data slices metrics are evaluated on. An implicit slice 'all' (no "
        "matchers) exists when none is declared.",
        **list_map("name", max_items=64),
    )
    metrics: list[Metric] = Field(
        default_factory=list, description="Quality metrics.", **list_map("name", max_items=32)
    )
    drift: list[Drift] = Field(
        default_factory=list, description="Drift checks.", **list_map("name", max_items=32)
    )
    retraining: Retraining | None = Field(default=None, description="Retraining policy.")
    validation: Validation = Field(default_factory=Validation, description="Offline gates.")
    rollout: Rollout = Field(default_factory=Rollout, description="Progressive delivery policy.")
    automation: Automation = Field(
        default=Automation.OBSERVE,
        description="observe: evaluate and report; retrain: also train and validate; "
        "propose: also start canaries, wait for approval to promote; promote: fully automatic. "
        "propose and promote also roll out Validated versions made outside ModelLoop, so they "
        "need no spec.retraining.",
    )
    pinned_version: str | None = Field(
        default=None,
        description="Hold production on this ModelVersion: no canary starts or promotes while "
        "set. Setting an earlier version is the undo path.",
        pattern=DNS_LABEL_PATTERN,
        max_length=63,
    )
    paused: bool = Field(default=False, description="Freeze every automatic action.")
    history: History = Field(default_factory=History, description="Retention of ModelVersions.")
    notifications: list[NotificationReceiver] = Field(
        default_factory=list,
        description="Receivers of this Model's decisions (beside the operator's own), each "
        "name once.",
        **list_map("name", max_items=8),
    )

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            "self.metrics.all(m, !has(m.slices) || m.slices.all(s, s in " + _SLICE_NAMES + "))",
            "every slice a metric names must be declared in spec.slices",
            lambda s: all(_known_slices(s, m.slices) for m in s.metrics),
            field_path=".metrics",
        ),
        CelRule(
            "self.drift.all(d, !has(d.slices) || d.slices.all(s, s in " + _SLICE_NAMES + "))",
            "every slice a drift check names must be declared in spec.slices",
            lambda s: all(_known_slices(s, d.slices) for d in s.drift),
            field_path=".drift",
        ),
        CelRule(
            "self.validation.gates.all(g, self.metrics.exists(m, m.name == g.metric) && "
            "(!has(g.slices) || g.slices.all(s, s in " + _SLICE_NAMES + ")))",
            "every validation gate must name a metric from spec.metrics "
            "and slices from spec.slices",
            lambda s: all(
                any(m.name == g.metric for m in s.metrics) and _known_slices(s, g.slices)
                for g in s.validation.gates
            ),
            field_path=".validation.gates",
        ),
        CelRule(
            "!has(self.retraining) || !has(self.retraining.triggers.onBreach) || "
            "self.retraining.triggers.onBreach.all(n, self.metrics.exists(m, m.name == n))",
            "retraining.triggers.onBreach must name metrics from spec.metrics",
            lambda s: (
                s.retraining is None
                or all(
                    any(m.name == n for m in s.metrics)
                    for n in s.retraining.triggers.on_breach or []
                )
            ),
            field_path=".retraining.triggers.onBreach",
        ),
        CelRule(
            "!has(self.retraining) || !has(self.retraining.triggers.onDrift) || "
            "self.retraining.triggers.onDrift.all(n, self.drift.exists(d, d.name == n))",
            "retraining.triggers.onDrift must name drift checks from spec.drift",
            lambda s: (
                s.retraining is None
                or all(
                    any(d.name == n for d in s.drift) for n in s.retraining.triggers.on_drift or []
                )
            ),
            field_path=".retraining.triggers.onDrift",
        ),
        CelRule(
            "self.traffic.provider != 'gatewayAPI' || has(self.traffic.gatewayAPI)",
            "traffic provider gatewayAPI needs traffic.gatewayAPI settings",
            lambda s: s.traffic.provider != "gatewayAPI" or s.traffic.gateway_api is not None,
            field_path=".traffic",
        ),
        CelRule(
            "self.traffic.provider != 'istio' || has(self.traffic.istio)",
            "traffic provider istio needs traffic.istio settings",
            lambda s: s.traffic.provider != "istio" or s.traffic.istio is not None,
            field_path=".traffic",
        ),
        CelRule(
            "!has(self.serving.kserve) || self.traffic.provider == 'replicas'",
            "with serving.kserve, KServe splits the traffic: leave spec.traffic out",
            lambda s: s.serving.kserve is None or s.traffic.provider == "replicas",
            field_path=".traffic",
        ),
        CelRule(
            "self.automation != 'retrain' || has(self.retraining)",
            "automation retrain needs spec.retraining",
            lambda s: s.automation != "retrain" or s.retraining is not None,
            field_path=".automation",
        ),
        CelRule(
            f"self.metrics.map(m, {_CEL_PAIRS.format('m')}).sum() <= {MAX_PAIRS}",
            f"at most {MAX_PAIRS} metric x slice pairs: their verdicts (for the stable and the "
            "canary version) must fit in the Model's status",
            lambda s: _pairs(s, s.metrics) <= MAX_PAIRS,
            field_path=".metrics",
        ),
        CelRule(
            f"self.drift.map(d, {_CEL_PAIRS.format('d')}).sum() <= {MAX_PAIRS}",
            f"at most {MAX_PAIRS} drift x slice pairs: their verdicts must fit in the Model's "
            "status",
            lambda s: _pairs(s, s.drift) <= MAX_PAIRS,
            field_path=".drift",
        ),
    )

    def slice_names(self) -> list[str]:
        return [s.name for s in self.slices] or ["all"]


def _known_slices(spec: ModelSpec, names: list[str] | None) -> bool:
    return names is None or set(names) <= set(spec.slice_names())


def _pairs(spec: ModelSpec, checks: list[Metric] | list[Drift]) -> int:
    """The slices each metric or drift check is evaluated on, added up."""
    return sum(len(c.slices) if c.slices is not None else len(spec.slice_names()) for c in checks)


# --------------------------------------------------------------------------- status


class AnalysisRow(ApiModel):
    """The canary against stable on one metric and slice, at the last analysis."""

    metric: str = Field(max_length=63)
    slice: str = Field(max_length=63)
    outcome: PairOutcome
    stable: float | None = Field(default=None, description="Stable's value.")
    canary: float | None = Field(default=None, description="The canary's value.")
    stable_samples: float | None = Field(default=None, description="Stable's sample count.")
    canary_samples: float | None = Field(default=None, description="The canary's sample count.")
    p_value: float | None = Field(default=None, description="Of the z-test, for proportions.")
    code: str | None = Field(
        default=None,
        description="The reason code (TooFewSamples, NoValue, Untestable, WithinAllowance, "
        "BeyondAllowance, NotSignificant, SignificantRegression, ...).",
        max_length=63,
    )
    reason: str = Field(default="", max_length=512)


class HookRecord(ApiModel):
    """The last answer of one webhook gate."""

    name: str = Field(max_length=63)
    type: str = Field(max_length=32, description="pre-rollout, rollout or confirm-promotion.")
    outcome: str = Field(max_length=16, description="pass, fail, timeout or error.")
    status_code: int | None = Field(default=None, description="The HTTP status answered.")
    message: str = Field(default="", max_length=512)
    time: datetime | None = Field(default=None, description="When it answered.")


class CanaryStatus(ApiModel):
    """The rollout in progress: the durable record a restarted operator resumes from."""

    version: str = Field(description="The canary ModelVersion.")
    weight: int = Field(default=0, description="Percent of traffic written for it.")
    achieved_weight: int | None = Field(
        default=None,
        description="The split the replica counts achieve (replicas provider): canary "
        "replicas over all replicas, in percent.",
    )
    step: int = Field(default=0, description="Index of the current rollout step.")
    steps_hash: str | None = Field(
        default=None,
        description="A hash of spec.rollout.steps when this rollout last started a step: an "
        "edit of the steps during a rollout restarts it at the first step.",
        max_length=16,
    )
    phase: CanaryPhase = Field(
        default=CanaryPhase.PROGRESSING, description="Where the rollout stands."
    )
    started: datetime | None = Field(default=None, description="When the rollout began.")
    step_started: datetime | None = Field(
        default=None, description="When the step's weight was written."
    )
    successes: int = Field(default=0, description="Consecutive successful analyses at this step.")
    failures: int = Field(default=0, description="Failed analyses at this step.")
    inconclusive: int = Field(default=0, description="Inconclusive analyses at this step.")
    tested: int = Field(
        default=0,
        description="Analyses of this rollout that ran a significance test; the level "
        "(1 - confidence) is spent over them.",
    )
    last_analysis: datetime | None = Field(
        default=None, description="Time of the evaluation the last analysis used."
    )
    hooks: list[HookRecord] = Field(
        default_factory=list,
        description="The last answer of each webhook gate of this rollout, one per name.",
        **status_list(max_items=16),
    )
    early_reversed: bool = Field(
        default=False,
        description="The candidate's labels reversed an early rollback of it: this rollout "
        "is judged on labels alone.",
    )
    message: str | None = Field(default=None, description="The last decision, with its numbers.")
    analysis: list[AnalysisRow] = Field(
        default_factory=list,
        description="The last analysis, one row per metric and slice.",
        **status_list(max_items=1024),
    )


class Verdict(ApiModel):
    """The verdict of one metric or drift check on one slice for one version, as of its last
    change (live values are on the operator's /metrics, not here)."""

    kind: CheckKind = Field(
        default=CheckKind.METRIC, description="metric: spec.metrics; drift: spec.drift."
    )
    metric: str = Field(description="The metric's or drift check's name.")
    slice: str
    version: str
    verdict: VerdictName
    since: datetime | None = Field(default=None, description="When this verdict began.")
    value: float | None = Field(
        default=None, description="Value (drift: the statistic) when the verdict changed."
    )
    samples: float | None = Field(default=None, description="Samples when the verdict changed.")
    coverage: float | None = Field(
        default=None,
        description="The share of predictions with their label when the verdict changed "
        "(metrics with labels.minCoverage).",
    )
    reason: str | None = Field(
        default=None,
        description="Why: the objective it fails, why it is inconclusive, or that it waits "
        "for labels.",
    )
    failing_since: datetime | None = Field(
        default=None,
        description="A 'for' breach rule: when the current failing streak began (the breach "
        "is declared 'for' after it, across operator restarts and failovers).",
    )
    recent: str | None = Field(
        default=None,
        description="An 'ofLast' breach rule: its last conclusive outcomes, oldest first "
        "('x' failing, '.' within the objective).",
        pattern=r"^[.x]*$",
        max_length=100,
    )


class TrainingTrigger(ApiModel):
    """Why a training started, with the numbers behind it."""

    kind: TriggerKind = Field(description="What started it.")
    reason: str = Field(default="", description="The numbers behind it.", max_length=1024)
    failing: list[MetricSlice] = Field(
        default_factory=list,
        description="A breach: the metrics and slices that failed on the stable version, "
        "each once; the candidate must do better than the champion on each.",
        **status_list(max_items=512),
    )


class TrainingRecord(ApiModel):
    """One training: reserved, running, or finished with its outcome."""

    sequence: int = Field(ge=1, description="The Model's training sequence number.")
    job: str = Field(description="The training Job.", max_length=63)
    trigger: TrainingTrigger = Field(description="What started it.")
    started: datetime = Field(description="When the sequence number was reserved.")
    finished: datetime | None = Field(default=None, description="When its result was recorded.")
    outcome: TrainingOutcome | None = Field(
        default=None, description="Succeeded: a ModelVersion was made; Failed: none."
    )
    version: str | None = Field(default=None, description="The ModelVersion it made.")
    message: str | None = Field(default=None, description="Why it failed.", max_length=1024)
    new_data_count: float | None = Field(
        default=None, description="The new-data counter when it started (the next baseline)."
    )


class TriggerStatus(ApiModel):
    """One trigger kind's last training that made a candidate, and its candidates the
    offline gate rejected in a row: what the new-data guard and the backoff after
    rejections read. Rebuilt from the ModelVersions when status is lost."""

    kind: TriggerKind = Field(description="The trigger kind.")
    sequence: int | None = Field(
        default=None, ge=1, description="Its last training that made a candidate."
    )
    started: datetime | None = Field(default=None, description="When that training started.")
    new_data_count: float | None = Field(
        default=None, description="The new-data counter then: new data is counted from here."
    )
    rejections: int = Field(
        default=0, ge=0, description="Its candidates the offline gate rejected in a row."
    )
    last_rejected: datetime | None = Field(
        default=None, description="When the last of them was rejected: the backoff runs from here."
    )
    judged_through: int | None = Field(
        default=None,
        ge=1,
        description="The sequence of its newest judged candidate: rejections counts up to it.",
    )


class TrainingTotals(ApiModel):
    """The trainings a Model has finished and the time they took: the loop's cost."""

    trainings: int = Field(default=0, ge=0, description="Trainings finished.")
    failed: int = Field(default=0, ge=0, description="Of them, those that made no version.")
    seconds: float = Field(
        default=0, ge=0, description="Their durations added up, reservation to result."
    )
    since: datetime | None = Field(default=None, description="When the first one finished.")


class TrainingStatus(ApiModel):
    """Bookkeeping that makes trainings restart-safe: the number is reserved here before
    the Job exists, and the Job is named from it."""

    next_sequence: int = Field(
        default=1, ge=1, description="The sequence number the next training will take."
    )
    running: TrainingRecord | None = Field(default=None, description="The running training.")
    history: list[TrainingRecord] = Field(
        default_factory=list,
        description="Finished trainings, newest last: every one of the last 24 hours "
        "(maxPerDay counts them), and at least the last 20.",
        max_length=1460,
    )
    consecutive_failures: int = Field(
        default=0, ge=0, description="Failed trainings in a row (exponential backoff)."
    )
    new_data_baseline: float | None = Field(
        default=None,
        description="The new-data counter before any training: new data is counted from here.",
    )
    triggers: list[TriggerStatus] = Field(
        default_factory=list,
        description="Per trigger kind: its last training that made a candidate and its "
        "rejected candidates in a row (the new-data guard, the backoff after rejections); "
        "one per kind.",
        **status_list(max_items=len(TriggerKind)),
    )
    totals: TrainingTotals | None = Field(
        default=None, description="What the Model's trainings have cost so far."
    )


class LabelsPending(ApiModel):
    """A version an early signal rolled back, whose labels have yet to judge it."""

    version: str = Field(max_length=253)
    due: datetime = Field(description="When the labels of its last traffic have come.")
    signal: str = Field(default="", max_length=512, description="The early signal that failed.")


class ModelStatus(ApiModel):
    phase: ModelPhase | None = Field(
        default=None,
        description="Pending: no version serves yet; Serving; Progressing: a rollout runs; "
        "Paused; Failed: the stable version cannot be served.",
    )
    stable_version: str | None = Field(default=None, description="The ModelVersion serving.")
    canary: CanaryStatus | None = Field(default=None, description="The rollout in progress.")
    labels_pending: list[LabelsPending] = Field(
        default_factory=list,
        description="Versions rolled back by an early signal whose labels will confirm or "
        "reverse it (they are evaluated until then); one per version.",
        **status_list(max_items=16),
    )
    verdicts: list[Verdict] = Field(
        default_factory=list,
        description="Verdicts, one per kind x metric x slice x version.",
        **status_list(max_items=4096),
    )
    training: TrainingStatus | None = Field(default=None, description="Retraining bookkeeping.")
    conditions: list[Condition] = conditions_field()
    observed_generation: int | None = Field(
        default=None, description="The .metadata.generation last acted on."
    )
