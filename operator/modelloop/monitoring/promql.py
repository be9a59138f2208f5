"""PromQL text from structured definitions. Pure.

Slices are label matchers kept as data, so a label value is always rendered as a
quoted PromQL string and can never inject PromQL, whatever quotes, backslashes
or braces it holds. Many sub-queries can be joined into one request: each is
tagged with ``label_replace`` and the results are split apart by the tags.
"""

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..api.metrictemplate import MetricTemplateSpec
from ..api.model import LabelMatcher, Slice, TemplateRef

LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
KUBE_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
OPERATORS = frozenset({"=", "!=", "=~", "!~"})
# `$name`, longest match. A `$` not followed by a name (`$1`, `${g}` in a label_replace
# replacement, `$"` ending a regex) is not a placeholder and is left as it is.
PLACEHOLDER = re.compile(r"\$([a-zA-Z_][a-zA-Z0-9_]*)")
# A grouped MetricTemplate's: regexes of the names of the Models one query serves, and of
# their namespaces, filled when the cycle knows them (plan.py, ``_SharedQuery.request``).
SERVED = frozenset({"models", "namespaces"})
BUILTINS = frozenset({"version", "slice", "window", "model", "namespace", "labelDelay", *SERVED})
# What an empty slice expands to. Checked on Prometheus 2.42: an empty expansion would
# break `x{$slice, version="v"}` (a leading comma does not parse; a trailing one and
# `x{}` do), while a matcher fits any position. A label no series has equals "" on
# every series, so this selects everything. `__name__=~".+"` would also work without a
# metric name, but Prometheus refuses it next to one ("metric name must not be set
# twice"). A bare `{$slice}` with nothing else is refused for an empty slice whatever it
# expands to: a selector needs one matcher that does not match "", else it is every series.
MATCH_ALL = 'modelloop_slice=""'
# The tag scheme: one label holding the part's index; the caller maps indexes to meaning.
TAGS = ("modelloop_part",)
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


class UnknownPlaceholder(ValueError):
    pass


class MissingVariable(ValueError):
    pass


class UnknownVariable(ValueError):
    pass


def quote(value: str) -> str:
    """A double-quoted PromQL string literal (Go escaping) holding exactly ``value``.

    Every character that is not printable (controls, line separators, invisible format
    characters) is escaped, so the literal is one line and reads the same in a log.
    """
    out = []
    for char in value:
        code = ord(char)
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif char.isprintable():
            out.append(char)
        elif 0xD800 <= code <= 0xDFFF:
            raise ValueError(f"a lone surrogate U+{code:04X} is not valid Unicode")
        elif code < 0x80:
            out.append(f"\\x{code:02x}")  # \x is a byte in Go: only for ASCII
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return '"' + "".join(out) + '"'


def slice_matchers(s: Slice) -> list[LabelMatcher]:
    """``matchLabels`` as ``=`` matchers in key order, then ``matchers``."""
    return [*_equal_matchers(tuple(sorted((s.match_labels or {}).items()))), *(s.matchers or [])]


@functools.lru_cache(maxsize=4096)
def _equal_matchers(labels: tuple[tuple[str, str], ...]) -> tuple[LabelMatcher, ...]:
    """Built once per label set: this runs per series per cycle. model_construct: the
    Slice was validated already, and render_matchers checks the label names again. The
    matchers are shared, so nobody may change them."""
    return tuple(LabelMatcher.model_construct(label=k, op="=", value=v) for k, v in labels)


