"""Watch caches indexed by Model, and a client that reads from them.

A reconcile reads one Model's children: its ModelVersions, Deployments, Services,
training Jobs and pods. Listing them from the API server costs a request each and
grows with the namespace; the operator's own watches already carry every one of
them. ``ObjectCache`` keeps the latest body of each watched object (an informer's
store), indexed by the Model it belongs to, and ``CachedKube`` answers ``get`` and
``list`` from it: a reconcile whose world did not change makes no API read.

Staleness is bounded the way client-go's mutation cache bounds it: every object
ModelLoop writes goes into the cache from the API server's answer, and a watch
event older (by resourceVersion) than what the cache holds is ignored, so a
reconcile never reads back a state older than its own last write. Reads of a
name the cache does not hold go to the API server (an object made by someone
else, not yet seen, or outside the watches' label selectors); lists are served
only once the cache was filled by a list of its own (``sync``).
"""

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from kubernetes import client

from ..api.resources import MODEL_VERSIONS, MODELS
from ..api.vocabulary import LABEL_MODEL
from .ratelimit import WriteLimiter
from .rest import Kube, KubeError, Obj, Objs, Resource

Key = tuple[str, str]
log = logging.getLogger(__name__)


def model_of(resource: Resource, body: Obj) -> str | None:
    """The Model an object belongs to: a ModelVersion names it in its spec, a Model is
    its own, anything else carries the model label."""
    if resource == MODEL_VERSIONS:
        model: str | None = (body.get("spec") or {}).get("model")
        return model
    if resource == MODELS:
        name: str = body["metadata"]["name"]
        return name
    labels = body["metadata"].get("labels") or {}
    labelled: str | None = labels.get(LABEL_MODEL)
    return labelled


def _version(body: Obj) -> int:
    """resourceVersion as an integer (etcd's revision); 0 when it is not one."""
    try:
        return int(body["metadata"].get("resourceVersion") or 0)
    except ValueError:
        return 0


def _copy(value: Any) -> Any:
    """A copy of a decoded JSON value (dicts, lists, scalars): about 3x faster than
    ``copy.deepcopy``, which handles every Python object and keeps a memo of each."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _slim(body: Obj) -> Obj:
    """The object without ``metadata.managedFields`` (a third or more of a child's bytes;
    ModelLoop never reads them: its writes are server-side applies and merge patches)."""
    meta = body["metadata"]
    if "managedFields" not in meta:
        return dict(body)
    return {**body, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}


class _Store:
    """One resource's objects by (namespace, name), and their names by (namespace, model)."""

    def __init__(self, resource: Resource, objects: dict[Key, Obj]) -> None:
        self.resource = resource
        self.objects = objects  # shared with the evaluation's WatchCache for its kinds
        self.by_model: dict[Key, set[str]] = {}
        self.synced = False
        for key, body in objects.items():
            self._index(key, body)

    def put(self, body: Obj) -> None:
        meta = body["metadata"]
        key = (meta.get("namespace") or "", meta["name"])
        held = self.objects.get(key)
        if held is not None and _version(held) > _version(body):
            return  # an old event: the cache already holds a later write
        if held is not None:
            self._unindex(key, held)
        self.objects[key] = body
        self._index(key, body)

    def drop(self, namespace: str, name: str) -> None:
        held = self.objects.pop((namespace, name), None)
        if held is not None:
            self._unindex((namespace, name), held)

    def replace(self, items: Iterable[Obj], listed_at: int) -> None:
        """A full list: objects it lacks are gone, unless written after it."""
        seen = set()
        for body in items:
            meta = body["metadata"]
            seen.add((meta.get("namespace") or "", meta["name"]))
            self.put(body)
        for key, held in list(self.objects.items()):
            if key not in seen and _version(held) <= listed_at:
                self.drop(*key)
        self.synced = True

    def _index(self, key: Key, body: Obj) -> None:
        model = model_of(self.resource, body)
        if model is not None:
            self.by_model.setdefault((key[0], model), set()).add(key[1])

    def _unindex(self, key: Key, body: Obj) -> None:
        model = model_of(self.resource, body)
        names = self.by_model.get((key[0], model or ""))
        if names is not None:
            names.discard(key[1])
            if not names:
                del self.by_model[(key[0], model or "")]


