"""The API reference (docs/reference.md) from the same schemas as the CRDs: every
field with its type, default and description, and the validation rules with their
messages. ``make crds`` writes it; a test fails when it is stale."""

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .crdgen import crd
from .resources import KINDS, Kind
from .vocabulary import API_VERSION


def _type(node: dict[str, Any]) -> str:
    kind = node.get("type", "object")
    if kind == "array":
        return f"[]{_type(node.get('items') or {})}"
    if "enum" in node:
        return " \\| ".join(f"`{v}`" for v in node["enum"])
    if kind == "string" and node.get("format"):
        return f"string ({node['format']})"
    return str(kind)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _fields(node: dict[str, Any], path: str, rows: list[str], rules: list[str]) -> None:
    for rule in node.get("x-kubernetes-validations") or []:
        rules.append(f"- `{path or '.'}`: {_cell(rule['message'])}")
    required = set(node.get("required") or [])
    for name, child in (node.get("properties") or {}).items():
        child_path = f"{path}.{name}"
        default = f"`{json.dumps(child['default'])}`" if "default" in child else ""
        flag = " (required)" if name in required else ""
        description = _cell(child.get("description", ""))
        rows.append(f"| `{child_path}`{flag} | {_type(child)} | {default} | {description} |")
        _fields(child, child_path, rows, rules)
        items = child.get("items") or {}
        if items.get("properties"):
            _fields(items, f"{child_path}[]", rows, rules)


def _section(kind: Kind) -> str:
    version = crd(kind)["spec"]["versions"][0]
    root = version["schema"]["openAPIV3Schema"]
    lines = [f"## {kind.kind}", "", _cell(root.get("description", "")), ""]
    for part in ("spec", "status"):
        schema = root["properties"].get(part)
        if schema is None:
            continue
        rows: list[str] = []
        rules: list[str] = []
        _fields(schema, part, rows, rules)
        lines += [
            f"### {kind.kind} {part}",
            "",
            "| Field | Type | Default | Description |",
            "| --- | --- | --- | --- |",
            *rows,
            "",
        ]
        if rules:
            lines += [f"Rules the API server enforces on `{part}`:", "", *rules, ""]
    return "\n".join(lines)


def render_reference() -> str:
    header = [
        f"# API reference ({API_VERSION})",
        "",
        "Generated from the pydantic models in `operator/modelloop/api` by `make crds`; "
        "do not edit.",
        "",
    ]
    return "\n".join(header + [_section(kind) for kind in KINDS])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the API reference.")
    parser.add_argument("path", type=Path)
    args = parser.parse_args(argv)
    args.path.parent.mkdir(parents=True, exist_ok=True)
    args.path.write_text(render_reference())
    return 0


if __name__ == "__main__":
    sys.exit(main())