def render_matchers(matchers: Sequence[LabelMatcher]) -> str:
    """``label="value", label2=~"re"``: the inside of a selector's braces."""
    parts = []
    for m in matchers:
        if not LABEL_NAME.fullmatch(m.label):
            raise ValueError(f"not a Prometheus label name: {m.label!r}")
        if m.op not in OPERATORS:
            raise ValueError(f"not a PromQL label matcher operator: {m.op!r}")
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
    label_delay: str | None = None,
    served: Mapping[str, str] | None = None,
) -> str:
    """Substitute ``$version``, ``$slice``, ``$window``, ``$model``, ``$namespace``,
    ``$labelDelay``, template variables and (``served``, a grouped template's)
    ``$models`` and ``$namespaces`` in one pass (an inserted value is never expanded
    again).

    Only ``$slice`` is quoted (its matcher values); the others are inserted verbatim:
    DNS names, a duration, or PromQL fragments the template's author meant. An unknown
    ``$name`` is an error, never left in the query.
    """
    shadowing = sorted(BUILTINS.intersection(variables or {}))
    if shadowing:
        raise ValueError(f"variable ${shadowing[0]} would shadow the built-in placeholder")
    values = {
        **(variables or {}),
        "version": version,
        "slice": render_matchers(matchers) if matchers else MATCH_ALL,
        "window": window,
        "model": model,
        "namespace": namespace,
    }
    if label_delay is not None:
        values["labelDelay"] = label_delay
    values |= served or {}

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "labelDelay" and label_delay is None:
            raise UnknownPlaceholder("$labelDelay needs the metric's labels.delay")
        if name in SERVED and name not in values:
            raise UnknownPlaceholder(
                f"${name} is for MetricTemplates with groupBy (the Models one query serves)"
            )
        if name not in values:
            raise UnknownPlaceholder(f"unknown placeholder ${name} in query")
        return values[name]

    return PLACEHOLDER.sub(substitute, query)


def names_regex(names: Iterable[str]) -> str:
    """A regex matching exactly these Kubernetes names (lowercase letters, digits, '-'
    and '.'), alternatives in order, written as it goes inside a PromQL string: a dot is
    escaped for the regex, and that backslash for the string."""
    unique = sorted(set(names))
    for name in unique:
        if not KUBE_NAME.fullmatch(name):
            raise ValueError(f"not a Kubernetes name: {name!r}")
    return "|".join(name.replace(".", "\\\\.") for name in unique)


@dataclass(frozen=True)
class Part:
    """One sub-query of a combined request, and the tag values that find its answer."""

    key: tuple[str, ...]
    query: str


@dataclass(frozen=True, slots=True)  # one per series of every answer of a cycle
class Sample:
    """One series of an instant vector, without the tag labels."""

    labels: dict[str, str]
    value: float


def combine(parts: Sequence[Part], tags: Sequence[str] = TAGS) -> str:
    """One query answering every part: each tagged with ``label_replace``, joined with ``or``.

    Limits: ``or`` drops a right-hand series whose labels (ignoring the metric name)
    equal a left-hand one; the tags make every part's label sets distinct, so keys must
    be unique. Each part must return an instant vector: a scalar or string cannot be
    tagged and fails the whole request (wrap a scalar in ``vector()``). A tag value that
    is empty removes the label, which ``split`` reads back as "".
    """
    if not parts:
        raise ValueError("no parts to combine")
    for tag in tags:
        if not LABEL_NAME.fullmatch(tag):
            raise ValueError(f"not a Prometheus label name: {tag!r}")
    if len({part.key for part in parts}) < len(parts):
        raise ValueError("parts share a key: their answers could not be told apart")
    tagged = []
    for part in parts:
        # The newline ends a trailing `# comment` in the part before the closing parenthesis.
        text = f"({part.query}\n)"
        for tag, value in zip(tags, part.key, strict=True):
            # The replacement is a regexp template: `$$` keeps a `$` literal.
            replacement = quote(value.replace("$", "$$"))
            text = f'label_replace({text}, {quote(tag)}, {replacement}, "", "")'
        tagged.append(text)
    return "\n or ".join(tagged)


def split(
    result: Sequence[Mapping[str, Any]], tags: Sequence[str] = TAGS
) -> dict[tuple[str, ...], list[Sample]]:
    """The instant vector of a combined query (``data.result``), grouped back by each
    part's tag values. A part that returned no series has no entry. An answer is read
    once: its label dicts become the samples' own, the tags taken out of them, so a
    series costs no copy (at thousands of Models, an answer has hundreds of thousands)."""
    grouped: dict[tuple[str, ...], list[Sample]] = {}
    blanks = ("",) * len(tags)
    for item in result:
        labels = item.get("metric")
        if labels is None:
            labels = {}
        key = tuple(map(labels.pop, tags, blanks))
        found = grouped.get(key)
        if found is None:
            found = grouped[key] = []
        # float() reads Prometheus' "NaN", "+Inf" and "-Inf" as they are.
        found.append(Sample(labels, float(item["value"][1])))
    return grouped


def template_variables(spec: MetricTemplateSpec, ref: TemplateRef) -> dict[str, str]:
    """Values of a template's declared variables: the Model's, else the defaults."""
    given = ref.vars or {}
    undeclared = sorted(set(given) - {v.name for v in spec.variables})
    if undeclared:
        raise UnknownVariable(
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
