"""examples/templates/feedback.yaml: valid MetricTemplates, grouped so the evaluation plans
one request per template for every Model slicing by region, and the AUC's bucket shifts
are the service's score buckets. (tests/integration/feedback/test_feedback_templates.py
runs them on Prometheus against scikit-learn.)"""

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelloop.api.manifests import validate_manifest
from modelloop.api.metrictemplate import MetricTemplateSpec
from modelloop.api.model import ModelSpec
from modelloop.feedback.outcomes import SCORE_BOUNDS
from modelloop.monitoring.plan import Target, plan_cycle

TEMPLATES = Path(__file__).parents[3] / "examples" / "templates" / "feedback.yaml"
MANIFESTS: list[dict[str, Any]] = [d for d in yaml.safe_load_all(TEMPLATES.read_text()) if d]
NAMES = [m["metadata"]["name"] for m in MANIFESTS]


def test_the_file_holds_each_metric_once() -> None:
    assert NAMES == [
        "feedback-accuracy",
        "feedback-precision",
        "feedback-recall",
        "feedback-auc",
        "feedback-calibration-error",
        "feedback-mae",
        "feedback-rmse",
        "feedback-label-coverage",
        "feedback-estimated-accuracy",
        "feedback-estimated-precision",
        "feedback-estimated-recall",
        "feedback-estimate-error",
    ]


@pytest.mark.parametrize("manifest", MANIFESTS, ids=NAMES)
def test_each_is_a_valid_grouped_template(manifest: dict[str, Any]) -> None:
    validate_manifest(manifest)
    spec = MetricTemplateSpec.model_validate(manifest["spec"])
    assert spec.group_by == ["model", "version", "region"]
    for query in (spec.query, spec.sample_query or ""):
        groupings = re.findall(r"by \(([^)]*)\)", query)
        assert groupings
        assert {g.removesuffix(", le") for g in groupings} == {"model, version, region"}


def test_a_model_slicing_by_region_plans_one_request_per_template() -> None:
    metrics = [
        {"name": name.removeprefix("feedback-"), "templateRef": {"name": name}, "window": "1h"}
        for name in NAMES
    ]
    spec = ModelSpec.model_validate(
        {
            "serving": {"template": {"spec": {"containers": [{"name": "m", "image": "m:1"}]}}},
            "slices": [
                {"name": "eu", "matchLabels": {"region": "eu"}},
                {"name": "us", "matchLabels": {"region": "us"}},
            ],
            "metrics": metrics,
        }
    )
    templates = {
        ("ns", m["metadata"]["name"]): MetricTemplateSpec.model_validate(m["spec"])
        for m in MANIFESTS
    }
    targets = [Target("ns", name, spec, (f"{name}-v1", f"{name}-v2")) for name in ("a", "b")]
    plan = plan_cycle(targets, templates, datetime(2026, 1, 1, tzinfo=UTC))
    assert plan.problems == []
    assert len(plan.requests) == len(NAMES)
    # Two Models x two versions x two slices, the value and the sample count of each.
    assert {len(request.slots) for request in plan.requests} == {2 * 2 * 2}
    assert {len(slot.parts) for request in plan.requests for slot in request.slots} == {2}


def test_the_auc_shifts_the_services_score_buckets_by_one() -> None:
    [auc] = [m["spec"]["query"] for m in MANIFESTS if m["metadata"]["name"] == "feedback-auc"]
    shifts = re.findall(r'"le", "([^"]+)", "le", "([^"]+)"\)', auc)
    bounds = [str(b) for b in SCORE_BOUNDS]
    regexes = [b.replace(".", "\\\\.") for b in bounds]
    expected = list(zip([*bounds[1:], "+Inf"], regexes, strict=True))[::-1]
    assert shifts == expected * 2  # the negatives' and the positives' buckets
