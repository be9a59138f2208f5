"""Validate a whole manifest as the API server would: kind, name rules and spec.

The manifest is checked as JSON, strictly and by its wire names only, because
that is what the API server sees: ``"5"`` is no integer, ``"true"`` is no
boolean, ``"0.9"`` is no number and ``min_samples`` is an unknown field. Values
are read as the API server decodes them: ``1.0`` and ``1e2`` are integers (a
whole number up to 2^53 is a JSON integer), 2^63 and above are not, and a null
field is unset. Errors name
the field as the API server does (``spec.metrics[0].window``) and use its
words for what both check alike (``Required value``, ``Duplicate value``,
``must be of type integer``, ``should match``, ...).
"""

import json
from datetime import date, datetime
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from .base import RuleViolation, enforce
from .resources import KINDS_BY_NAME
from .vocabulary import API_VERSION


class InvalidManifest(ValueError):
    pass


_TYPES = {
    "int_type": "integer",
    "int_parsing": "integer",
    "int_from_float": "integer",
    "float_type": "number",
    "float_parsing": "number",
    "bool_type": "boolean",
    "bool_parsing": "boolean",
    "string_type": "string",
    "list_type": "array",
    "dict_type": "object",
    "model_type": "object",
    "model_attributes_type": "object",
}
_BOUNDS = {  # pydantic's bound errors in the API server's words
    "greater_than_equal": "should be greater than or equal to {ge}",
    "greater_than": "should be greater than {gt}",
    "less_than_equal": "should be less than or equal to {le}",
    "less_than": "should be less than {lt}",
    "string_pattern_mismatch": "should match '{pattern}'",
    "string_too_short": "should be at least {min_length} chars long",
    "string_too_long": "may not be more than {max_length} bytes",
    "too_short": "should have at least {min_length} items",
    "too_long": "must have at most {max_length} items",
}


def _path(loc: tuple[int | str, ...]) -> str:
    return "spec" + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)


def _describe(error: ErrorDetails) -> str:
    where = _path(error["loc"])
    kind = error["type"]
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, RuleViolation):
        return f"{where}{cause.field_path}: {cause.message}"
    if kind == "missing":
        return f"{where}: Required value"
    if kind == "extra_forbidden":
        return f'unknown field "{where}"'
    if kind in ("literal_error", "enum"):
        return f"{where}: Unsupported value: {json.dumps(error['input'])}"
    if kind in _TYPES:
        return f"{where}: Invalid value: must be of type {_TYPES[kind]}"
    if kind in _BOUNDS:
        return f"{where}: Invalid value: {_BOUNDS[kind].format(**error.get('ctx', {}))}"
    return f"{where}: {error['msg'].removeprefix('Value error, ')}"


_INT64 = 2**63
_EXACT = 2**53


def _as_decoded(value: Any) -> Any:
    """The manifest as the API server decodes it before validation."""
    if isinstance(value, dict):
        # A null field is dropped before defaulting (no field of ModelLoop's is nullable).
        return {k: _as_decoded(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_as_decoded(v) for v in value]
    if isinstance(value, float) and value.is_integer() and abs(value) <= _EXACT:
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and not -_INT64 <= value < _INT64:
        return float(value)
    return value


def _json_value(value: Any) -> str:
    """YAML timestamps as the strings kubectl sends."""
    if isinstance(value, datetime | date):
        return value.isoformat().replace("+00:00", "Z")
    raise TypeError(f"not JSON: {value!r}")


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
        wire = json.dumps(_as_decoded(manifest["spec"]), allow_nan=False, default=_json_value)
    except (TypeError, ValueError) as error:
        raise InvalidManifest(f"spec: not JSON: {error}") from error
    try:
        kind.spec.model_validate_json(wire, strict=True, by_alias=True, by_name=False)
        enforce(manifest, kind.root_rules)
    except ValidationError as error:
        raise InvalidManifest("; ".join(_describe(e) for e in error.errors())) from error
    except ValueError as error:
        raise InvalidManifest(str(error)) from error
