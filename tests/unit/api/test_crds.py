"""The checked-in CRDs are exactly what the models generate, and structurally sound."""

from pathlib import Path
from typing import Any

import pytest
import yaml

from modelloop.api.crdgen import crd, rendered_files
from modelloop.api.docgen import render_reference
from modelloop.api.resources import KINDS, Kind

CRD_DIR = Path(__file__).parents[3] / "crds"
# The only places where unknown fields are kept: embedded templates the API
# server validates when the operator creates the Deployment, Job or route (only
# the parts the operator reads are declared in them).
EMBEDDED = (
    "spec.serving.template",
    "spec.serving.kserve.predictor",
    "spec.retraining.job",
    "spec.retraining.workload.template",
)
PRESERVED = {"spec.traffic.gatewayAPI.parentRefs[]"}


def test_checked_in_crds_match_the_models() -> None:
    expected = rendered_files()
    actual = {p.name: p.read_text() for p in CRD_DIR.glob("*.yaml")}
    assert actual.keys() == expected.keys(), "run `make crds`"
    for name, text in expected.items():
        assert actual[name] == text, f"{name} is stale: run `make crds`"


def test_the_api_reference_is_generated_from_the_same_schemas() -> None:
    reference = CRD_DIR.parent / "docs" / "reference.md"
    assert reference.read_text() == render_reference(), (
        "docs/reference.md is stale: run `make crds`"
    )
    text = reference.read_text()
    for kind in KINDS:  # every field of every kind is listed, with its description
        schema = crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        for path, _ in _walk(schema, ""):
            if (
                path.startswith(("spec.", "status."))
                and not path.endswith("[]")
                and "{}" not in path
            ):
                assert f"| `{path}`" in text, path


def _walk(node: dict[str, Any], path: str) -> list[tuple[str, dict[str, Any]]]:
    found = [(path, node)]
    for name, child in (node.get("properties") or {}).items():
        found += _walk(child, f"{path}.{name}" if path else name)
    if isinstance(node.get("items"), dict):
        found += _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        found += _walk(node["additionalProperties"], f"{path}{{}}")
    return found


def _nodes(kind: Kind) -> list[tuple[str, dict[str, Any]]]:
    schema = crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return _walk(schema, "")


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_schema_is_structural(kind: Kind) -> None:
    for path, node in _nodes(kind):
        text = yaml.safe_dump(node)
        assert "$ref" not in text, path
        assert "anyOf" not in text, path
        assert "title" not in node, path
        assert "type" in node, f"{path} has no type"
        if node.get("x-kubernetes-preserve-unknown-fields"):
            assert path in PRESERVED or path.startswith(EMBEDDED), (
                f"{path} must not preserve unknown fields"
            )
        assert "x-kubernetes-embedded-resource" not in node, path


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_every_spec_field_is_documented(kind: Kind) -> None:
    undocumented = [
        path
        for path, node in _nodes(kind)
        if path.startswith("spec.")
        and not path.endswith("[]")
        and not path.endswith("{}")
        and "description" not in node
    ]
    assert undocumented == []


def test_lists_keyed_by_name_and_conditions_by_type() -> None:
    model = dict(_nodes(KINDS[0]))
    for path in ("spec.slices", "spec.metrics", "spec.drift"):
        assert model[path]["x-kubernetes-list-type"] == "map"
        assert model[path]["x-kubernetes-list-map-keys"] == ["name"]
    assert model["status.conditions"]["x-kubernetes-list-map-keys"] == ["type"]


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_status_lists_are_atomic_but_conditions(kind: Kind) -> None:
    """A list map in a status would put every field of every entry in managedFields and
    cost the API server on every status patch (``api.base.status_list``)."""
    keyed = [
        path
        for path, node in _nodes(kind)
        if path.startswith("status.")
        and node.get("type") == "array"
        and node.get("x-kubernetes-list-type", "atomic") != "atomic"
    ]
    assert set(keyed) <= {"status.conditions"}


def test_model_version_spec_is_immutable() -> None:
    schema = crd(KINDS[1])["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    rules = schema["properties"]["spec"]["x-kubernetes-validations"]
    assert {"rule": "self == oldSelf"}.items() <= rules[-1].items()
