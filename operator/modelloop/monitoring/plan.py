"""Which Prometheus requests one evaluation cycle makes, and where each answer goes.

Pure. The cost of a cycle does not grow with slices or versions:

- an inline metric of a Model is one request: its value and sample-count
  queries for every live version and every slice it names, each tagged with a
  ``modelloop_part`` label and joined with ``or``;
- a drift check is one request: current and reference bucket counts for every
  slice, tagged the same way;
- a metric whose ``MetricTemplate`` declares ``groupBy`` labels is shared: one
  request per (provider, template, variables, window) for every Model using it,
  its series picked apart by the ``model``, ``version`` (and ``namespace``)
  labels and the slices' equality matchers.
"""

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, NamedTuple

from ..api.metrictemplate import MetricTemplateSpec
from ..api.model import Drift, LabelMatcher, Metric, ModelSpec, Slice
from ..api.modelversion import DataWindow
from .promql import (
    PLACEHOLDER,
    SERVED,
    TAGS,
    Part,
    combine,
    expand,
    names_regex,
    render_matchers,
    slice_matchers,
    template_variables,
)

PER_MODEL = re.compile(r"\$(?:version|slice|model|namespace)\b")
# A grouped query's $models and $namespaces, kept as they are until its Models are known.
DEFERRED = {name: f"${name}" for name in SERVED}
ALL = Slice(name="all")

ModelKey = tuple[str, str]  # (namespace, name)
Role = Literal["value", "samples", "coverage", "current", "reference"]


class SeriesKey(NamedTuple):
    """One verdict's identity: a metric or drift check, on a slice, for a version. A
    ``shift`` is a drift check's canary against stable (``version`` is the canary's): an
    early signal of the rollout, never a health verdict. A tuple: it keys the dicts of
    every cycle, hundreds of thousands of lookups at thousands of Models, and a tuple
    of strings hashes in C where a dataclass runs its ``__hash__`` in Python."""

    kind: Literal["metric", "drift", "shift"]
    name: str
    slice: str
    version: str


@dataclass(frozen=True)
class Target:
    """One Model as the evaluation sees it."""

    namespace: str
    name: str
    spec: ModelSpec
    versions: tuple[str, ...]  # stable first, then the canary, then early rollbacks pending
    training_window: DataWindow | None = None  # of the stable version, for drift references
    # (metric, slice, version) -> the live versions' offline values, for maxDrop objectives
    validated: Mapping[tuple[str, str, str], float] = field(default_factory=dict)

    @property
    def key(self) -> ModelKey:
        return (self.namespace, self.name)

    def slices(self, names: list[str] | None) -> list[Slice]:
        declared = self.spec.slices or [ALL]
        return [s for s in declared if names is None or s.name in names]


class Selection(NamedTuple):
    """A label filter that picks one Model's series out of a shared (grouped) answer:
    the label names, sorted, and their values, as the answer's index is keyed."""

    labels: tuple[str, ...]
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Slot:
    """Where one series' answers are in its request's: the part (its tag value) that
    answers each role, and in a shared answer the labels that pick the series out."""

    model: ModelKey
    series: SeriesKey
    parts: tuple[tuple[Role, str], ...]
    select: Selection | None = None


@dataclass(frozen=True)
class Request:
    provider: str
    query: str
    slots: tuple[Slot, ...]


@dataclass(frozen=True)
class Problem:
    """A series that cannot be asked for (a bad template, a missing variable, ...)."""

    model: ModelKey
    series: SeriesKey
    reason: str


@dataclass
class Plan:
    requests: list[Request] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def plan_cycle(
    targets: Iterable[Target],
    templates: Mapping[tuple[str, str], MetricTemplateSpec],
    now: datetime,
    memo: "PlanMemo | None" = None,
) -> Plan:
    """All requests of one cycle for ``targets``; ``templates`` is keyed by (namespace, name).
    ``memo`` carries what earlier cycles worked out and can be reused (see PlanMemo)."""
    plan = Plan()
    shared: dict[tuple[str, str], _SharedQuery] = {}
    for target in targets:
        for metric in target.spec.metrics:
            _plan_metric(plan, shared, target, metric, templates, memo)
        for drift in target.spec.drift:
            _plan_drift(plan, target, drift, now)
    for provider_query, group in shared.items():
        plan.requests.append(group.request(provider_query[0]))
    if memo is not None:
        memo.settle()
    return plan


def _series(target: Target, metric: Metric) -> list[tuple[Slice, str, SeriesKey]]:
    return [
        (s, version, SeriesKey("metric", metric.name, s.name, version))
        for version in target.versions
        for s in target.slices(metric.slices)
    ]


