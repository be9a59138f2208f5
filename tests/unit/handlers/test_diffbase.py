"""kopf's diff base is replaced by an empty one: safe only while no handler reads diffs."""

import kopf
from kopf._core.intents.registries import OperatorRegistry

import modelloop.handlers
import modelloop.handlers.notifications  # noqa: F401
from modelloop.handlers.diffbase import NoDiffBase


def test_every_resource_handler_is_an_event_handler() -> None:
    """Change handlers and daemons read the diff NoDiffBase no longer builds."""
    registry = kopf.get_default_registry()
    assert isinstance(registry, OperatorRegistry)
    assert registry._watching.get_all_handlers()  # the handlers are registered here
    assert registry._changing.get_all_handlers() == []
    assert registry._spawning.get_all_handlers() == []


def test_the_essence_is_empty_and_never_stored() -> None:
    storage = NoDiffBase()
    body = kopf.Body({"metadata": {"name": "churn", "labels": {"a": "b"}}, "spec": {"x": 1}})
    assert storage.build(body=body) == {}
    assert storage.fetch(body=body) is None
    patch = kopf.Patch()
    storage.store(body=body, patch=patch, essence=kopf.BodyEssence())
    assert not patch
