"""Generate the CustomResourceDefinitions from the pydantic models.

The models are the single source of truth; ``make crds`` writes ``crds/`` and a
test fails when the checked-in files differ. The JSON Schema pydantic produces
is turned into a structural OpenAPI v3 schema as Kubernetes requires: ``$ref``
inlined, ``Optional`` unwrapped (absence means unset), no ``title``, defaults
in wire form, ``additionalProperties: true`` as preserve-unknown-fields.
"""

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic.json_schema import GenerateJsonSchema, NoDefault
from pydantic_core import core_schema

from .base import ApiModel
from .resources import KINDS, Kind
from .vocabulary import API_VERSION, CATEGORY, GROUP, VERSION


class _WithFactoryDefaults(GenerateJsonSchema):
    """Emit defaults made by ``default_factory`` too, so the API server fills them in."""

    def get_default_value(self, schema: core_schema.WithDefaultSchema) -> Any:
        factory = schema.get("default_factory")
        if factory is not None and not schema.get("default_factory_takes_data"):
            return factory()  # type: ignore[call-arg]
        return schema.get("default", NoDefault)


def _drop_nones(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nones(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nones(v) for v in value]
    return value


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Inline ``$ref`` and unwrap ``Optional`` until the node stands on its own."""
    while True:
        if "$ref" in node:
            rest = {k: v for k, v in node.items() if k != "$ref"}
            # The field's own keys (description, default) win over the referenced model's.
            node = {**copy.deepcopy(defs[node["$ref"].rsplit("/", 1)[-1]]), **rest}
        elif "anyOf" in node:
            options = [o for o in node["anyOf"] if o.get("type") != "null"]
            if len(options) != 1:
                raise ValueError(f"cannot express a union in a structural schema: {options}")
            rest = {k: v for k, v in node.items() if k != "anyOf"}
            node = {**options[0], **rest}
        else:
            return node


def _structural(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Rewrite one JSON Schema node (recursively) into Kubernetes' structural form."""
    node = _resolve(node, defs)
    node.pop("title", None)
    node.pop("propertyNames", None)
    if "const" in node:
        node["enum"] = [node.pop("const")]
    for bound, inclusive in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if bound in node:
            node[inclusive] = node.pop(bound)
            node[bound] = True
    additional = node.get("additionalProperties")
    if additional is True or (node.get("type") == "object" and additional == {}):
        del node["additionalProperties"]
        node["x-kubernetes-preserve-unknown-fields"] = True
    elif additional is False:
        del node["additionalProperties"]
    if node.get("default", ...) is None:
        del node["default"]
    elif "default" in node:
        node["default"] = _drop_nones(node["default"])
    if "properties" in node:
        node["properties"] = {k: _structural(v, defs) for k, v in node["properties"].items()}
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            node[key] = _structural(node[key], defs)
    if node.get("x-kubernetes-preserve-unknown-fields") and "type" not in node:
        node["type"] = "object"
    return node


def openapi_schema(model: type[ApiModel]) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of one pydantic model."""
    raw = model.model_json_schema(by_alias=True, schema_generator=_WithFactoryDefaults)
    defs = raw.pop("$defs", {})
    schema: dict[str, Any] = _structural(raw, defs)
    return schema


def crd(kind: Kind) -> dict[str, Any]:
    spec_schema = openapi_schema(kind.spec)
    spec_schema["x-kubernetes-validations"] = (
        spec_schema.get("x-kubernetes-validations", []) + kind.spec_transition_rules
    ) or None
    if spec_schema["x-kubernetes-validations"] is None:
        del spec_schema["x-kubernetes-validations"]
    properties: dict[str, Any] = {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": spec_schema,
    }
    root: dict[str, Any] = {
        "type": "object",
        "description": kind.description,
        "required": ["spec"],
        "properties": properties,
    }
    if kind.root_rules:
        root["x-kubernetes-validations"] = [rule.to_schema() for rule in kind.root_rules]
    version: dict[str, Any] = {
        "name": VERSION,
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": root},
        "additionalPrinterColumns": kind.printer_columns,
    }
    if kind.selectable_fields:
        version["selectableFields"] = [{"jsonPath": path} for path in kind.selectable_fields]
    if kind.status is not None:
        properties["status"] = openapi_schema(kind.status)
        version["subresources"] = {"status": {}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": kind.crd_name,
            "labels": {"app.kubernetes.io/part-of": "modelloop"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.singular,
                "shortNames": kind.short_names,
                "categories": [CATEGORY],
            },
            "versions": [version],
        },
    }


def render(kind: Kind) -> str:
    header = (
        f"# Generated from the pydantic models in operator/modelloop/api ({API_VERSION}).\n"
        "# Do not edit: run `make crds`.\n"
    )
    return header + yaml.safe_dump(crd(kind), sort_keys=False, width=100)


def rendered_files() -> dict[str, str]:
    return {f"{kind.crd_name}.yaml": render(kind) for kind in KINDS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=f"Write the {GROUP} CRDs.")
    parser.add_argument("directory", type=Path, help="where to write the CRD YAML files")
    args = parser.parse_args(argv)
    args.directory.mkdir(parents=True, exist_ok=True)
    for name, text in rendered_files().items():
        (args.directory / name).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
