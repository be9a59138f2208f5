"""Parsed Model specs, one parse per spec: by uid and generation.

Parsing a Model's spec (pydantic, with its CEL rules) costs about 0.25 ms, and the
evaluation and the reconciles read it on every pass — several times per evaluation
interval for a Model rolling a canary. ``metadata.generation`` changes with every change
of the spec (and only then), and the uid tells a Model apart from one deleted and made
again under its name, so the pair identifies the spec parsed.

One cache serves the whole process (``SPECS``), so a Model's spec is held once whichever
loop parsed it, and its parts equal to another Model's are held once too
(``api/sharing.py``: 19 KiB per Model at ``make bench-scale``'s fleet, under 8 shared).
A body without a uid or a generation (one built in memory, never stored) is parsed every
time. The cached specs are frozen pydantic models: shared
between threads, read only.
"""

from pydantic import ValidationError

from ..api.model import ModelSpec
from ..api.sharing import Shared
from ..kube.rest import Obj

ModelKey = tuple[str, str]  # (namespace, name)


class SpecCache:
    def __init__(self) -> None:
        # key -> ((uid, generation), the spec; None when invalid)
        self._specs: dict[ModelKey, tuple[tuple[object, object], ModelSpec | None]] = {}
        self._shared = Shared()

    def parsed(self, body: Obj) -> ModelSpec | None:
        """The Model's spec; None when it is invalid (``ModelSpec.model_validate`` says
        why: the caller that reports it parses it again)."""
        meta = body["metadata"]
        key = (meta.get("namespace") or "", meta["name"])
        identity = (meta.get("uid"), meta.get("generation"))
        cached = self._specs.get(key)
        if cached is not None and cached[0] == identity:
            return cached[1]
        try:
            spec: ModelSpec | None = self._shared.of(
                ModelSpec.model_validate(body.get("spec") or {})
            )
        except ValidationError:
            spec = None
        if None not in identity:
            self._specs[key] = (identity, spec)
        return spec

    def forget(self, key: ModelKey) -> None:
        self._specs.pop(key, None)

    def __len__(self) -> int:
        return len(self._specs)


SPECS = SpecCache()
