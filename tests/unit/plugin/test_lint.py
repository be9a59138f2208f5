"""`kubectl modelloop lint` on documents: the corpus gets the API server's verdict with the
field named, the CEL rules hold offline on their own, and the cross-object checks find
what the evaluation planner could not ask Prometheus for."""

import copy
from typing import Any

import pytest
import yaml
from tests.harness.corpus import CORPUS, EXAMPLES_DIR, CorpusCase

from modelloop.api.crdgen import crd
from modelloop.api.resources import KINDS
from modelloop.plugin import cel
from modelloop.plugin.lint import Document, Finding, lint

INVALID = [c for c in CORPUS if not c.valid]
VALID = [c for c in CORPUS if c.valid and not c.name.startswith("example-")]


def _cel_messages(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        found |= {r["message"] for r in node.get("x-kubernetes-validations", [])}
        for value in node.values():
            found |= _cel_messages(value)
    elif isinstance(node, list):
        for value in node:
            found |= _cel_messages(value)
    return found


CEL_MESSAGES = set().union(*(_cel_messages(crd(kind)) for kind in KINDS))
JUDGED_BY_CEL = [c for c in INVALID if any(str(c.message) in m for m in CEL_MESSAGES)]


def lines(*manifests: Any) -> list[str]:
    return [f.line() for f in lint([Document(f"f{i}.yaml", m) for i, m in enumerate(manifests)])]


@pytest.mark.parametrize("case", VALID, ids=lambda c: c.name)
def test_a_valid_manifest_has_no_finding(case: CorpusCase) -> None:
    assert lines(case.manifest) == []


@pytest.mark.parametrize("case", INVALID, ids=lambda c: c.name)
def test_an_invalid_manifest_fails_naming_its_field(case: CorpusCase) -> None:
    found = lint([Document("x.yaml", case.manifest)])
    assert found, "no finding"
    name = case.manifest["metadata"]["name"]
    assert {(f.file, f.kind, f.name) for f in found} == {("x.yaml", case.manifest["kind"], name)}
    assert case.message
    assert case.field
    assert any(
        case.message in f.message and case.field in f"{f.field}: {f.message}" for f in found
    ), [f.line() for f in found]


@pytest.mark.parametrize("case", JUDGED_BY_CEL, ids=lambda c: c.name)
def test_the_cel_rules_alone_fail_where_the_api_server_does(case: CorpusCase) -> None:
    """Every CEL rule has such a case (tests/unit/api/test_corpus.py): the offline
    evaluator is held to the API server's verdict on each."""
    assert case.message
    assert case.field
    found = cel.violations(case.manifest)
    assert any(
        case.message in v.message and case.field in f"{v.field}: {v.message}" for v in found
    ), found


@pytest.mark.parametrize("case", VALID, ids=lambda c: c.name)
def test_the_cel_rules_hold_on_a_valid_manifest(case: CorpusCase) -> None:
    assert cel.violations(case.manifest) == []


def test_the_examples_together_have_no_finding() -> None:
    documents = [
        Document(str(path), doc)
        for path in sorted(EXAMPLES_DIR.rglob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
    ]
    assert lint(documents) == []
    kinds = {d.manifest.get("kind") for d in documents if isinstance(d.manifest, dict)}
    assert {"Model", "ModelVersion", "MetricTemplate"} <= kinds


# ------------------------------------------------------------------ across documents

SERVING = {"template": {"spec": {"containers": [{"name": "m", "image": "m:1"}]}}}


def model(
    *, slices: list[dict[str, Any]] | None = None, namespace: str | None = None, **ref: Any
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "churn"}
    if namespace:
        meta["namespace"] = namespace
    return {
        "apiVersion": "modelloop.dev/v1alpha1",
        "kind": "Model",
        "metadata": meta,
        "spec": {
            "serving": SERVING,
            "slices": slices or [],
            "metrics": [
                {"name": "auc", "templateRef": {"name": "auc", **ref}, "objective": {"min": 0.7}}
            ],
        },
    }


def template(
    group_by: list[str] | None = None, namespace: str | None = None, **spec: Any
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "auc"}
    if namespace:
        meta["namespace"] = namespace
    query = "avg by (model, version, region) (model_auc[$window])" if group_by else "x"
    return {
        "apiVersion": "modelloop.dev/v1alpha1",
        "kind": "MetricTemplate",
        "metadata": meta,
        "spec": {"query": query, "groupBy": group_by or [], **spec},
    }


BY_CHANNEL = [
    {"name": "mobile", "matchLabels": {"channel": "mobile"}},
    {"name": "web", "matchLabels": {"channel": "web"}},
]
REF = "f0.yaml: Model/churn: spec.metrics[0].templateRef: "


@pytest.mark.parametrize(
    ("manifests", "expected"),
    [
        ([model(), template()], []),
        ([model()], [REF + "MetricTemplate auc not found"]),
        # The defect examples/metrictemplate-auc.yaml had with examples/churn-retrain.yaml.
        (
            [model(slices=BY_CHANNEL), template(["model", "version", "region"])],
            [
                REF + "MetricTemplate auc: grouped MetricTemplate needs model, version and the "
                "slice's labels (channel) in groupBy, compared with '='"
            ],
        ),
        ([model(slices=BY_CHANNEL), template(["model", "version", "channel"])], []),
        (
            [
                model(
                    slices=[*BY_CHANNEL, {"name": "eu", "matchLabels": {"region": "eu"}}],
                    vars={"job": "churn"},
                ),
                template(["model", "version", "channel"], variables=[{"name": "job"}]),
            ],
            [
                REF + "MetricTemplate auc: grouped MetricTemplate needs model, version and the "
                "slice's labels (region) in groupBy, compared with '=' (slice eu)"
            ],
        ),
        (
            [model(vars={"jb": "x"}), template(variables=[{"name": "job", "default": "a"}])],
            [REF + "MetricTemplate auc declares no variable jb"],
        ),
        (
            [model(), template(variables=[{"name": "job"}])],
            [REF + "MetricTemplate auc needs a value for variable job"],
        ),
        # A namespace left out is the one `kubectl apply -n` gives: it matches any.
        ([model(namespace="ml"), template()], []),
        ([model(), template(namespace="ml")], []),
        ([model(namespace="ml"), template(namespace="ml")], []),
        (
            [model(namespace="ml"), template(namespace="other")],
            [REF + "MetricTemplate auc not found"],
        ),
        # A broken template: its own finding says why, not the Model's.
        (
            [model(), {**template(), "spec": {"groupBy": ["a"]}}],
            ["f1.yaml: MetricTemplate/auc: spec.query: Required value"],
        ),
    ],
)
def test_the_models_metrics_are_planned_with_the_templates_given(
    manifests: list[dict[str, Any]], expected: list[str]
) -> None:
    assert lines(*manifests) == expected


def test_documents_of_other_kinds_are_skipped_and_a_wrong_version_is_a_finding() -> None:
    other = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    values = {"providers": [{"name": "default"}]}
    beta = {**template(), "apiVersion": "modelloop.dev/v1beta1"}
    assert lines(other, values, "text", beta) == [
        "f3.yaml: MetricTemplate/auc: apiVersion must be modelloop.dev/v1alpha1"
    ]


@pytest.mark.parametrize(
    ("metadata", "shown"), [(None, "(unnamed)"), ({}, "(unnamed)"), ({"name": 5}, "5")]
)
def test_an_object_without_a_name_is_one_finding(metadata: Any, shown: str) -> None:
    nameless = {**model(), "metadata": metadata}
    assert lines(nameless, template()) == [f"f0.yaml: Model/{shown}: metadata.name: Required value"]


def test_a_wrong_type_stops_the_cel_rules_as_on_the_api_server() -> None:
    broken = copy.deepcopy(model())
    broken["spec"]["metrics"][0]["objective"] = {"min": "high", "max": 0.1}
    assert lines(broken, template()) == [
        "f0.yaml: Model/churn: spec.metrics[0].objective.min: Invalid value: must be of type number"
    ]


def test_a_finding_on_the_whole_object_leaves_the_field_out() -> None:
    finding = Finding("a.yaml", "ModelVersion", "m", "", "metadata.name must differ")
    assert finding.line() == "a.yaml: ModelVersion/m: metadata.name must differ"
    assert Finding("a.yaml", "Model", "", "spec", "x").line() == "a.yaml: Model/(unnamed): spec: x"


def test_a_rule_reads_a_field_named_like_a_reserved_word() -> None:
    """The breach rule reads ``for``: plain, or escaped as ``__for__`` for API servers
    before 1.32; both are there, as Kubernetes exposes them."""
    breach = {"for": "5m", "ofLast": {"failures": 1, "evaluations": 2}}
    manifest = model()
    manifest["spec"]["metrics"][0]["breach"] = breach
    found = cel.violations(manifest)
    assert [(v.field, v.message) for v in found] == [
        ("spec.metrics[0].breach", "a breach rule takes either 'for' or 'ofLast', not both")
    ]