def _problems(target: Target, metric: Metric, reason: str) -> list[Problem]:
    """Every series of the metric, unaskable for ``reason``."""
    return [Problem(target.key, key, reason) for _, _, key in _series(target, metric)]


Texts = tuple[str, str | None, str | None]  # a grouped query's value, samples, coverage
# Those three parts' roles: each part is tagged with its role's index here.
SHARED_ROLES: tuple[Role, Role, Role] = ("value", "samples", "coverage")


@dataclass
class _SharedQuery:
    """A grouped template query shared by many Models: its parts are the value, the
    sample count and the label coverage (those asked), tagged by their index in
    SHARED_ROLES. ``fill``: the texts rendered again with ``$models`` and ``$namespaces``,
    when the template uses them, once every Model the query serves is known."""

    texts: Texts
    fill: Callable[[Mapping[str, str]], Texts] | None = None
    slots: list[Slot] = field(default_factory=list)

    def request(self, provider: str) -> Request:
        texts = self.texts
        if self.fill is not None:
            texts = self.fill(
                {
                    "models": names_regex(slot.model[1] for slot in self.slots),
                    "namespaces": names_regex(slot.model[0] for slot in self.slots),
                }
            )
        parts = [Part((str(tag),), query) for tag, query in enumerate(texts) if query is not None]
        return Request(provider, combine(parts, TAGS), tuple(self.slots))


def _coverage_query(metric: Metric, template: MetricTemplateSpec | None) -> str | None:
    """The label-coverage query a metric is judged with: only when it asks for a coverage."""
    if metric.labels is None or metric.labels.min_coverage <= 0:
        return None
    if metric.labels.coverage_query is not None:
        return metric.labels.coverage_query
    return template.coverage_query if template is not None else None


def _label_delay(metric: Metric) -> str | None:
    return str(metric.labels.delay) if metric.labels is not None else None


def _plan_metric(
    plan: Plan,
    shared: dict[tuple[str, str], "_SharedQuery"],
    target: Target,
    metric: Metric,
    templates: Mapping[tuple[str, str], MetricTemplateSpec],
    memo: "PlanMemo | None",
) -> None:
    query, sample_query = metric.query, metric.sample_query
    variables: dict[str, str] = {}
    template = None
    if metric.template_ref is not None:
        template = templates.get((target.namespace, metric.template_ref.name))
        if template is None:
            reason = f"MetricTemplate {metric.template_ref.name} not found"
            plan.problems += _problems(target, metric, reason)
            return
        try:
            variables = template_variables(template, metric.template_ref)
        except ValueError as error:
            plan.problems += _problems(target, metric, str(error))
            return
    coverage_query = _coverage_query(metric, template)
    if metric.labels is not None and metric.labels.min_coverage > 0 and coverage_query is None:
        reason = (
            f"labels.minCoverage is {metric.labels.min_coverage:g} but MetricTemplate "
            f"{metric.template_ref.name if metric.template_ref else ''} has no coverageQuery "
            "and labels.coverageQuery is not set"
        )
        plan.problems += _problems(target, metric, reason)
        return
    if template is not None:
        if template.group_by:
            _plan_grouped(plan, shared, target, metric, template, variables, memo, coverage_query)
            return
        query, sample_query = template.query, template.sample_query
    assert query is not None
    texts = (query, sample_query, coverage_query, tuple(sorted(variables.items())))
    memo_key = (target.versions, metric.name, texts)
    rendered = memo.recall(target, memo_key) if memo is not None else None
    if not isinstance(rendered, Rendered):
        rendered = _render_per_model(target, metric, query, sample_query, coverage_query, variables)
        if memo is not None:
            memo.keep(target, memo_key, rendered)
    if rendered.request is not None:
        plan.requests.append(rendered.request)
    plan.problems += rendered.problems


@dataclass(frozen=True)
class Rendered:
    """A Model's own request for one metric (None: every series had a problem)."""

    request: Request | None
    problems: tuple[Problem, ...]


