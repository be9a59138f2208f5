"""The manifest corpus in tests/corpus: each file says its expected verdict in its header.

An invalid case names the message (a part both the API server's and pydantic's
error carry) and the field (as the API server writes its path, e.g.
``spec.metrics[0].window``). ``rules()`` lists every rule the models declare,
with the field it judges, so a test can require a case for each.
"""

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin

import yaml
from pydantic.fields import FieldInfo

from modelloop.api import base
from modelloop.api.durations import Within
from modelloop.api.resources import KINDS

CORPUS_DIR = Path(__file__).parents[1] / "corpus"
EXAMPLES_DIR = Path(__file__).parents[2] / "examples"


@dataclass(frozen=True)
class CorpusCase:
    name: str
    manifest: dict[str, Any]
    valid: bool
    message: str | None
    field: str | None


def _header(text: str, key: str) -> str | None:
    prefix = f"# {key}: "
    return next(
        (line[len(prefix) :] for line in text.splitlines() if line.startswith(prefix)), None
    )


def load_corpus() -> list[CorpusCase]:
    cases = []
    for path in sorted(CORPUS_DIR.glob("*.yaml")):
        text = path.read_text()
        expect = _header(text, "expect")
        assert expect in ("valid", "invalid"), f"{path.name}: header '# expect:' missing"
        cases.append(
            CorpusCase(
                path.stem,
                yaml.safe_load(text),
                expect == "valid",
                _header(text, "message"),
                _header(text, "field"),
            )
        )
    for path in sorted(EXAMPLES_DIR.glob("*.yaml")):
        cases.append(
            CorpusCase(f"example-{path.stem}", yaml.safe_load(path.read_text()), True, None, None)
        )
    return cases


CORPUS = load_corpus()


@dataclass(frozen=True)
class Rule:
    """A rule and the field it judges, as a path with list indices left out
    (``spec.metrics[].window``); None for rules on the whole object (metadata.name)."""

    path: str | None
    message: str
    bounds: tuple[int, int] | None = None  # of a duration, in milliseconds


def schema_path(field: str) -> str:
    """``spec.metrics[0].slices`` -> ``spec.metrics[].slices``."""
    return re.sub(r"\[[0-9]+\]", "[]", field)


@cache
def rules() -> frozenset[Rule]:
    """Every rule declared on the models and kinds: CEL rules of objects and fields, and
    the uniqueness of list maps and sets."""
    found = {Rule(None, rule.message) for kind in KINDS for rule in kind.root_rules}
    pending: list[tuple[str, type[base.ApiModel]]] = [("spec", k.spec) for k in KINDS]
    seen: set[tuple[str, type[base.ApiModel]]] = set()
    while pending:
        path, model = pending.pop()
        if (path, model) in seen:
            continue
        seen.add((path, model))
        found |= {Rule(path + (rule.field_path or ""), rule.message) for rule in model.cel_rules}
        for name, info in model.model_fields.items():
            field_path = f"{path}.{info.alias or name}"
            found |= {
                Rule(
                    field_path, r.message, (r.lowest, r.highest) if isinstance(r, Within) else None
                )
                for r in _field_rules(info)
            }
            extra = info.json_schema_extra
            if isinstance(extra, dict) and "x-kubernetes-list-type" in extra:
                found.add(Rule(field_path + "[]", "Duplicate value"))
            for suffix, child in _model_types(info.annotation, info.metadata):
                pending.append((field_path + suffix, child))
    return frozenset(found)


def _field_rules(info: FieldInfo) -> list[base.FieldRule]:
    found = [m for m in info.metadata if isinstance(m, base.FieldRule)]
    for arg in get_args(info.annotation):  # Optional[Annotated[...]]
        if get_origin(arg) is Annotated:
            found += [m for m in arg.__metadata__ if isinstance(m, base.FieldRule)]
    return found


def _model_types(annotation: Any, metadata: list[Any]) -> list[tuple[str, type[base.ApiModel]]]:
    """The models below a field: (path suffix, model); ``[]`` for the items of a list."""
    found: list[tuple[str, type[base.ApiModel]]] = [
        ("", m.shape) for m in metadata if isinstance(m, base.Embedded)
    ]
    if isinstance(annotation, type) and issubclass(annotation, base.ApiModel):
        return [*found, ("", annotation)]
    suffix = "[]" if get_origin(annotation) is list else ""
    for arg in get_args(annotation):
        extra = list(getattr(arg, "__metadata__", ()))
        found += [(suffix + s, m) for s, m in _model_types(arg, extra)]
    return found


def value_at(manifest: dict[str, Any], field: str) -> Any:
    """The value at an API path such as ``spec.metrics[0].window``."""
    value: Any = manifest
    for name, index in re.findall(r"([^.\[\]]+)|\[([0-9]+)\]", field):
        value = value[name] if name else value[int(index)]
    return value
