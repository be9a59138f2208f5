"""Building blocks shared by every ModelLoop resource model."""

import json
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    model_validator,
)
from pydantic.alias_generators import to_camel, to_snake
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

# Names that end up in object names and label values: a DNS-1035 label.
DNS_LABEL_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
# Prometheus label names.
LABEL_NAME_PATTERN = r"^[a-zA-Z_][a-zA-Z0-9_]*$"


def _cel_rules_schema(schema: dict[str, Any], cls: type) -> None:
    rules: tuple[CelRule, ...] = getattr(cls, "cel_rules", ())
    if rules:
        schema["x-kubernetes-validations"] = [rule.to_schema() for rule in rules]


class ApiModel(BaseModel):
    """camelCase on the wire, snake_case in Python, unknown fields rejected.

    Unknown fields are errors rather than silently pruned, matching what the API
    server does under ``fieldValidation=Strict`` (kubectl's default). A subclass
    declares its cross-field rules in ``cel_rules``: they land in the CRD as
    ``x-kubernetes-validations`` and are checked here on parsing.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        json_schema_extra=_cel_rules_schema,
    )
    cel_rules: ClassVar[tuple["CelRule", ...]] = ()

    def to_wire(self) -> dict[str, Any]:
        """The JSON-compatible dict as it appears in a manifest."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    @model_validator(mode="after")
    def _check_cel_rules(self) -> "ApiModel":
        _check_list_keys(self)
        enforce(self, self.cel_rules)
        return self


class RuleViolation(ValueError):
    """A rule failed at ``field_path`` below the object being validated (CEL's fieldPath).

    Kept apart from the message so that a manifest's error names the field as the
    API server does: ``spec.retraining.triggers.onBreach: <message>``.
    """

    def __init__(self, message: str, field_path: str = "") -> None:
        super().__init__(f"{field_path.lstrip('.')}: {message}" if field_path else message)
        self.message = message
        self.field_path = field_path


def _check_list_keys(model: ApiModel) -> None:
    """Each key once in a list map, each value once in a set, as the API server enforces."""
    for name, info in type(model).model_fields.items():
        extra = info.json_schema_extra
        if not isinstance(extra, dict) or extra.get("x-kubernetes-list-type") not in (
            "map",
            "set",
        ):
            continue
        keys = extra.get("x-kubernetes-list-map-keys")
        seen: set[Any] = set()
        for index, item in enumerate(getattr(model, name) or []):
            if isinstance(keys, list):  # a list map: compare the key fields
                value: Any = {str(k): getattr(item, to_snake(str(k))) for k in keys}
                key: Any = tuple(value.values())
            else:
                value = key = item
            if key in seen:
                raise RuleViolation(
                    f"Duplicate value: {json.dumps(value)}", f".{info.alias or name}[{index}]"
                )
            seen.add(key)


class CelRule:
    """A cross-field rule, enforced twice: by the API server (as CEL) and by pydantic.

    ``check`` is the same rule in Python, so a manifest gets the same verdict
    from ``kubectl apply`` and from the operator's own parsing; the test corpus
    holds them to that.
    """

    def __init__(
        self,
        rule: str,
        message: str,
        check: Callable[[Any], bool],
        field_path: str | None = None,
    ) -> None:
        self.rule = rule
        self.message = message
        self.check = check
        self.field_path = field_path

    def to_schema(self) -> dict[str, str]:
        schema = {"rule": self.rule, "message": self.message}
        if self.field_path:
            schema["fieldPath"] = self.field_path
        return schema


def enforce(model: Any, rules: Iterable[CelRule]) -> None:
    """Raise RuleViolation with the rule's message for the first rule that fails."""
    for rule in rules:
        if not rule.check(model):
            raise RuleViolation(rule.message, rule.field_path or "")


class MetricSlice(ApiModel):
    """One metric on one slice."""

    metric: str = Field(max_length=63, description="The metric (from spec.metrics).")
    slice: str = Field(max_length=63, description="The slice (from spec.slices).")


class FieldRule:
    """A rule on one field's value, in ``Annotated[type, FieldRule(...)]``.

    Like CelRule, enforced twice: as CEL (``self`` is the value) in the field's
    ``x-kubernetes-validations``, and by ``check`` when pydantic parses the field.
    The API server and pydantic both prefix the message with the field's path.
    """

    def __init__(self, rule: str, message: str, check: Callable[[Any], bool]) -> None:
        self.rule = rule
        self.message = message
        self.check = check

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self._validate, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        rules = json_schema.setdefault("x-kubernetes-validations", [])
        rules.append({"rule": self.rule, "message": self.message})
        return json_schema

    def _validate(self, value: Any) -> Any:
        if not self.check(value):
            raise ValueError(self.message)
        return value


def list_map(*keys: str, max_items: int) -> dict[str, Any]:
    """Field schema extras for a list keyed by name (``x-kubernetes-list-type: map``)."""
    return {
        "json_schema_extra": {
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": list(keys),
        },
        "max_length": max_items,
    }


def status_list(*, max_items: int) -> dict[str, Any]:
    """Field schema extras for a list in a status, written whole by the operator
    (``x-kubernetes-list-type: atomic``).

    A list map makes the API server track every field of every entry in
    ``metadata.managedFields``: a Model's verdicts list map made its managedFields larger
    than its status, and every status patch decoded, merged and stored them again. A
    status list has one writer, whose merge patches replace the list whole, so nothing is
    gained by tracking its entries. Its entries are unique by construction (built from a
    dict keyed as the description says), not by the API server's check."""
    return {"json_schema_extra": {"x-kubernetes-list-type": "atomic"}, "max_length": max_items}


def list_set(*, max_items: int) -> dict[str, Any]:
    """Field schema extras for a list of distinct values (``x-kubernetes-list-type: set``)."""
    return {"json_schema_extra": {"x-kubernetes-list-type": "set"}, "max_length": max_items}


class OpenObject(ApiModel):
    """Part of an embedded Kubernetes object: the fields ModelLoop reads are declared and
    checked, every other field is kept as written (``x-kubernetes-preserve-unknown-fields``)
    for the API server to validate when the operator creates the real object."""

    model_config = ConfigDict(extra="allow")


class Embedded:
    """``Annotated[dict[str, Any], Embedded(Shape)]``: validated against an OpenObject shape
    and kept a plain dict, as the API server stores it: the shape's defaults filled in, null
    fields left out.

    ``x-kubernetes-embedded-resource`` is deliberately not used: it would force
    users to write apiVersion and kind inside a template.
    """

    def __init__(self, shape: type[OpenObject]) -> None:
        self.shape = shape

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(
            _as_dict, handler.generate_schema(self.shape)
        )


def _as_dict(value: OpenObject) -> dict[str, Any]:
    return value.model_dump(by_alias=True, exclude_none=True)


class Condition(ApiModel):
    """A condition in the shape of ``metav1.Condition``."""

    type: str = Field(description="Type of condition in CamelCase, e.g. Ready.", max_length=64)
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(
        description="A CamelCase word saying why the condition is in this state.", max_length=64
    )
    message: str = Field(default="", description="A sentence for humans, with the numbers.")
    last_transition_time: datetime | None = Field(
        default=None, description="When the status last changed."
    )
    observed_generation: int | None = Field(
        default=None, description="The .metadata.generation this condition was computed from."
    )


def conditions_field() -> Any:
    return Field(
        default_factory=list,
        description="Conditions keyed by type (Ready, Pinned, ...).",
        **list_map("type", max_items=32),
    )
