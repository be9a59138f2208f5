"""The manifest corpus in tests/corpus: each file says its expected verdict in its header."""

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from modelloop.api import base
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


@cache
def rule_messages() -> frozenset[str]:
    """Every CEL rule message declared on the models and kinds."""
    messages = {rule.message for kind in KINDS for rule in kind.root_rules}
    pending: list[type[base.ApiModel]] = [k.spec for k in KINDS]
    seen: set[type[base.ApiModel]] = set()
    while pending:
        model = pending.pop()
        if model in seen:
            continue
        seen.add(model)
        messages |= {rule.message for rule in model.cel_rules}
        for info in model.model_fields.values():
            for candidate in _model_types(info.annotation):
                pending.append(candidate)
    return frozenset(messages)


def _model_types(annotation: Any) -> list[type[base.ApiModel]]:
    if isinstance(annotation, type) and issubclass(annotation, base.ApiModel):
        return [annotation]
    return [t for arg in getattr(annotation, "__args__", ()) for t in _model_types(arg)]
