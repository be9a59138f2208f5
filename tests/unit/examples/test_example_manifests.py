"""Every manifest under examples/ is one the API server accepts, and every MetricTemplate
there is one the evaluation can plan: a user copies these first."""

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelloop.api.manifests import validate_manifest
from modelloop.api.metrictemplate import MetricTemplateSpec
from modelloop.api.model import ModelSpec
from modelloop.monitoring.plan import Target, plan_cycle

EXAMPLES = Path(__file__).parents[3] / "examples"
KINDS = {"Model", "ModelVersion", "MetricTemplate"}
MANIFESTS: list[tuple[str, dict[str, Any]]] = [
    (f"{path.relative_to(EXAMPLES)}:{doc['metadata']['name']}", doc)
    for path in sorted(EXAMPLES.rglob("*.yaml"))
    for doc in yaml.safe_load_all(path.read_text())
    if isinstance(doc, dict) and doc.get("kind") in KINDS
]
TEMPLATES = [(name, doc) for name, doc in MANIFESTS if doc["kind"] == "MetricTemplate"]


def test_the_examples_hold_each_kind() -> None:
    assert {doc["kind"] for _, doc in MANIFESTS} == KINDS


@pytest.mark.parametrize("manifest", [doc for _, doc in MANIFESTS], ids=[n for n, _ in MANIFESTS])
def test_each_example_is_valid(manifest: dict[str, Any]) -> None:
    validate_manifest(manifest)


@pytest.mark.parametrize("template", [doc for _, doc in TEMPLATES], ids=[n for n, _ in TEMPLATES])
def test_each_template_plans_for_a_model_that_references_it(template: dict[str, Any]) -> None:
    spec = MetricTemplateSpec.model_validate(template["spec"])
    name = template["metadata"]["name"]
    labels = [label for label in spec.group_by or [] if label not in ("model", "version")]
    slices = [{"name": "one", "matchLabels": {label: "x" for label in labels}}] if labels else []
    model = ModelSpec.model_validate(
        {
            "serving": {"template": {"spec": {"containers": [{"name": "m", "image": "m:1"}]}}},
            "slices": slices,
            "metrics": [{"name": "m", "templateRef": {"name": name}}],
        }
    )
    plan = plan_cycle(
        [Target("ns", "a", model, ("a-v1",))],
        {("ns", name): spec},
        datetime(2026, 1, 1, tzinfo=UTC),
    )
    assert plan.problems == []
    assert len(plan.requests) == 1
