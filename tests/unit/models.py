"""Small builders the unit tables share."""

from dataclasses import replace
from typing import Any

from modelloop.api.model import ModelSpec
from modelloop.serving.plan import VersionView


def spec_of(model: dict[str, Any]) -> ModelSpec:
    """The typed spec of a Model manifest, as the operator parses it at the edge."""
    return ModelSpec.model_validate(model["spec"])


SERVED_AT = "2026-11-01T00:00:00Z"


def version_view(
    name: str,
    phase: str | None = None,
    role: str | None = None,
    since: str | None = None,
    created: str = "",
    served: str | None = None,
) -> VersionView:
    """A ModelVersion as the planner sees it. One with a role or a phase of having served
    carries the served annotation, as the operator leaves it, unless ``served`` says when."""
    view = VersionView(name, f"s3://m/{name}", phase, role, since, created or name)
    return replace(view, served=served or (SERVED_AT if view.has_served else None))