class ObjectCache:
    """The operator's watch caches, one store per resource; safe across threads."""

    def __init__(self, shared: dict[Resource, dict[Key, Obj]] | None = None) -> None:
        self._lock = threading.Lock()
        self._stores: dict[Resource, _Store] = {
            resource: _Store(resource, objects) for resource, objects in (shared or {}).items()
        }

    def watches(self, resource: Resource) -> bool:
        return resource in self._stores

    def _store(self, resource: Resource) -> _Store:
        store = self._stores.get(resource)
        if store is None:
            store = self._stores[resource] = _Store(resource, {})
        return store

    def remember(self, resource: Resource, event: str | None, body: Obj) -> None:
        """A watch event (or a write's answer): DELETED drops, anything else stores."""
        meta = body["metadata"]
        with self._lock:
            store = self._store(resource)
            if event == "DELETED":
                store.drop(meta.get("namespace") or "", meta["name"])
            else:
                store.put(_slim(body))

    def replace(self, resource: Resource, items: Iterable[Obj], listed_at: int) -> None:
        with self._lock:
            self._store(resource).replace((_slim(i) for i in items), listed_at)

    def synced(self, resource: Resource) -> bool:
        with self._lock:
            store = self._stores.get(resource)
            return store is not None and store.synced

    def get(self, resource: Resource, namespace: str, name: str) -> Obj | None:
        with self._lock:
            store = self._stores.get(resource)
            found = None if store is None else store.objects.get((namespace, name))
            return _copy(found) if found is not None else None

    def held(self, resource: Resource) -> list[tuple[Key, Obj]]:
        """Every object of a kind, as held: not copies, for reading only."""
        with self._lock:
            store = self._stores.get(resource)
            return [] if store is None else list(store.objects.items())

    def versions_of_model(
        self, resource: Resource, namespace: str, model: str
    ) -> tuple[tuple[str, str], ...]:
        """(name, resourceVersion) of a Model's objects of one kind: what changed, cheaply."""
        with self._lock:
            store = self._stores.get(resource)
            if store is None:
                return ()
            names = sorted(store.by_model.get((namespace, model), ()))
            return tuple(
                (n, str(store.objects[(namespace, n)]["metadata"].get("resourceVersion")))
                for n in names
            )

    def of_model(self, resource: Resource, namespace: str, model: str) -> list[Obj]:
        with self._lock:
            store = self._stores[resource]
            names = sorted(store.by_model.get((namespace, model), ()))
            return [_copy(store.objects[(namespace, n)]) for n in names]


def _matches(selector: str) -> Callable[[Obj], bool]:
    """Equality (``k=v``), existence (``k``) and absence (``!k``) terms, joined by "and"."""
    terms = [t.strip() for t in selector.split(",") if t.strip()]

    def matches(body: Obj) -> bool:
        labels = body["metadata"].get("labels") or {}
        for term in terms:
            if term.startswith("!"):
                if term[1:] in labels:
                    return False
            elif "=" in term:
                key, _, value = term.partition("=")
                if labels.get(key.rstrip("=")) != value.lstrip("="):
                    return False
            elif term not in labels:
                return False
        return True

    return matches


def _model_in(selector: str) -> str | None:
    for term in selector.split(","):
        key, sep, value = term.strip().partition("=")
        if sep and key == LABEL_MODEL:
            return value
    return None


