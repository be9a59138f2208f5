"""Building blocks shared by every ModelLoop resource model."""

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel, to_snake

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
        _check_list_map_keys(self)
        enforce(self, self.cel_rules)
        return self


def _check_list_map_keys(model: ApiModel) -> None:
    """Lists keyed by name hold each key once, as the API server enforces for list maps."""
    for name, info in type(model).model_fields.items():
        extra = info.json_schema_extra
        if not isinstance(extra, dict) or "x-kubernetes-list-map-keys" not in extra:
            continue
        keys = extra["x-kubernetes-list-map-keys"]
        assert isinstance(keys, list)
        items = getattr(model, name) or []
        seen = [tuple(getattr(item, to_snake(str(k))) for k in keys) for item in items]
        if not unique(seen):
            raise ValueError(
                f"{info.alias or name}: Duplicate value of {', '.join(map(str, keys))}"
            )


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
    """Raise ValueError with the rule's message for the first rule that fails."""
    for rule in rules:
        if not rule.check(model):
            where = f"{rule.field_path.lstrip('.')}: " if rule.field_path else ""
            raise ValueError(f"{where}{rule.message}")


def list_map(*keys: str, max_items: int) -> dict[str, Any]:
    """Field schema extras for a list keyed by name (``x-kubernetes-list-type: map``)."""
    return {
        "json_schema_extra": {
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": list(keys),
        },
        "max_length": max_items,
    }


def unique(names: Iterable[Any]) -> bool:
    seen: set[Any] = set()
    for name in names:
        if name in seen:
            return False
        seen.add(name)
    return True


def preserved_object(description: str) -> Any:
    """An embedded Kubernetes template (pod or Job) the API server validates later.

    The schema keeps the object open (``x-kubernetes-preserve-unknown-fields``)
    because the API server validates the real Deployment or Job when the
    operator creates it; ``x-kubernetes-embedded-resource`` is deliberately not
    set, it would force users to write apiVersion and kind inside a template.
    """
    return Field(
        description=description,
        json_schema_extra={"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    )


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
