"""The ``MetricTemplate`` resource: a reusable metric query."""

from pydantic import Field

from .base import LABEL_NAME_PATTERN, ApiModel, list_map


class TemplateVariable(ApiModel):
    name: str = Field(
        pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$", max_length=63, description="Used as $name."
    )
    default: str | None = Field(default=None, description="Value when a Model gives none.")


class MetricTemplateSpec(ApiModel):
    """A metric query shared by many Models, like Flagger's MetricTemplate."""

    query: str = Field(
        description="PromQL with the placeholders $version, $slice, $window, $model, "
        "$namespace and the declared variables; with groupBy, $window, $labelDelay, the "
        "variables and $models and $namespaces: regular expressions of the names of the "
        'Models the query serves and of their namespaces (e.g. {model=~"$models"}), so '
        "that a shard asks only for its own Models' series.",
        max_length=4096,
    )
    sample_query: str | None = Field(
        default=None, description="PromQL counting samples behind the value.", max_length=4096
    )
    coverage_query: str | None = Field(
        default=None,
        description="PromQL: the share of the window's predictions whose label arrived, for "
        "a Model metric's labels.minCoverage; may use $labelDelay, the metric's labels.delay.",
        max_length=4096,
    )
    group_by: list[str] = Field(
        default_factory=list,
        description="Labels, each once, that identify model, version and slice in the result, "
        "so the metric can be evaluated for many Models in one query.",
        max_length=16,
        json_schema_extra={
            "items": {"type": "string", "pattern": LABEL_NAME_PATTERN},
            "x-kubernetes-list-type": "set",
        },
    )
    variables: list[TemplateVariable] = Field(
        default_factory=list, description="Declared variables.", **list_map("name", max_items=32)
    )
