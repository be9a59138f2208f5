"""Validate a whole manifest as the API server would: kind, name rules and spec."""

from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from .base import enforce
from .resources import API_VERSION, KINDS_BY_NAME


class InvalidManifest(ValueError):
    pass


def _describe(error: ErrorDetails) -> str:
    where = ".".join(["spec", *map(str, error["loc"])])
    return f"{where}: {error['msg'].removeprefix('Value error, ')}"


def validate_manifest(manifest: dict[str, Any]) -> None:
    """Raise InvalidManifest with a readable message when the API server would reject it."""
    if manifest.get("apiVersion") != API_VERSION:
        raise InvalidManifest(f"apiVersion must be {API_VERSION}")
    kind = KINDS_BY_NAME.get(str(manifest.get("kind")))
    if kind is None:
        raise InvalidManifest(f"unknown kind {manifest.get('kind')!r}")
    if "spec" not in manifest:
        raise InvalidManifest("spec: Required value")
    try:
        kind.spec.model_validate(manifest["spec"])
        enforce(manifest, kind.root_rules)
    except ValidationError as error:
        raise InvalidManifest("; ".join(_describe(e) for e in error.errors())) from error
    except ValueError as error:
        raise InvalidManifest(str(error)) from error
