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
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from sys import intern
from typing import Any, TypeVar

from kubernetes import client

from ..api.resources import METRIC_TEMPLATES, MODEL_VERSIONS, MODELS
from ..api.vocabulary import LABEL_MODEL, LABEL_SHARD
from .ratelimit import WriteLimiter
from .rest import Kube, KubeError, Obj, Objs, Resource, revision

Key = tuple[str, str]
T = TypeVar("T")
Listed = tuple[list[Obj], int]  # a list's items, and its resourceVersion
log = logging.getLogger(__name__)
UNOWNED = (MODELS, METRIC_TEMPLATES)  # kinds that are no one Model's children


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


def _later(body: Obj, than: int) -> bool:
    """Whether ``body`` is a later state than resourceVersion ``than`` (one without a
    version is)."""
    return not than >= revision(body) > 0


def _copy(value: Any) -> Any:
    """A copy of a decoded JSON value (dicts, lists, scalars): about 3x faster than
    ``copy.deepcopy``, which handles every Python object and keeps a memo of each."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


# Strings up to this long are shared between the objects held (``sys.intern``): statuses,
# reasons, kinds, timestamps of the same second. Longer ones are mostly unique.
SHARED_STRING_LENGTH = 24
# A list whose continue token expired starts over this many times at most.
LIST_ATTEMPTS = 3


def _compact(value: Any) -> Any:
    """A copy of a decoded JSON value whose keys and short strings are shared with every
    other object held. Each decoded body has its own copy of every key ("apiVersion",
    "lastTransitionTime", ...): ``make bench-scale`` at 1000 Models measured 55 MiB of
    cached Models, ModelVersions, Deployments and Services, 29 MiB compacted."""
    if isinstance(value, dict):
        return {intern(k): _compact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_compact(v) for v in value]
    if isinstance(value, str) and len(value) <= SHARED_STRING_LENGTH:
        return intern(value)
    return value


def _slim(body: Obj) -> Obj:
    """The object as held: without ``metadata.managedFields`` (a third or more of a
    child's bytes; ModelLoop never reads them: its writes are server-side applies and
    merge patches), compacted, and shared with no one (the caller's body is its own)."""
    meta = body["metadata"]
    if "managedFields" in meta:
        body = {**body, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
    held: Obj = _compact(body)
    return held


class _Store:
    """One resource's objects by (namespace, name), and their names by (namespace, model)."""

    def __init__(self, resource: Resource, objects: dict[Key, Obj]) -> None:
        self.resource = resource
        self.objects = objects  # shared with the evaluation's WatchCache for its kinds
        self.by_model: dict[Key, set[str]] = {}
        # Deletions the watch told, with their resourceVersions, until a list newer than
        # them ends: a list (or a write's answer) that read the object before it went must
        # not bring it back; a newer list no longer holds the object.
        self.deleted: dict[Key, int] = {}
        self.synced = False
        for key, body in objects.items():
            self._index(key, body)

    def put(self, body: Obj) -> bool:
        """Store the object unless the cache holds it already, or a later state of it;
        whether it stored."""
        meta = body["metadata"]
        key = (meta.get("namespace") or "", meta["name"])
        held = self.objects.get(key)
        if held is not None and not _later(body, revision(held)):
            return False  # an old event, or the echo of a write the cache holds already
        gone_at = self.deleted.get(key)
        if gone_at is not None:
            # A state at the very revision of a DELETED is no deletion's: the object left
            # one watch's selector there (relabelled) and is another's now (see `leaves`).
            if not _later(body, gone_at - 1):
                return False  # a state from before the object was deleted
            del self.deleted[key]  # made again since, or only relabelled
        if held is not None:
            self._unindex(key, held)
        self.objects[key] = body
        self._index(key, body)
        return True

    def drop(self, namespace: str, name: str) -> None:
        held = self.objects.pop((namespace, name), None)
        if held is not None:
            self._unindex((namespace, name), held)

    def leaves(self, namespace: str, name: str, at: int) -> bool:
        """Whether a watch's DELETED at resourceVersion ``at`` tells nothing of what is held:
        a held state as late as it, or later. A deletion is the newest revision of its
        object; but a watch with a label selector also says DELETED when an object stops
        matching it, at the revision of the relabelling, while another watch of this
        instance (or the relabelling write's own answer) may have brought that state."""
        held = self.objects.get((namespace, name))
        return held is not None and revision(held) >= at > 0

    def deleted_at(self, namespace: str, name: str, at: int) -> None:
        """The object was deleted at resourceVersion ``at`` (a watch's DELETED)."""
        self.drop(namespace, name)
        if at > 0:
            self.deleted[(namespace, name)] = max(at, self.deleted.get((namespace, name), 0))

    def drop_model(self, namespace: str, model: str, listed_at: int | None = None) -> list[Obj]:
        """Drop a Model's objects (only those as old as ``listed_at``, if given); those that
        went."""
        dropped = []
        for name in list(self.by_model.get((namespace, model), ())):
            held = self.objects[(namespace, name)]
            if listed_at is None or revision(held) <= listed_at:
                self.drop(namespace, name)
                dropped.append(held)
        return dropped

    def put_listed(self, items: Iterable[Obj], slim: Callable[[Obj], Obj]) -> set[Key]:
        """Part of a full list: each object stored (as ``slim`` makes it) unless the cache
        holds it already or a later state of it, so an unchanged object costs no copy;
        the keys listed."""
        seen = set()
        for body in items:
            meta = body["metadata"]
            key = (meta.get("namespace") or "", meta["name"])
            seen.add(key)
            held = self.objects.get(key)
            if held is None or _later(body, revision(held)):
                self.put(slim(body))
        return seen

    def drop_unlisted(
        self, seen: set[Key], listed_at: int, selected: Callable[[Obj], bool]
    ) -> None:
        """The end of a full list: objects it lacks are gone, unless written after it or
        outside its selector (a moved Model's child still labelled for its old shard: held
        until its Model's reconcile relabels it)."""
        for key, held in list(self.objects.items()):
            if key not in seen and revision(held) <= listed_at and selected(held):
                self.drop(*key)
        self.deleted = {key: at for key, at in self.deleted.items() if at > listed_at}
        self.synced = True

    def replace_model(self, namespace: str, model: str, listed: Listed) -> None:
        """A list of one Model's objects: those it lacks are gone, unless written after."""
        items, listed_at = listed
        for name in list(self.by_model.get((namespace, model), ())):
            held = self.objects[(namespace, name)]
            if revision(held) <= listed_at:
                self.drop(namespace, name)
        for body in items:
            self.put(body)

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
    """The operator's watch caches, one store per resource; safe across threads.

    ``scoped``: the Models are a shard's (a server-side selector), but the children's
    watches carry every shard's. A full list (``evict_foreign``), and between lists
    children whose Model has not arrived for a resync period (``evict_orphans``), tell
    which Models are another shard's: their children are dropped and are not stored
    again, so a shard holds its own Models' objects only. A Model that moves here is
    ``adopt``-ed: its children listed from the API server before it is held at all.

    ``placed``: the shard label value of the ModelVersions this instance places (its
    shard's name). A dropped ModelVersion that carries it is misplaced — labelled for
    this shard, of a Model this shard does not hold — and is kept for ``take_misplaced``.
    """

    def __init__(
        self,
        shared: dict[Resource, dict[Key, Obj]] | None = None,
        *,
        scoped: bool = False,
        placed: str | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._stores: dict[Resource, _Store] = {
            resource: _Store(resource, objects) for resource, objects in (shared or {}).items()
        }
        self.scoped = scoped
        self.placed = placed
        self._foreign: set[Key] = set()  # (namespace, Model) of the other shards' Models
        self._orphans: set[Key] = set()  # Models whose children are held, but not they
        self._misplaced: dict[Key, Obj] = {}  # ModelVersions by (namespace, name)

    def watches(self, resource: Resource) -> bool:
        return resource in self._stores

    def _store(self, resource: Resource) -> _Store:
        store = self._stores.get(resource)
        if store is None:
            store = self._stores[resource] = _Store(resource, {})
        return store

    def remember(self, resource: Resource, event: str | None, body: Obj) -> bool:
        """A watch event (or a write's answer): DELETED drops, anything else stores.
        False when it told the cache nothing new: an old event, or the echo of a write
        whose answer the cache holds (the pass that wrote it read its own result)."""
        meta = body["metadata"]
        with self._lock:
            store = self._store(resource)
            if event == "DELETED":
                namespace, at = meta.get("namespace") or "", revision(body)
                if store.leaves(namespace, meta["name"], at):
                    return False
                store.deleted_at(namespace, meta["name"], at)
                return True
            if resource == MODELS:  # held from now on (a standby's: its first list repairs)
                self._foreign.discard((meta.get("namespace") or "", meta["name"]))
            elif resource not in UNOWNED and self._is_foreign(meta, model_of(resource, body)):
                return False
            return store.put(_slim(body))

    def _is_foreign(self, meta: Obj, model: str | None) -> bool:
        return model is not None and (meta.get("namespace") or "", model) in self._foreign

    def foreign(self, namespace: str, model: str) -> bool:
        """Whether a Model is known as another shard's (its children are not held)."""
        with self._lock:
            return (namespace, model) in self._foreign

    def child_kinds(self) -> list[Resource]:
        with self._lock:
            return [r for r, store in self._stores.items() if r not in UNOWNED and store.synced]

    def evict_foreign(self, resource: Resource, listed_at: int) -> set[Key]:
        """After a full list of a child kind (the Models listed before): drop its objects,
        as old as ``listed_at`` or older, of Models this instance does not hold, and know
        those Models as foreign from now on; which they are. A child written since may be
        a new Model's, yet to arrive: kept."""
        if not self.scoped or resource in UNOWNED:
            return set()
        with self._lock:
            held, store = self._held_models(), self._store(resource)
            found = set()
            for key in [key for key in store.by_model if key not in held]:
                dropped = store.drop_model(*key, listed_at)
                if dropped:
                    found.add(key)
                    self._note_misplaced(resource, dropped)
            self._foreign |= found
            return found

    def evict_orphans(self) -> int:
        """Between full lists: the children of Models this instance has not held since the
        previous call (another shard's, created since the last list) are dropped, and their
        Models known as foreign; how many Models. Called every resync period: a Model's
        own event comes within seconds of its children's, and one that comes later anyway
        is adopted."""
        if not self.scoped:
            return 0
        with self._lock:
            held = self._held_models()
            children = [s for r, s in self._stores.items() if r not in UNOWNED]
            orphans = {key for s in children for key in s.by_model if key not in held}
            gone = orphans & self._orphans
            for store in children:
                for key in gone:
                    self._note_misplaced(store.resource, store.drop_model(*key))
            self._foreign |= gone
            self._orphans = orphans - gone
            return len(gone)

    def hides(self, body: Obj) -> bool:
        """Whether a ModelVersion's DELETED from a shard's watch would drop a version of a
        Model this shard holds, held at an older revision: deleted, or relabelled for
        another shard (by hand, or by a GitOps tool putting back a label), which no watch
        here selects; its Model's reconcile would read the Model without it."""
        if not self.scoped:
            return False
        meta = body["metadata"]
        namespace = meta.get("namespace") or ""
        with self._lock:
            store = self._stores.get(MODEL_VERSIONS)
            held = None if store is None else store.objects.get((namespace, meta["name"]))
            return (
                held is not None
                and revision(held) < revision(body)
                and (namespace, model_of(MODEL_VERSIONS, held)) in self._held_models()
            )

    def _note_misplaced(self, resource: Resource, dropped: list[Obj]) -> None:
        """Keep the dropped ModelVersions labelled for this shard (the lock held)."""
        if resource != MODEL_VERSIONS or self.placed is None:
            return
        for body in dropped:
            meta = body["metadata"]
            if (meta.get("labels") or {}).get(LABEL_SHARD) == self.placed:
                self._misplaced[(meta.get("namespace") or "", meta["name"])] = body

    def take_misplaced(self) -> list[Obj]:
        """The misplaced ModelVersions dropped since the last call whose Model this instance
        still does not hold (one adopted meanwhile places its versions itself)."""
        with self._lock:
            held = self._held_models()
            found = [
                body
                for (namespace, _), body in self._misplaced.items()
                if (namespace, model_of(MODEL_VERSIONS, body)) not in held
            ]
            self._misplaced = {}
            return found

    def settle_foreign(self, found: set[Key]) -> None:
        """The foreign Models as a whole relist found them (a deleted one is forgotten)."""
        with self._lock:
            held = self._held_models()
            self._foreign = {key for key in found if key not in held}

    def _held_models(self) -> Mapping[Key, Obj]:
        """The Models this instance holds (the lock held)."""
        return self._stores[MODELS].objects if MODELS in self._stores else {}

    def adopts(self, namespace: str, name: str, model: Mapping[str, Any]) -> bool:
        """Whether a Model's watch event brings a Model to hold with its children, listed
        at once (``CachedKube.adopt``): one known as another shard's, or one this shard
        does not hold that an operator acted on already (its status): moved here. Its
        ModelVersions may still carry the old shard's label, which no watch here selects.
        A new Model (no status) has no children but a user's unplaced versions, which the
        watches bring."""
        if not self.scoped:
            return False
        with self._lock:
            if (namespace, name) in self._foreign:
                return True
            return bool(model.get("status")) and (namespace, name) not in self._held_models()

    def adopt(self, model: Obj, children: dict[Resource, Listed]) -> None:
        """A foreign Model arrived (relabelled into this shard): hold it and its children
        as listed, at once, from now on as any held Model."""
        meta = model["metadata"]
        namespace, name = meta.get("namespace") or "", meta["name"]
        with self._lock:
            self._foreign.discard((namespace, name))
            for resource, (items, at) in children.items():
                store = self._store(resource)
                store.replace_model(namespace, name, ([_slim(i) for i in items], at))
            self._store(MODELS).put(_slim(model))

    def put_listed(self, resource: Resource, items: Iterable[Obj]) -> set[Key]:
        """A page of a full list (``end_list`` ends it); the keys it listed."""
        with self._lock:
            return self._store(resource).put_listed(items, _slim)

    def end_list(
        self,
        resource: Resource,
        seen: set[Key],
        listed_at: int,
        selectors: Sequence[str | None] = (None,),
    ) -> None:
        """The end of a full list whose pages listed ``seen``, of the objects any of
        ``selectors`` selects (None: every one): the objects it lacks are gone."""
        each = [selector_matcher(s or "") for s in selectors]

        def selected(body: Obj) -> bool:
            return any(matches(body) for matches in each)

        with self._lock:
            self._store(resource).drop_unlisted(seen, listed_at, selected)

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

    def held_of_model(self, resource: Resource, namespace: str, model: str) -> list[Obj]:
        """A Model's objects of one kind, as held: not copies, for reading only (the
        resync asks this of every Model every period)."""
        with self._lock:
            store = self._stores[resource]
            names = sorted(store.by_model.get((namespace, model), ()))
            return [store.objects[(namespace, n)] for n in names]


def selector_matcher(selector: str) -> Callable[[Obj], bool]:
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
        # Each kind's selectors, as last synced (ModelVersions have two on a shard).
        self._selectors: dict[Resource, list[str | None]] = {}

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
        kinds: dict[Resource, list[tuple[str | None, str | None]]] = {}
        for resource, selector, namespace in listed:  # in order: the Models first
            kinds.setdefault(resource, []).append((selector, namespace))
        for resource, lists in kinds.items():
            self._selectors[resource] = list(dict.fromkeys(selector for selector, _ in lists))
        foreign: set[Key] = set()

        def keep(resource: Resource, page: list[Obj], at: int) -> set[Key]:
            """Into the cache a page at a time: an unchanged object is not copied, and the
            other shards' Models' children go page by page (a whole list of every
            ModelVersion is never held at once)."""
            keys = self.cache.put_listed(resource, page)
            foreign.update(self.cache.evict_foreign(resource, at))
            return keys

        for resource, lists in kinds.items():
            seen: set[Key] = set()
            oldest: int | None = None
            for selector, namespace in lists:
                try:
                    keys, at = self._whole_list(resource, selector, namespace, keep)
                    seen.update(keys)
                except KubeError as error:
                    if error.status == 403:  # RBAC narrower than the chart's: reads stay live
                        log.warning("not caching %s: %s", resource.plural, error.message)
                        break
                    if error.not_found:
                        break
                    raise
                oldest = at if oldest is None else min(oldest, at)
            else:
                if oldest is not None:
                    self.cache.end_list(resource, seen, oldest, self._selectors[resource])
        self.cache.settle_foreign(foreign)
        if foreign:
            log.info("not caching the children of %d Models of other shards", len(foreign))

    def adopt(self, model: Obj) -> None:
        """Hold a Model that moved into this shard with its children, listed from the API
        server (a few lists; only a relabelled Model, or one created during a relist,
        takes them), whichever shard they are labelled for: its reconcile relabels them."""
        namespace, name = model["metadata"]["namespace"], model["metadata"]["name"]
        children: dict[Resource, Listed] = {}
        for resource in self.cache.child_kinds():
            if resource == MODEL_VERSIONS:
                # Those a shard labelled carry the Model's name too; those no shard has
                # labelled yet are few. They name their Model in the spec.
                selectors = [f"{LABEL_MODEL}={name}", f"!{LABEL_SHARD}"]
            else:
                [synced, *_] = self._selectors.get(resource) or [None]  # the children's one
                terms = [t for t in (synced or "").split(",") if t and LABEL_SHARD not in t]
                selectors = [",".join([f"{LABEL_MODEL}={name}", *terms])]
            items: list[Obj] = []
            oldest = 0
            for selector in selectors:
                found, at = self._whole_list(
                    resource,
                    selector,
                    namespace,
                    lambda kind, page, _: [i for i in page if model_of(kind, i) == name],
                )
                items += found
                oldest = at if not oldest else min(oldest, at)
            children[resource] = (items, oldest)
        self.cache.adopt(model, children)

    def _whole_list(
        self,
        resource: Resource,
        selector: str | None,
        namespace: str | None,
        keep: Callable[[Resource, list[Obj], int], Iterable[T]],
    ) -> tuple[list[T], int]:
        """What ``keep`` keeps of each page of a list, and the list's resourceVersion. A
        continue token outlives etcd's compaction by at most its interval (5 minutes):
        when it has expired (410), what the pages gave is forgotten and the list starts
        over on a new snapshot, as client-go's pager does."""
        for attempt in range(1, LIST_ATTEMPTS + 1):
            kept: list[T] = []
            at = 0
            try:
                for page, page_at in self.pages(resource, selector, namespace):
                    kept.extend(keep(resource, page, page_at))
                    at = page_at
                    del page  # gone before the next page is read (Kube.pages)
                return kept, at
            except KubeError as error:
                if error.status != 410 or attempt == LIST_ATTEMPTS:
                    raise
                log.info("listing %s again: %s", resource.plural, error.message)
        raise AssertionError("unreachable: the last attempt returns or raises")

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
            matches = selector_matcher(label_selector or "")
            return [o for o in self.cache.of_model(resource, namespace, model) if matches(o)]
        return super().list(resource, namespace, label_selector)

    def versions_of(self, namespace: str, model: str, fresh: bool = False) -> Objs:
        """From the cache once synced; ``fresh``: from the API server, and into the cache.
        The cache's watch of ModelVersions is a stream of its own, with no order against
        the Models' watch: a Model's event can come before those of versions created
        before it. A choice that cannot be taken back reads them fresh."""
        if not fresh and self.cache.synced(MODEL_VERSIONS):
            return self.cache.of_model(MODEL_VERSIONS, namespace, model)
        found = super().versions_of(namespace, model)
        for version in found:
            self.cache.remember(MODEL_VERSIONS, None, version)
        return found

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
