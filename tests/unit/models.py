"""Small builders the unit tables share."""

from typing import Any

from modelloop.api.model import ModelSpec


def spec_of(model: dict[str, Any]) -> ModelSpec:
    """The typed spec of a Model manifest, as the operator parses it at the edge."""
    return ModelSpec.model_validate(model["spec"])
