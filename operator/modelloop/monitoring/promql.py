"""PromQL text from structured definitions. Pure.

Slices are label matchers kept as data, so a label value is always rendered as a
quoted PromQL string and can never inject PromQL, whatever quotes, backslashes
or braces it holds. Many sub-queries can be joined into one request: each is
tagged with ``label_replace`` and the results are split apart by the tags.
"""

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..api.metrictemplate import MetricTemplateSpec
from ..api.model import LabelMatcher, Slice, TemplateRef

LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
PLACEHOLDER = re.compile(r"\$([a-zA-Z_][a-zA-Z0-9_]*)")
# What an empty slice expands to, so `x{version="v1", $slice}` stays a valid selector:
# a label no series has equals "" on every series. (`__name__=~".+"` would clash with
# the metric name: Prometheus refuses a name set twice.)
MATCH_ALL = 'modelloop_slice=""'
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


class UnknownPlaceholder(ValueError):
    pass


class MissingVariable(ValueError):
    pass


def quote(value: str) -> str:
    """A double-quoted PromQL string literal (Go escaping) holding exactly ``value``."""
    out = []
    for char in value:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def slice_matchers(s: Slice) -> list[LabelMatcher]:
    # model_construct: the Slice was validated already, and this runs per series per cycle.
    equal = [
        LabelMatcher.model_construct(label=k, op="=", value=v)
        for k, v in sorted((s.match_labels or {}).items())
    ]
    return [*equal, *(s.matchers or [])]


def render_matchers(matchers: Sequence[LabelMatcher]) -> str:
    parts = []
    for m in matchers:
        if not LABEL_NAME.fullmatch(m.label):
            raise ValueError(f"not a Prometheus label name: {m.label!r}")
        parts.append(f"{m.label}{m.op}{quote(m.value)}")
    return ", ".join(parts)


def expand(
    query: str,
    *,
    version: str,
    matchers: Sequence[LabelMatcher],
    window: str,
    model: str,
    namespace: str,
    variables: Mapping[str, str] | None = None,
) -> str:
    """Substitute ``$version``, ``$slice``, ``$window``, ``$model``, ``$namespace`` and
    template variables; an unknown ``$name`` is an error, never left in the query."""
    values = {
        **(variables or {}),
        "version": version,
        "slice": render_matchers(matchers) if matchers else MATCH_ALL,
        "window": window,
        "model": model,
        "namespace": namespace,
    }

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise UnknownPlaceholder(f"unknown placeholder ${name} in query")
        return values[name]

    return PLACEHOLDER.sub(substitute, query)


@dataclass(frozen=True)
class Part:
    """One sub-query of a combined request, and the tag values that find its answer."""

    key: tuple[str, ...]
    query: str


@dataclass(frozen=True)
class Sample:
    labels: dict[str, str]
    value: float


def combine(parts: Sequence[Part], tags: Sequence[str]) -> str:
    """One query answering every part: each tagged with ``label_replace``, joined with ``or``.

    ``or`` drops a right-hand series whose labels equal a left-hand one; the tags make
    every part's label sets distinct. Each part must return an instant vector (wrap a
    scalar in ``vector()``).
    """
    tagged = []
    for part in parts:
        text = f"({part.query})"
        for tag, value in zip(tags, part.key, strict=True):
            text = f'label_replace({text}, {quote(tag)}, {quote(value)}, "", "")'
        tagged.append(text)
    return "\n or ".join(tagged)


def _float(text: str) -> float:
    if text in ("+Inf", "Inf"):
        return math.inf
    if text == "-Inf":
        return -math.inf
    return float(text)


def split(
    result: Sequence[Mapping[str, Any]], tags: Sequence[str]
) -> dict[tuple[str, ...], list[Sample]]:
    """The answer of a combined query, grouped back by each part's tag values."""
    grouped: dict[tuple[str, ...], list[Sample]] = {}
    for item in result:
        labels = dict(item.get("metric") or {})
        key = tuple(labels.pop(tag, "") for tag in tags)
        grouped.setdefault(key, []).append(Sample(labels, _float(str(item["value"][1]))))
    return grouped


def template_variables(spec: MetricTemplateSpec, ref: TemplateRef) -> dict[str, str]:
    """Values of a template's declared variables: the Model's, else the defaults."""
    given = ref.vars or {}
    declared = {v.name for v in spec.variables}
    undeclared = sorted(set(given) - declared)
    if undeclared:
        raise MissingVariable(
            f"MetricTemplate {ref.name} declares no variable {', '.join(undeclared)}"
        )
    values = {}
    for variable in spec.variables:
        value = given.get(variable.name, variable.default)
        if value is None:
            raise MissingVariable(
                f"MetricTemplate {ref.name} needs a value for variable {variable.name}"
            )
        values[variable.name] = value
    return values
