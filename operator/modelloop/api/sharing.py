"""Equal parts of parsed specs held once.

A fleet's Models are mostly written from a few templates (a Helm chart, a Kustomize
base): the same metrics, objectives, slices, rollout and retraining policy, and every
default the API fills in. Parsed one by one, each Model holds its own copy of each:
about 19 KiB per Model at ``make bench-scale``'s fleet, most of it equal to its
neighbours'. ``Shared.of`` returns a parsed value whose frozen sub-models are the
instances already held for an equal value, so a part written once in a template is held
once in the process.

Only frozen pydantic models are shared (they cannot change); the lists and dicts that
hold them are rebuilt around the shared ones and stay each Model's own. Held instances
are referenced weakly: a part no spec uses any more is let go.
"""

import hashlib
import json
import threading
import weakref
from collections.abc import Hashable
from typing import Any, TypeVar

from pydantic import BaseModel

T = TypeVar("T")


class Shared:
    """A table of the frozen sub-models held, by type and value (thread-safe)."""

    def __init__(self) -> None:
        self._held: weakref.WeakValueDictionary[Hashable, BaseModel] = weakref.WeakValueDictionary()
        self._lock = threading.Lock()

    def of(self, value: T) -> T:
        """``value`` (a parsed spec), its frozen sub-models replaced by equal ones held
        already; those not held yet are held from now on."""
        with self._lock:
            shared: T = self._share(value)
            return shared

    def __len__(self) -> int:
        return len(self._held)

    def _share(self, value: Any) -> Any:
        if isinstance(value, BaseModel):
            return self._model(value)
        if isinstance(value, list | tuple):
            items = [self._share(v) for v in value]
            if all(new is old for new, old in zip(items, value, strict=True)):
                return value
            return type(value)(items)
        if isinstance(value, dict):
            pairs = {k: self._share(v) for k, v in value.items()}
            return value if all(pairs[k] is v for k, v in value.items()) else pairs
        return value

    def _model(self, model: BaseModel) -> BaseModel:
        if not model.model_config.get("frozen"):
            return model
        updates = {}
        for name in type(model).model_fields:
            old = getattr(model, name)
            new = self._share(old)
            if new is not old:
                updates[name] = new
        if updates:
            model = model.model_copy(update=updates)
        extra = model.__pydantic_extra__
        key = (
            type(model),
            tuple(_identity(getattr(model, name)) for name in type(model).model_fields),
            _identity(extra) if extra else None,
        )
        held = self._held.get(key)
        if held is not None:
            return held
        self._held[key] = model
        return model


def _identity(value: Any) -> Hashable:
    """What tells ``value`` apart from an unequal one. Its sub-models are the held ones,
    so their identity is their ``id`` (the held instance lives as long as its key)."""
    if isinstance(value, BaseModel):
        if value.model_config.get("frozen"):
            return ("model", id(value))
        return _digest(value.model_dump_json())
    if isinstance(value, list | tuple):
        return (type(value).__name__, tuple(_identity(v) for v in value))
    try:
        hash(value)
    except TypeError:  # dicts and the like: by their JSON
        return _digest(json.dumps(value, sort_keys=True, default=repr))
    return (type(value), value)


def _digest(text: str) -> Hashable:
    return ("json", hashlib.blake2b(text.encode(), digest_size=16).digest())
