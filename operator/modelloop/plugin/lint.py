"""``kubectl modelloop lint``: ModelLoop manifests checked offline, each on its own and
all together. Pure: documents in, findings out.

Each Model, ModelVersion and MetricTemplate is checked as the API server would check it
on create: by the pydantic types the CRDs are generated from (strict, as the operator
parses it) and by the CRDs' CEL rules, evaluated here (``cel``). Both name the field as
the API server does; a rule both report is reported once. As the API server does, the
CEL rules are not run on an object with a wrong type or an unsupported value.

Then what no API server can check, across every document given: each Model's metrics
are planned by the operator's own evaluation planner against the MetricTemplates in the
documents, so a ``templateRef`` to a template not among them, a variable the template
does not declare or one it needs and gets no value for, and a grouped template whose
``groupBy`` cannot pick out the Model's slices are all reported on the Model's
``templateRef``. A template that is not in the documents is an error, not a warning: the
operator never evaluates such a metric. Pass the files that hold the templates too.

Documents of other API groups, and YAML that is no Kubernetes object, are skipped.
"""

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from ..api.manifests import InvalidManifest, _describe, validate_manifest
from ..api.metrictemplate import MetricTemplateSpec
from ..api.model import ModelSpec
from ..api.resources import KINDS_BY_NAME
from ..api.vocabulary import API_VERSION, GROUP
from ..monitoring.plan import Target, plan_cycle
from . import cel

# The planner's clock only places drift reference windows, which lint does not judge.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FIELD = re.compile(r"^((?:spec|metadata)(?:\.[^ .\[\]:]+|\[[0-9]+\])*): (.*)$", re.S)
_UNKNOWN = re.compile(r'^unknown field "(.+)"$')


@dataclass(frozen=True)
class Document:
    """One YAML document and the file it came from (as the user named it)."""

    file: str
    manifest: Any


@dataclass(frozen=True)
class Finding:
    """What is wrong, where: the field as the API server names it (``spec.metrics[0]``),
    empty for a rule on the whole object (its message names the field)."""

    file: str
    kind: str
    name: str
    field: str
    message: str

    def line(self) -> str:
        where = f"{self.field}: " if self.field else ""
        return f"{self.file}: {self.kind}/{self.name or '(unnamed)'}: {where}{self.message}"


def lint(documents: Iterable[Document]) -> list[Finding]:
    """Every finding in the documents, in their order: each object's own, then the Models'
    metrics that cannot be evaluated with the templates given."""
    findings: list[Finding] = []
    models: list[tuple[Document, ModelSpec]] = []
    templates: dict[tuple[str, str], MetricTemplateSpec] = {}
    broken_templates: set[tuple[str, str]] = set()
    for document in documents:
        manifest = document.manifest
        if not _is_modelloop(manifest):
            continue
        own = [_finding(document, field, message) for field, message in _check(manifest)]
        findings += own
        kind, meta = manifest.get("kind"), manifest.get("metadata") or {}
        key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        if kind == "MetricTemplate":
            if own:
                broken_templates.add(key)
            else:
                templates[key] = MetricTemplateSpec.model_validate(cel.stored(manifest)["spec"])
        elif kind == "Model" and not own:
            models.append((document, ModelSpec.model_validate(cel.stored(manifest)["spec"])))
    for document, spec in models:
        findings += _cross_checks(document, spec, templates, broken_templates)
    return findings


def _is_modelloop(manifest: Any) -> bool:
    return isinstance(manifest, dict) and str(manifest.get("apiVersion", "")).startswith(
        f"{GROUP}/"
    )


def _finding(document: Document, field: str, message: str) -> Finding:
    meta = document.manifest.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    return Finding(
        document.file, str(document.manifest.get("kind")), str(name or ""), field, message
    )


def _check(manifest: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, message) of everything the API server would refuse in one object."""
    meta = manifest.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
        return [("metadata.name", "Required value")]  # kubectl refuses it before sending
    found, blocking = _pydantic(manifest)
    if blocking or manifest.get("apiVersion") != API_VERSION:
        return found
    if manifest.get("kind") not in KINDS_BY_NAME or not isinstance(manifest.get("spec"), dict):
        return found
    for violation in cel.violations(manifest):
        if (violation.field, violation.message) not in found:
            found.append((violation.field, violation.message))
    return found


def _pydantic(manifest: dict[str, Any]) -> tuple[list[tuple[str, str]], bool]:
    """The operator's own validation: its findings, and whether one is a wrong type or an
    unsupported value (the API server then runs no CEL rule)."""
    try:
        validate_manifest(manifest)
    except InvalidManifest as error:
        cause = error.__cause__
        texts = (
            [_describe(e) for e in cause.errors()]
            if isinstance(cause, ValidationError)
            else [str(error)]
        )
        found = [_split(text) for text in texts]
        blocking = any(
            "must be of type" in m or m.startswith("Unsupported value") for _, m in found
        )
        return found, blocking
    return [], False


def _split(text: str) -> tuple[str, str]:
    """``spec.x[0].y: message`` -> (field, message)."""
    unknown = _UNKNOWN.match(text)
    if unknown:
        return unknown.group(1), "unknown field"
    field = _FIELD.match(text)
    return (field.group(1), field.group(2)) if field else ("", text)


def _cross_checks(
    document: Document,
    spec: ModelSpec,
    templates: dict[tuple[str, str], MetricTemplateSpec],
    broken: set[tuple[str, str]],
) -> list[Finding]:
    """The Model's metrics the operator could not ask Prometheus for, planned as it plans
    them. A namespace left out (``kubectl apply -n``) matches any."""
    meta = document.manifest["metadata"]
    namespace, name = str(meta.get("namespace") or ""), str(meta["name"])
    seen = {
        (namespace, t): s
        for (ns, t), s in templates.items()
        if ns in ("", namespace) or not namespace
    }
    target = Target(namespace, name, spec, (f"{name}-lint",))
    plan = plan_cycle([target], seen, _EPOCH)
    slices: dict[tuple[str, str], list[str]] = defaultdict(list)
    for problem in plan.problems:
        if problem.series.kind == "metric":
            slices[(problem.series.name, problem.reason)].append(problem.series.slice)
    findings = []
    index = {metric.name: i for i, metric in enumerate(spec.metrics)}
    for (metric_name, reason), failing in slices.items():
        metric = spec.metrics[index[metric_name]]
        ref = metric.template_ref
        if ref is not None and any(
            t == ref.name and ns in ("", namespace) for ns, t in broken
        ):  # the template's own findings say why
            continue
        field = f"spec.metrics[{index[metric_name]}]" + (".templateRef" if ref else "")
        every = [s.name for s in target.slices(metric.slices)]
        where = "" if failing == every else f" (slice {', '.join(failing)})"
        message = reason
        if ref is not None and f"MetricTemplate {ref.name}" not in reason:
            message = f"MetricTemplate {ref.name}: {reason}"
        findings.append(_finding(document, field, f"{message}{where}"))
    return findings


def render(findings: Sequence[Finding]) -> str:
    return "\n".join(finding.line() for finding in findings)
