"""The CRDs' CEL rules (``x-kubernetes-validations``) evaluated offline, as the API server
evaluates them when an object is created.

The schema is the one ``make crds`` writes, generated here from the same pydantic
models. The object is first read as the API server reads it: null fields dropped, the
schema's defaults filled in, each value typed by its schema (``integer`` is a CEL int,
``number`` a double). Each rule then runs with ``self`` bound to the value at its node,
on every node where a value is present, and a rule that is not true is reported at the
node's path plus the rule's ``fieldPath``.

The evaluator is cel-python (``celpy``) with the Kubernetes library functions the rules
use: ``find``/``findAll`` (regex library) and ``isSorted``/``sum`` (lists library);
``matches`` is CEL's own, on RE2 as in Kubernetes; an ordering compares an int with a
double, as Kubernetes allows. A rule the evaluator cannot run is reported with the
evaluator's error, never silently passed: so is a Kubernetes library function no rule
used yet, and a rule the API server would refuse when the CRD is installed (cel-python
does not type-check). Not evaluated offline: transition rules (those reading
``oldSelf``, e.g. "ModelVersion spec is immutable"), which judge an update against the
stored object, and the API server's CEL cost budgets.
"""

import copy
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache, lru_cache
from itertools import pairwise
from typing import Any

import celpy
import re2  # type: ignore[import-untyped]
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError, base_functions

from ..api.crdgen import crd
from ..api.resources import KINDS_BY_NAME

Schema = dict[str, Any]

# CEL reserved words: Kubernetes exposes a property named like one as __word__.
_RESERVED = frozenset(
    {
        *("true", "false", "null", "in", "as", "break", "const", "continue", "else", "for"),
        *("function", "if", "import", "let", "loop", "package", "namespace", "return"),
        *("var", "void", "while"),
    }
)
_IDENTIFIER = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


@dataclass(frozen=True)
class Violation:
    """A rule that does not hold: the field as the API server names it (``spec.metrics[0]``;
    empty for a rule on the whole object) and the rule's message."""

    field: str
    message: str


def violations(manifest: dict[str, Any]) -> list[Violation]:
    """Every CEL rule of the manifest's kind that fails on it (the kind must be one of
    ModelLoop's)."""
    schema = _schema(str(manifest["kind"]))
    found: list[Violation] = []
    for path, node, value in _nodes(schema, stored(manifest), ""):
        rules = node.get("x-kubernetes-validations", [])
        typed = json.dumps(_typed(node, value), sort_keys=True) if rules else ""
        for rule in rules:
            verdict = _verdict(rule["rule"], typed)
            if verdict is not True:
                message = rule["message"] if verdict is False else f"{rule['message']} ({verdict})"
                field = path + rule.get("fieldPath", "")
                found.append(Violation(field.removeprefix("."), message))
    return found


