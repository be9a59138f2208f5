"""Parsed Model specs cached by uid and generation."""

from typing import Any

import pytest

from modelloop.api.model import ModelSpec
from modelloop.monitoring.specs import SpecCache

Obj = dict[str, Any]
TEMPLATE = {"spec": {"containers": [{"name": "s", "image": "s:1"}]}}


def body(replicas: int = 1, uid: str | None = "u1", generation: int | None = 1) -> Obj:
    meta: Obj = {"namespace": "ns", "name": "fraud"}
    if uid is not None:
        meta["uid"] = uid
    if generation is not None:
        meta["generation"] = generation
    return {"metadata": meta, "spec": {"serving": {"replicas": replicas, "template": TEMPLATE}}}


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[Obj]:
    """The specs parsed from here on (an equal spec parsed again may come back as the very
    object held already: ``api/sharing.py``)."""
    parsed: list[Obj] = []
    validate = ModelSpec.model_validate

    def counted(spec: Obj) -> ModelSpec:
        parsed.append(spec)
        return validate(spec)

    monkeypatch.setattr(ModelSpec, "model_validate", counted)
    return parsed


@pytest.mark.parametrize(
    ("later", "replicas"),
    [
        (body(2), 1),  # the same generation: the spec parsed before
        (body(2, generation=2), 2),  # a new generation: parsed again
        (body(2, uid="u2"), 2),  # made again under the same name: parsed again
    ],
)
def test_a_spec_is_parsed_once_per_uid_and_generation(
    later: Obj, replicas: int, parses: list[Obj]
) -> None:
    cache = SpecCache()
    first = cache.parsed(body())
    spec = cache.parsed(later)
    assert first is not None
    assert spec is not None
    assert spec.serving.replicas == replicas
    assert len(parses) == (1 if replicas == 1 else 2)


@pytest.mark.parametrize("unstored", [body(uid=None), body(generation=None)])
def test_a_body_never_stored_is_parsed_every_time(unstored: Obj, parses: list[Obj]) -> None:
    cache = SpecCache()
    assert cache.parsed(unstored) == cache.parsed(unstored)
    assert len(parses) == 2
    assert len(cache) == 0


def test_an_invalid_spec_is_none_until_its_generation_changes() -> None:
    cache = SpecCache()
    invalid = body()
    invalid["spec"]["serving"]["replicas"] = -1
    assert cache.parsed(invalid) is None
    assert cache.parsed(invalid) is None
    assert len(cache) == 1
    fixed = cache.parsed(body(generation=2))
    assert fixed is not None
    assert fixed.serving.replicas == 1


def test_a_forgotten_model_is_parsed_again(parses: list[Obj]) -> None:
    cache = SpecCache()
    first = cache.parsed(body())
    cache.forget(("ns", "fraud"))
    assert len(cache) == 0
    assert cache.parsed(body()) == first
    assert len(parses) == 2


def test_models_of_equal_specs_hold_one() -> None:
    cache = SpecCache()
    other = body(uid="u2")
    other["metadata"]["name"] = "churn"
    assert cache.parsed(body()) is cache.parsed(other)
    assert len(cache) == 2
