"""ModelVersions carry their Model's shard label, so each shard's watch of them selects
its own (control.sharding).

Users and GitOps tools make ModelVersions without the label. Two writers give it:

- the Model's own shard, at each reconcile, to the versions it holds (the ones it made,
  those it found unlabelled at a full list, and those of a Model that moved in);
- the default shard, whose watch selects the versions without the label, to a new
  version of another shard's Model: it reads that Model's label and writes it on the
  version, which then leaves its watch and enters its shard's.
"""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..api.resources import MODEL_VERSIONS, MODELS
from ..api.vocabulary import LABEL_SHARD
from ..control.sharding import relabel_patch
from ..kube.rest import Kube, KubeError, Obj

log = logging.getLogger(__name__)

# A version may come before its Model (one file, versions first): its Model is looked for
# again every RETRY_SECONDS, for PATIENCE_SECONDS; after that, its shard's next full list
# labels it.
RETRY_SECONDS = 30.0
PATIENCE_SECONDS = 600.0

Key = tuple[str, str]  # (namespace, ModelVersion)


def relabel_versions(kube: Kube, model: Obj, versions: list[Obj]) -> None:
    """Give the Model's ModelVersions its shard label where they carry another or none."""
    for version in versions:
        patch = relabel_patch(model, version)
        if patch is None:
            continue
        meta = version["metadata"]
        try:
            kube.merge_patch(MODEL_VERSIONS, meta["namespace"], meta["name"], patch)
        except KubeError as error:
            if not error.not_found:  # deleted meanwhile: nothing to label
                raise


@dataclass
class _Pending:
    model: str
    resource_version: str
    since: float
    not_before: float


class VersionLabeller:
    """The default shard's: labels the new ModelVersions of the Models it does not hold
    with their Model's shard. ``offer`` is called from the watch (cheap, no I/O);
    ``label_pending`` from a worker thread."""

    def __init__(self, live: Kube, clock: Callable[[], float] = time.monotonic) -> None:
        self.live = live
        self.clock = clock
        self._lock = threading.Lock()
        self._pending: dict[Key, _Pending] = {}

    def __len__(self) -> int:
        with self._lock:
            return len(self._pending)

    def offer(self, version: Obj) -> None:
        """A ModelVersion without the label, whose Model this shard does not hold."""
        meta = version["metadata"]
        model = (version.get("spec") or {}).get("model")
        if not model or LABEL_SHARD in (meta.get("labels") or {}):
            return
        key = (meta["namespace"], meta["name"])
        rv = str(meta.get("resourceVersion") or "")
        now = self.clock()
        with self._lock:
            earlier = self._pending.get(key)
            self._pending[key] = _Pending(model, rv, earlier.since if earlier else now, now)

    def label_pending(self) -> int:
        """Label what was offered and is due; how many were labelled. A version whose
        Model is not there yet is tried again (for PATIENCE_SECONDS); one that changed
        since it was offered is left to its next watch event."""
        now = self.clock()
        with self._lock:
            due = [(k, p) for k, p in self._pending.items() if p.not_before <= now]
        labelled = 0
        models: dict[Key, Obj | None] = {}  # each Model read once a pass
        for key, pending in due:
            model = (key[0], pending.model)
            if model not in models:
                models[model] = self.live.get(MODELS, *model)
            done = self._label(key, pending, models[model])
            labelled += done is True
            with self._lock:
                if self._pending.get(key) is not pending:
                    continue  # offered again meanwhile: that offer stands
                if done is None and now - pending.since <= PATIENCE_SECONDS:
                    pending.not_before = now + RETRY_SECONDS
                else:
                    del self._pending[key]
        return labelled

    def _label(self, key: Key, pending: _Pending, model: Obj | None) -> bool | None:
        """True: labelled; False: nothing to do (the default shard's own Model, or the
        version changed or went); None: to try again."""
        if model is None:
            return None
        patch = relabel_patch(model, {"metadata": {}})
        if patch is None:
            return False
        patch["metadata"]["resourceVersion"] = pending.resource_version  # as offered
        try:
            self.live.merge_patch(MODEL_VERSIONS, *key, patch)
        except KubeError as error:
            if error.conflict or error.not_found:
                return False
            log.warning("labelling ModelVersion %s/%s: %s", *key, error)
            return None
        return True