def _render_per_model(
    target: Target,
    metric: Metric,
    query: str,
    sample_query: str | None,
    coverage_query: str | None,
    variables: Mapping[str, str],
) -> Rendered:
    parts: list[Part] = []
    slots: list[Slot] = []
    problems: list[Problem] = []
    for slice_, version, key in _series(target, metric):

        def render(text: str, slice_: Slice = slice_, version: str = version) -> str:
            return expand(
                text,
                version=version,
                matchers=slice_matchers(slice_),
                window=metric.window,
                model=target.name,
                namespace=target.namespace,
                variables=variables,
                label_delay=_label_delay(metric),
            )

        try:
            rendered: list[tuple[Role, str]] = [("value", render(query))]
            if sample_query is not None:
                rendered.append(("samples", render(sample_query)))
            if coverage_query is not None:
                rendered.append(("coverage", render(coverage_query)))
        except ValueError as error:
            problems.append(Problem(target.key, key, str(error)))
            continue
        slots.append(Slot(target.key, key, _own_parts(parts, rendered)))
    request = None
    if parts:
        request = Request(target.spec.metrics_provider, combine(parts, TAGS), tuple(slots))
    return Rendered(request, tuple(problems))


def _own_parts(parts: list[Part], queries: list[tuple[Role, str]]) -> tuple[tuple[Role, str], ...]:
    """A series' queries added to a Model's own request, each its own part; their tags."""
    tags = []
    for role, query in queries:
        tag = str(len(parts))
        parts.append(Part((tag,), query))
        tags.append((role, tag))
    return tuple(tags)


def _plan_grouped(
    plan: Plan,
    shared: dict[tuple[str, str], "_SharedQuery"],
    target: Target,
    metric: Metric,
    template: MetricTemplateSpec,
    variables: dict[str, str],
    memo: "PlanMemo | None",
    coverage_query: str | None,
) -> None:
    def render(text: str, served: Mapping[str, str] = DEFERRED) -> str:
        per_model = sorted(set(PER_MODEL.findall(text)))
        if per_model:
            raise ValueError(
                f"a MetricTemplate with groupBy serves many Models at once: its queries may not "
                f"use {', '.join(per_model)} (only $window, $labelDelay, $models, $namespaces "
                "and its variables)"
            )
        return expand(
            text,
            version="",
            matchers=[],
            window=metric.window,
            model="",
            namespace="",
            variables=variables,
            label_delay=_label_delay(metric),
            served=served,
        )

    asked = (template.query, template.sample_query, coverage_query)
    try:
        value, samples, coverage = (render(t) if t else None for t in asked)
    except ValueError as error:
        plan.problems += _problems(target, metric, str(error))
        return
    assert value is not None  # a template's query is required

    def fill(served: Mapping[str, str]) -> Texts:
        value, samples, coverage = (render(t, served) if t else None for t in asked)
        assert value is not None
        return value, samples, coverage

    uses_served = any(SERVED & set(PLACEHOLDER.findall(t)) for t in asked if t)
    group = shared.setdefault(
        (target.spec.metrics_provider, "\n".join((value, samples or "", coverage or ""))),
        _SharedQuery((value, samples, coverage), fill if uses_served else None),
    )
    memo_key = (target.versions, metric.name, value, samples, coverage, tuple(template.group_by))
    remembered = memo.recall(target, memo_key) if memo is not None else None
    if not isinstance(remembered, tuple):
        remembered = _grouped_slots(
            target, metric, template, samples is not None, coverage is not None
        )
        if memo is not None:
            memo.keep(target, memo_key, remembered)
    group.slots += remembered[0]
    plan.problems += remembered[1]


def _grouped_slots(
    target: Target,
    metric: Metric,
    template: MetricTemplateSpec,
    with_samples: bool,
    with_coverage: bool,
) -> tuple[list[Slot], list[Problem]]:
    """Where a Model's series are in a shared answer: its labels, by the template's groupBy."""
    slots: list[Slot] = []
    problems: list[Problem] = []
    identity = {"model": target.name, "namespace": target.namespace}
    by_slice = {s.name: slice_matchers(s) for s in target.slices(metric.slices)}
    names: dict[tuple[str, ...], tuple[str, ...]] = {}
    asked = (True, with_samples, with_coverage)
    roles = tuple(
        (role, str(tag))
        for tag, (role, on) in enumerate(zip(SHARED_ROLES, asked, strict=True))
        if on
    )
    for slice_, version, key in _series(target, metric):
        matchers = by_slice[slice_.name]
        unreadable = [m.label for m in matchers if m.op != "=" or m.label not in template.group_by]
        if unreadable or "model" not in template.group_by or "version" not in template.group_by:
            reason = (
                f"grouped MetricTemplate needs model, version and the slice's labels "
                f"({', '.join(unreadable) or 'none'}) in groupBy, compared with '='"
            )
            problems.append(Problem(target.key, key, reason))
            continue
        select = {
            k: v for k, v in (identity | {"version": version}).items() if k in template.group_by
        }
        select |= {m.label: m.value for m in matchers}
        labels = tuple(sorted(select))
        labels = names.setdefault(labels, labels)  # one tuple for the series that share it
        selection = Selection(labels, tuple(select[name] for name in labels))
        slots.append(Slot(target.key, key, roles, selection))
    return slots, problems


