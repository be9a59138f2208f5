"""The ModelLoop kinds: names, schemas and how kubectl prints them."""

import re
from dataclasses import dataclass, field
from typing import Any

from .base import DNS_LABEL_PATTERN, ApiModel, CelRule
from .gvr import Resource
from .metrictemplate import MetricTemplateSpec
from .model import ModelSpec, ModelStatus
from .modelversion import ModelVersionSpec, ModelVersionStatus
from .vocabulary import API_VERSION, GROUP, VERSION

MODELS = Resource(GROUP, VERSION, "models")
MODEL_VERSIONS = Resource(GROUP, VERSION, "modelversions")
# The ModelVersion field that names its Model: lists may select on it (the CRD says so).
MODEL_FIELD = "spec.model"
METRIC_TEMPLATES = Resource(GROUP, VERSION, "metrictemplates")


def owner_reference(model: dict[str, Any]) -> dict[str, Any]:
    """The Model as an object's controller: the garbage collector deletes the object with it."""
    meta = model["metadata"]
    return {
        "apiVersion": API_VERSION,
        "kind": "Model",
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


_DNS_LABEL_NAME_RULE = CelRule(
    "size(self.metadata.name) <= 63 && self.metadata.name.matches('" + DNS_LABEL_PATTERN + "')",
    "metadata.name must be a DNS label of at most 63 characters starting with a letter: "
    "it names Deployments and Services",
    lambda obj: (
        len(obj["metadata"]["name"]) <= 63
        and re.fullmatch(DNS_LABEL_PATTERN, obj["metadata"]["name"]) is not None
    ),
)


@dataclass(frozen=True)
class Kind:
    """A custom resource kind and everything its CRD needs besides the schema."""

    kind: str
    plural: str
    short_names: list[str]
    spec: type[ApiModel]
    status: type[ApiModel] | None
    description: str
    printer_columns: list[dict[str, Any]] = field(default_factory=list)
    root_rules: list[CelRule] = field(default_factory=list)
    spec_transition_rules: list[dict[str, str]] = field(default_factory=list)
    # Fields a list may select on (``--field-selector``), as JSON paths
    selectable_fields: list[str] = field(default_factory=list)

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"


_AGE = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}

MODEL = Kind(
    kind="Model",
    plural="models",
    short_names=["mdl"],
    spec=ModelSpec,
    status=ModelStatus,
    description="A model served in production and its continual-learning policy: metrics per "
    "slice, drift, retraining, offline validation and progressive rollout.",
    printer_columns=[
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Stable", "type": "string", "jsonPath": ".status.stableVersion"},
        {"name": "Canary", "type": "string", "jsonPath": ".status.canary.version"},
        {"name": "Weight", "type": "integer", "jsonPath": ".status.canary.weight"},
        {"name": "Automation", "type": "string", "jsonPath": ".spec.automation"},
        {
            "name": "Ready",
            "type": "string",
            "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
        },
        _AGE,
    ],
    root_rules=[_DNS_LABEL_NAME_RULE],
)

MODEL_VERSION = Kind(
    kind="ModelVersion",
    plural="modelversions",
    short_names=["mv"],
    spec=ModelVersionSpec,
    status=ModelVersionStatus,
    description="One trained artifact of a Model, with its lineage and offline metrics. The "
    "spec is immutable.",
    printer_columns=[
        {"name": "Model", "type": "string", "jsonPath": ".spec.model"},
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Role", "type": "string", "jsonPath": ".metadata.labels.modelloop\\.dev/role"},
        {"name": "Trigger", "type": "string", "jsonPath": ".spec.lineage.trigger.kind"},
        {"name": "URI", "type": "string", "jsonPath": ".spec.uri", "priority": 1},
        _AGE,
    ],
    root_rules=[
        _DNS_LABEL_NAME_RULE,
        CelRule(
            "self.metadata.name != self.spec.model",
            "metadata.name must differ from spec.model: a ModelVersion cannot have its Model's "
            "name (that name is the Model's Service); use e.g. <model>-v1",
            lambda obj: obj["metadata"]["name"] != obj["spec"].get("model"),
        ),
    ],
    spec_transition_rules=[
        {
            "rule": "self == oldSelf",
            "message": "ModelVersion spec is immutable: a new artifact is a new ModelVersion",
        }
    ],
    selectable_fields=[f".{MODEL_FIELD}"],
)

METRIC_TEMPLATE = Kind(
    kind="MetricTemplate",
    plural="metrictemplates",
    short_names=["mt"],
    spec=MetricTemplateSpec,
    status=None,
    description="A reusable metric query that Models reference from spec.metrics[].templateRef.",
    printer_columns=[_AGE],
)

KINDS = [MODEL, MODEL_VERSION, METRIC_TEMPLATE]
KINDS_BY_NAME = {kind.kind: kind for kind in KINDS}
