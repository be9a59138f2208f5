"""Equal parts of parsed specs are held once, and sharing changes no spec's value."""

import copy
import gc
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, ConfigDict

from modelloop.api.model import ModelSpec
from modelloop.api.sharing import Shared

EXAMPLES = Path(__file__).parents[3] / "examples"


def example_specs() -> list[dict[str, Any]]:
    """The spec of every Model in the examples."""
    return [
        doc["spec"]
        for path in sorted(EXAMPLES.rglob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc and doc.get("kind") == "Model"
    ]


def parsed(spec: dict[str, Any]) -> ModelSpec:
    return ModelSpec.model_validate(spec)


@pytest.mark.parametrize("spec", example_specs())
def test_a_shared_spec_equals_its_parse(spec: dict[str, Any]) -> None:
    shared = Shared()
    first, second = shared.of(parsed(spec)), shared.of(parsed(copy.deepcopy(spec)))
    assert first == parsed(spec)
    assert second is first  # an equal spec: the one held


def test_two_models_share_their_equal_parts_and_keep_their_own() -> None:
    spec = next(s for s in example_specs() if s.get("retraining") and s.get("slices"))
    other = copy.deepcopy(spec)
    other["slices"] = [*spec["slices"][1:], {"name": "extra", "matchLabels": {"x": "y"}}]
    shared = Shared()
    a, b = shared.of(parsed(spec)), shared.of(parsed(other))
    assert a.metrics[0] is b.metrics[0]
    assert a.retraining is b.retraining
    assert a.slices[1] is b.slices[0]  # the same slice, at another place
    assert a.slices is not b.slices
    assert b.slices[-1].name == "extra"
    assert (a, b) == (parsed(spec), parsed(other))


class Number(BaseModel):
    model_config = ConfigDict(frozen=True)
    value: bool | int | float


class Numbers(BaseModel):
    model_config = ConfigDict(frozen=True)
    items: list[Number]


def test_unequal_values_of_equal_hash_stay_apart() -> None:
    """1, 1.0 and True are equal and hash alike, yet each parse keeps its own."""
    shared = Shared()
    values = [shared.of(Numbers(items=[Number(value=v)])) for v in (1, 1.0, True, 1)]
    assert [type(n.items[0].value) for n in values] == [int, float, bool, int]
    assert values[3] is values[0]


def test_parts_no_spec_uses_are_let_go() -> None:
    shared = Shared()
    held = [shared.of(parsed(s)) for s in example_specs()]
    assert len(shared) > 0
    del held
    gc.collect()
    assert len(shared) == 0