@cache
def _schema(kind: str) -> Schema:
    schema: Schema = crd(KINDS_BY_NAME[kind])["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def stored(manifest: dict[str, Any]) -> dict[str, Any]:
    """The object as the API server stores it on create (the kind must be one of
    ModelLoop's): nulls dropped, the schema's defaults filled in."""
    value: dict[str, Any] = _defaulted(_schema(str(manifest["kind"])), manifest)
    return value


def _defaulted(schema: Schema, value: Any) -> Any:
    """The value as the API server stores it: nulls dropped, the schema's defaults filled in
    (recursively, defaults themselves included)."""
    if isinstance(value, dict):
        properties: dict[str, Schema] = schema.get("properties", {})
        out = {k: v for k, v in value.items() if v is not None}
        for name, child in properties.items():
            if name not in out and "default" in child:
                out[name] = copy.deepcopy(child["default"])
        return {k: _defaulted(_child(schema, k) or {}, v) for k, v in out.items()}
    if isinstance(value, list):
        return [_defaulted(schema.get("items", {}), v) for v in value if v is not None]
    return value


def _child(schema: Schema, name: str) -> Schema | None:
    """The schema of an object's property, or of a map's value."""
    extra = schema.get("additionalProperties")
    found: Schema | None = schema.get("properties", {}).get(name)
    return found if found is not None else extra if isinstance(extra, dict) else None


def _nodes(schema: Schema, value: Any, path: str) -> Iterator[tuple[str, Schema, Any]]:
    """(path, schema, value) of every node that has a value, parents first."""
    yield path, schema, value
    if isinstance(value, dict):
        for name, child in value.items():
            node = _child(schema, name)
            if node is not None:
                yield from _nodes(node, child, f"{path}.{name}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            yield from _nodes(schema["items"], item, f"{path}[{index}]")


def _typed(schema: Schema, value: Any) -> Any:
    """A JSON value as CEL sees it under its schema: an ``integer`` is an int and a
    ``number`` a double, whatever the manifest wrote; an object's property named like a CEL
    reserved word is also there escaped (``for`` as ``__for__``), as Kubernetes exposes it.
    Strings stay strings (no rule reads a date-time field: Kubernetes would give it as a
    timestamp)."""
    kind = schema.get("type")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if kind == "integer":
            return int(value)
        return float(value) if kind == "number" else value
    if isinstance(value, list):
        return [_typed(schema.get("items", {}), v) for v in value]
    if isinstance(value, dict):
        out = {name: _typed(_child(schema, name) or {}, v) for name, v in value.items()}
        for name in schema.get("properties", {}).keys() & value.keys():
            out[_escaped(name)] = out[name]
        return out
    if isinstance(value, datetime | date):
        return value.isoformat().replace("+00:00", "Z")
    return value


def _escaped(name: str) -> str:
    """A property's name in CEL as Kubernetes escapes it (``for`` -> ``__for__``)."""
    if name in _RESERVED:
        return f"__{name}__"
    if _IDENTIFIER.match(name):
        return name
    for plain, escape in (("__", "__underscores__"), (".", "__dot__"), ("-", "__dash__")):
        name = name.replace(plain, escape)
    return name.replace("/", "__slash__")


# ------------------------------------------------------------------ the Kubernetes libraries


def _find(text: Any, pattern: Any) -> Any:
    match = re2.search(str(pattern), str(text))
    return celtypes.StringType(match.group(0) if match else "")


def _find_all(text: Any, pattern: Any) -> Any:
    return celtypes.ListType(
        [celtypes.StringType(m.group(0)) for m in re2.finditer(str(pattern), str(text))]
    )


def _is_sorted(values: Any) -> Any:
    return celtypes.BoolType(all(a <= b for a, b in pairwise(values)))


def _sum(values: Any) -> Any:
    total: Any = celtypes.IntType(0)  # Kubernetes: the sum of an empty list is 0
    for index, value in enumerate(values):
        total = value if index == 0 else total + value
    return total


_NUMBERS = (celtypes.IntType, celtypes.UintType, celtypes.DoubleType)


def _across_numbers(operator: str) -> Callable[[Any, Any], Any]:
    """An ordering that also compares an int with a double by value, as Kubernetes' CEL
    does (cross-type numeric comparisons); cel-python refuses the mix. Equality across
    types is not given: the API server refuses such a rule when the CRD is installed
    (``minCoverage == 0`` on a double), and here it is reported as not evaluable."""
    typed = base_functions[operator]
    compare = {
        "_<_": float.__lt__,
        "_<=_": float.__le__,
        "_>_": float.__gt__,
        "_>=_": float.__ge__,
    }[operator]

    def across(left: Any, right: Any) -> Any:
        mixed = type(left) is not type(right)
        if mixed and isinstance(left, _NUMBERS) and isinstance(right, _NUMBERS):
            return celtypes.BoolType(compare(float(left), float(right)))
        return typed(left, right)

    return across


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "find": _find,
    "findAll": _find_all,
    "isSorted": _is_sorted,
    "sum": _sum,
    **{op: _across_numbers(op) for op in ("_<_", "_<=_", "_>_", "_>=_")},
}
_ENVIRONMENT = celpy.Environment()


@lru_cache(maxsize=8192)
def _verdict(rule: str, typed: str) -> bool | str:
    """The rule on a value (its typed JSON): True or False, or the evaluator's error; True
    for a transition rule (nothing to compare with on create). Memoised: values such as
    the defaulted durations repeat across objects, and the interpreter takes milliseconds
    per rule."""
    program = _program(rule)
    return True if program is None else _run(program, json.loads(typed))


@cache
def _program(rule: str) -> Any:
    """The compiled rule, or None for a transition rule (it reads ``oldSelf``)."""
    tree = _ENVIRONMENT.compile(rule)
    if any(token == "oldSelf" for token in tree.scan_values(lambda t: isinstance(t, str))):
        return None
    return _ENVIRONMENT.program(tree, functions=_FUNCTIONS)


def _run(program: Any, value: Any) -> bool | str:
    """True or False, or the evaluator's error."""
    try:
        result = program.evaluate({"self": json_to_cel(value)})
    except (ValueError, TypeError) as error:  # a value CEL cannot hold (an int beyond 64 bits)
        return f"cannot be evaluated: {error}"
    except CELEvalError as error:
        return f"cannot be evaluated: {error.args[0] if error.args else error}"
    if isinstance(result, CELEvalError):
        return f"cannot be evaluated: {result.args[0] if result.args else result}"
    if isinstance(result, celtypes.BoolType):
        return bool(result)
    return f"not a boolean: {result!r}"
