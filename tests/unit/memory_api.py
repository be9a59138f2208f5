"""An API server in memory, for tests of what a pass writes and in which order."""

import copy
from typing import Any

from modelloop.api.resources import MODEL_VERSIONS
from modelloop.kube.rest import Kube, KubeError, Obj, Objs, Resource, versions_of_model


class Api(Kube):
    """An API server in memory: objects by (plural, name), merge patches guarded by
    resourceVersion, and every write recorded as (verb, plural, subresource)."""

    def __init__(self, *objects: tuple[Resource, Obj]) -> None:
        super().__init__(None)  # type: ignore[arg-type]
        self.objects: dict[tuple[str, str], Obj] = {}
        self.writes: list[tuple[str, str, str]] = []
        self.refused: set[str] = set()  # plurals whose creates are refused (422)
        self.revision = 1
        for resource, body in objects:
            self._store(resource, copy.deepcopy(body))

    def _store(self, resource: Resource, body: Obj) -> Obj:
        self.revision += 1
        body["metadata"]["resourceVersion"] = str(self.revision)
        self.objects[resource.plural, body["metadata"]["name"]] = body
        return copy.deepcopy(body)

    def get(self, resource: Resource, namespace: str | None, name: str) -> Obj | None:
        found = self.objects.get((resource.plural, name))
        return copy.deepcopy(found) if found is not None else None

    def list(
        self, resource: Resource, namespace: str | None, label_selector: str | None = None
    ) -> list[Obj]:
        wanted = dict(t.split("=", 1) for t in (label_selector or "").split(",") if "=" in t)
        return [
            copy.deepcopy(o)
            for (plural, _), o in self.objects.items()
            if plural == resource.plural
            and all((o["metadata"].get("labels") or {}).get(k) == v for k, v in wanted.items())
        ]

    def versions_of(self, namespace: str, model: str, fresh: bool = False) -> Objs:
        return versions_of_model(self.list(MODEL_VERSIONS, namespace), model)

    def create(self, resource: Resource, namespace: str | None, body: Obj) -> Obj:
        self.writes.append(("create", resource.plural, ""))
        if resource.plural in self.refused:
            raise KubeError(422, "Invalid", f"{resource.plural} refused")
        if (resource.plural, body["metadata"]["name"]) in self.objects:
            raise KubeError(409, "AlreadyExists", body["metadata"]["name"])
        return self._store(resource, copy.deepcopy(body))

    def apply(self, resource: Resource, namespace: str | None, body: Obj) -> Obj:
        """Server-side apply, as a whole replacement of the fields sent."""
        self.writes.append(("apply", resource.plural, ""))
        held = self.objects.get((resource.plural, body["metadata"]["name"])) or {}
        return self._store(resource, _merged(held, copy.deepcopy(body)))

    def merge_patch(
        self, resource: Resource, namespace: str | None, name: str, patch: Obj, sub: str = ""
    ) -> Obj:
        self.writes.append(("patch", resource.plural, sub))
        held = self.objects[resource.plural, name]
        guard = (patch.get("metadata") or {}).get("resourceVersion")
        if guard is not None and guard != held["metadata"]["resourceVersion"]:
            raise KubeError(409, "Conflict", name)
        return self._store(resource, _merged(held, patch))

    def delete(self, resource: Resource, namespace: str | None, name: str) -> bool:
        self.writes.append(("delete", resource.plural, ""))
        return self.objects.pop((resource.plural, name), None) is not None


def _merged(held: Any, patch: Any) -> Any:
    if not isinstance(patch, dict) or not isinstance(held, dict):
        return copy.deepcopy(patch)
    merged = dict(held)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = _merged(held.get(key), value)
    return merged