Remembered = tuple[list[Slot], list[Problem]] | Rendered


class PlanMemo:
    """What earlier cycles worked out for each Model: its slots in grouped answers, and
    its own requests, rendered.

    Both change only with its spec (the evaluation keeps one parsed spec per generation:
    the same object), its live versions or the template's texts; working them out again
    for 1000 Models x 50 series every cycle would cost more than the rest of the plan.
    Entries are kept per Model, replaced each time it is planned, and dropped by
    ``forget``."""

    def __init__(self) -> None:
        self._models: dict[ModelKey, tuple[ModelSpec, dict[Any, Remembered]]] = {}
        self._planning: dict[ModelKey, tuple[ModelSpec, dict[Any, Remembered]]] = {}

    def recall(self, target: Target, key: Any) -> Remembered | None:
        known = self._models.get(target.key)
        if known is None or known[0] is not target.spec:
            return None
        found = known[1].get(key)
        if found is not None:
            self.keep(target, key, found)
        return found

    def keep(self, target: Target, key: Any, value: Remembered) -> None:
        self._planning.setdefault(target.key, (target.spec, {}))[1][key] = value

    def settle(self) -> None:
        """End of a plan: what the Models planned used replaces what they had."""
        self._models.update(self._planning)
        self._planning = {}

    def forget(self, model: ModelKey) -> None:
        self._models.pop(model, None)


def bucket_query(
    drift: Drift,
    slice_: Slice,
    window: str,
    modifier: str = "",
    version: LabelMatcher | None = None,
) -> str:
    """Per-``le`` observation counts of a histogram over ``window`` (cumulative buckets)."""
    matchers: list[LabelMatcher] = [*(drift.matchers or []), *slice_matchers(slice_)]
    if version is not None:
        matchers.append(version)
    selector = f"{drift.histogram}_bucket"
    if matchers:
        selector += "{" + render_matchers(matchers) + "}"
    return f"sum by (le) (increase({selector}[{window}]{modifier}))"


def _plan_drift(plan: Plan, target: Target, drift: Drift, now: datetime) -> None:
    if not target.versions:
        return
    version = target.versions[0]  # drift judges what is served: the stable version
    reference = _reference(drift, target, now)
    parts: list[Part] = []
    slots: list[Slot] = []
    for slice_ in target.slices(drift.slices):
        key = SeriesKey("drift", drift.name, slice_.name, version)
        if reference is None:
            plan.problems.append(
                Problem(target.key, key, f"the stable version {version} has no training window")
            )
            continue
        window, modifier = reference
        histograms: list[tuple[Role, str]] = [
            ("current", bucket_query(drift, slice_, drift.window)),
            ("reference", bucket_query(drift, slice_, window, modifier)),
        ]
        slots.append(Slot(target.key, key, _own_parts(parts, histograms)))
    if drift.canary is not None and len(target.versions) > 1:
        _plan_shift(target, drift, parts, slots)
    if parts:
        plan.requests.append(
            Request(target.spec.metrics_provider, combine(parts, TAGS), tuple(slots))
        )


def _plan_shift(target: Target, drift: Drift, parts: list[Part], slots: list[Slot]) -> None:
    """The canary's histogram (current) against stable's (reference), same window."""
    assert drift.canary is not None
    stable, canary = target.versions[0], target.versions[1]
    label = drift.canary.version_label
    for slice_ in target.slices(drift.slices):
        key = SeriesKey("shift", drift.name, slice_.name, canary)
        current, reference = (LabelMatcher(label=label, value=v) for v in (canary, stable))
        histograms: list[tuple[Role, str]] = [
            ("current", bucket_query(drift, slice_, drift.window, version=current)),
            ("reference", bucket_query(drift, slice_, drift.window, version=reference)),
        ]
        slots.append(Slot(target.key, key, _own_parts(parts, histograms)))


def _reference(drift: Drift, target: Target, now: datetime) -> tuple[str, str] | None:
    """(range, modifier) of the reference window, or None when it cannot be known."""
    if drift.reference.offset is not None:
        return drift.window, f" offset {drift.reference.offset}"
    window = target.training_window
    if window is None or window.end <= window.start:
        return None
    seconds = int((window.end - window.start).total_seconds())
    end = min(window.end, now)
    return f"{seconds}s", f" @ {end.timestamp():.3f}"