class CachedKube(Kube):
    """A Kube whose reads of watched kinds come from the cache and whose writes of them
    go into it; everything else is the API server's."""

    def __init__(
        self,
        api_client: client.ApiClient,
        cache: ObjectCache,
        timeout: float = 30.0,
        limiter: WriteLimiter | None = None,
    ):
        super().__init__(api_client, timeout)
        self.cache = cache
        self.limiter = limiter
        self._live = Kube(api_client, timeout)

    @classmethod
    def over(
        cls, kube: Kube, cache: ObjectCache, limiter: WriteLimiter | None = None
    ) -> "CachedKube":
        cached = cls(kube.api_client, cache, kube.timeout, limiter)
        cached.on_request = kube.on_request
        cached._live.on_request = kube.on_request
        return cached

    @property
    def live(self) -> Kube:
        return self._live

    def sync(self, listed: Iterable[tuple[Resource, str | None, str | None]]) -> None:
        """Fill the caches with one list of each (kind, label selector, namespace or None
        for all namespaces): until then their lists are the API server's. A kind the API
        server does not serve, or does not let the operator list, is left to it."""
        found: dict[Resource, tuple[list[Obj], int]] = {}
        for resource, selector, namespace in listed:
            try:
                items, at = self._list_whole(resource, selector, namespace)
            except KubeError as error:
                if error.status == 403:  # RBAC narrower than the chart's: reads stay live
                    log.warning("not caching %s: %s", resource.plural, error.message)
                    continue
                if error.not_found:
                    continue
                raise
            before, oldest = found.get(resource, ([], at))
            found[resource] = (before + items, min(oldest, at))
        for resource, (items, at) in found.items():
            self.cache.replace(resource, items, at)

    def _list_whole(
        self, resource: Resource, selector: str | None, namespace: str | None
    ) -> tuple[list[Obj], int]:
        self._count("list", resource)
        query = {"labelSelector": selector} if selector else None
        listed = self.request("GET", resource.path(namespace), query=query)
        kind = (listed.get("kind") or "").removesuffix("List")
        for item in listed["items"]:  # a list's items omit them; a watch event's have them
            item.setdefault("apiVersion", listed.get("apiVersion"))
            item.setdefault("kind", kind)
        return listed["items"], _version(listed)

    def get(self, resource: Resource, namespace: str | None, name: str) -> Obj | None:
        if namespace and self.cache.watches(resource):
            found = self.cache.get(resource, namespace, name)
            if found is not None:
                return found
        return super().get(resource, namespace, name)

    def list(
        self, resource: Resource, namespace: str | None, label_selector: str | None = None
    ) -> list[Obj]:
        model = _model_in(label_selector or "")
        if namespace and model is not None and self.cache.synced(resource):
            matches = _matches(label_selector or "")
            return [o for o in self.cache.of_model(resource, namespace, model) if matches(o)]
        return super().list(resource, namespace, label_selector)

    def versions_of(self, namespace: str, model: str) -> Objs:
        if self.cache.synced(MODEL_VERSIONS):
            return self.cache.of_model(MODEL_VERSIONS, namespace, model)
        return super().versions_of(namespace, model)

    def urgent(self) -> AbstractContextManager[None]:
        """Writes of this thread inside the block pass the write limit (rollbacks)."""
        return nullcontext() if self.limiter is None else self.limiter.urgent()

    def _limit(self) -> None:
        if self.limiter is not None:
            self.limiter.acquire()

    def delete(self, resource: Resource, namespace: str | None, name: str) -> bool:
        self._limit()
        return super().delete(resource, namespace, name)

    def _written(self, resource: Resource, body: Obj) -> Obj:
        if self.cache.watches(resource) and body.get("metadata", {}).get("name"):
            self.cache.remember(resource, None, body)
        return body

    def create(self, resource: Resource, namespace: str | None, body: Obj) -> Obj:
        self._limit()
        return self._written(resource, super().create(resource, namespace, body))

    def apply(self, resource: Resource, namespace: str | None, body: Obj) -> Obj:
        self._limit()
        return self._written(resource, super().apply(resource, namespace, body))

    def merge_patch(
        self, resource: Resource, namespace: str | None, name: str, patch: Obj, sub: str = ""
    ) -> Obj:
        self._limit()
        return self._written(resource, super().merge_patch(resource, namespace, name, patch, sub))

    def json_patch(
        self, resource: Resource, namespace: str | None, name: str, ops: Sequence[Obj]
    ) -> Obj:
        self._limit()
        return self._written(resource, super().json_patch(resource, namespace, name, ops))
