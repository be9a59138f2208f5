"""Every CEL rule of every CRD selects fields as the oldest supported API server reads them.

A property whose name is a CEL reserved word (``for``) is selected as ``__for__``;
one with ``.``, ``-`` or ``/`` in its name as ``__dot__``, ``__dash__``,
``__slash__`` (and ``__`` as ``__underscores__``). API servers from 1.32 on also
take a reserved word unescaped, 1.31 refuses the whole CRD; every version takes
the escaped form. The escaping is Kubernetes' (k8s.io/apiserver/pkg/cel/escaping.go,
the same in 1.31 and 1.36).
"""

import re
from typing import Any

import pytest

from modelloop.api.crdgen import crd
from modelloop.api.resources import KINDS

# celReservedSymbols in k8s.io/apiserver/pkg/cel/escaping.go.
RESERVED = frozenset(
    (
        "true",
        "false",
        "null",
        "in",
        "as",
        "break",
        "const",
        "continue",
        "else",
        "for",
        "function",
        "if",
        "import",
        "let",
        "loop",
        "package",
        "namespace",
        "return",
        "var",
        "void",
        "while",
    )
)
_CHARACTERS = {"__": "__underscores__", ".": "__dot__", "-": "__dash__", "/": "__slash__"}
_STRING = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
# `.name` not followed by `(`: a field selection, not a method call such as .matches(...).
_SELECTION = re.compile(r"\.\s*([A-Za-z_][A-Za-z0-9_]*)\b(?!\s*\()")
_ESCAPE = re.compile(r"__([a-z]+)__")


def cel_name(name: str) -> str:
    """How a CEL rule selects the property ``name`` (Kubernetes' Escape)."""
    if name in RESERVED:
        return f"__{name}__"
    return re.sub(r"__|[./-]", lambda m: _CHARACTERS[m.group()], name)


def unescaped_selections(rule: str, properties: set[str]) -> list[str]:
    """The properties that ``rule`` selects under a name the API server may not know.

    A reserved word after a dot, a property needing escaping written as is, or an
    escape sequence that names no property of the schema (a misspelt escape).
    """
    code = _STRING.sub("''", rule)  # a regex or a message in a string literal selects nothing
    wrong = [name for name in _SELECTION.findall(code) if name in RESERVED]
    for name in sorted(properties):
        unescaped = re.compile(r"\.\s*" + re.escape(name) + r"(?![A-Za-z0-9_])")
        if name not in RESERVED and cel_name(name) != name and unescaped.search(code):
            wrong.append(name)
    escaped = {cel_name(name): name for name in properties}
    wrong += [
        name for name in _SELECTION.findall(code) if _ESCAPE.search(name) and name not in escaped
    ]
    return wrong


def _rules_and_properties(
    node: dict[str, Any], path: str, found: list[tuple[str, str]], properties: set[str]
) -> None:
    for rule in node.get("x-kubernetes-validations") or []:
        found.append((path or "<root>", rule["rule"]))
    for name, child in (node.get("properties") or {}).items():
        properties.add(name)
        _rules_and_properties(child, f"{path}.{name}" if path else name, found, properties)
    for key, suffix in (("items", "[]"), ("additionalProperties", "{}")):
        if isinstance(node.get(key), dict):
            _rules_and_properties(node[key], path + suffix, found, properties)


def _crd_rules() -> list[tuple[str, str, str, set[str]]]:
    cases = []
    for kind in KINDS:
        schema = crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        found: list[tuple[str, str]] = []
        properties: set[str] = set()
        _rules_and_properties(schema, "", found, properties)
        cases += [(kind.kind, path, rule, properties) for path, rule in found]
    return cases


CRD_RULES = _crd_rules()


def test_every_kind_has_rules_to_check() -> None:
    assert {kind for kind, *_ in CRD_RULES} == {"Model", "ModelVersion"}
    assert len(CRD_RULES) >= 50


@pytest.mark.parametrize(
    ("kind", "path", "rule", "properties"), CRD_RULES, ids=[f"{k}:{p}" for k, p, *_ in CRD_RULES]
)
def test_crd_rules_select_fields_escaped(
    kind: str, path: str, rule: str, properties: set[str]
) -> None:
    wrong = unescaped_selections(rule, properties)
    assert not wrong, f"{kind} {path}: rule {rule!r} selects {wrong} unescaped; write " + ", ".join(
        cel_name(name) for name in wrong
    )


def test_the_breach_rule_selects_for_escaped() -> None:
    """The case that kept the models CRD off 1.31."""
    rules = [rule for kind, path, rule, _ in CRD_RULES if "ofLast" in rule and "for" in rule]
    assert rules == ["!(has(self.__for__) && has(self.ofLast))"]


@pytest.mark.parametrize(
    ("name", "escaped"),
    [
        ("for", "__for__"),
        ("namespace", "__namespace__"),
        ("forever", "forever"),
        ("ofLast", "ofLast"),
        ("a.b", "a__dot__b"),
        ("x-y", "x__dash__y"),
        ("a/b", "a__slash__b"),
        ("a__b", "a__underscores__b"),
        ("a_b", "a_b"),
    ],
)
def test_cel_name(name: str, escaped: str) -> None:
    assert cel_name(name) == escaped


@pytest.mark.parametrize(
    ("rule", "properties", "wrong"),
    [
        ("!(has(self.for) && has(self.ofLast))", {"for", "ofLast"}, ["for"]),
        ("!(has(self.__for__) && has(self.ofLast))", {"for", "ofLast"}, []),
        ("self.spec.namespace == 'a'", {"spec", "namespace"}, ["namespace"]),
        ("self.x-y > 0", {"x-y"}, ["x-y"]),
        ("self.x__dash__y > 0", {"x-y"}, []),
        ("has(self.a.b)", {"a.b"}, ["a.b"]),
        ("has(self.a__dot__b)", {"a.b"}, []),
        ("has(self.__fro__)", {"for"}, ["__fro__"]),  # a misspelt escape
        ("self.name.matches('^a.for$')", {"name"}, []),  # inside a string literal
        ("self.steps.all(s, s.weight > 0)", {"steps", "weight"}, []),  # method calls
        ("self.weight >= 0.5", {"weight"}, []),
        ("self.min_value > 0", {"min_value"}, []),
    ],
)
def test_unescaped_selections(rule: str, properties: set[str], wrong: list[str]) -> None:
    assert unescaped_selections(rule, properties) == wrong
