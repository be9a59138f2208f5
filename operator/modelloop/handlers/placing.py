"""A shard labels its Models' ModelVersions for itself (``control.sharding``): users and
GitOps tools make them without the label, and a Model that moved here brings them
labelled for its old shard. Once labelled, only this shard's watch carries them.

A version labelled for a shard that does not hold its Model is hidden from the Model's
own shard, whose watches do not select it. Two rules undo that: the Model's shard, told
by its watch that one of its versions left, reads it again and labels it back
(``still_held``); a shard whose watch carries a version whose Model it does not hold
unplaces it (``unplace_versions``), for whichever shard holds the Model to place it."""

import logging
from collections.abc import Iterable

from ..api.resources import MODEL_VERSIONS, MODELS
from ..api.vocabulary import API_VERSION, LABEL_SHARD
from ..control.sharding import Shard, version_label_patch, version_unplace_patch
from ..kube.events import post_event
from ..kube.rest import Kube, KubeError, Obj

log = logging.getLogger(__name__)
UNPLACED, RELABELLED = "Unplaced", "Relabelled"  # the Events' reasons


def place_versions(kube: Kube, model: Obj) -> int:
    """Label the Model's ModelVersions that lack its shard's labels; how many were. A
    version edited or deleted meanwhile is left to its own watch event, which brings
    the Model's next reconcile. One labelled for another shard says so in an Event."""
    meta = model["metadata"]
    placed = 0
    for version in kube.versions_of(meta["namespace"], meta["name"]):
        patch = version_label_patch(model, version)
        if patch is None:
            continue
        try:
            kube.merge_patch(MODEL_VERSIONS, meta["namespace"], version["metadata"]["name"], patch)
        except KubeError as error:
            if not (error.conflict or error.not_found):
                raise
            continue
        placed += 1
        was = (version["metadata"].get("labels") or {}).get(LABEL_SHARD)
        shard = patch["metadata"]["labels"].get(LABEL_SHARD)
        if was is not None and shard is not None:
            post_event(
                kube, _involved(version), RELABELLED, relabelled_message(was, shard, meta["name"])
            )
    return placed


def still_held(kube: Kube, shard: Shard, version: Obj) -> Obj | None:
    """The ModelVersion as the API server holds it now, if a watch's DELETED (``version``)
    told that it left this shard's label selector, not that it was deleted, while its
    Model is still this shard's (as the API server has it: the Model's own event may be
    on its way, when the Model moved away): relabelled by someone else, to be labelled
    back. None when it is gone, or its Model is."""
    meta = version["metadata"]
    namespace = meta.get("namespace")
    found = kube.get(MODEL_VERSIONS, namespace, meta["name"])
    if found is None or found["metadata"].get("uid") != meta.get("uid"):
        return None  # deleted (and perhaps made again: its own events bring it)
    model = kube.get(MODELS, namespace, (found.get("spec") or {}).get("model") or "")
    if model is None or not shard.owns(model["metadata"].get("labels") or {}):
        return None
    return found


def unplace_versions(kube: Kube, versions: Iterable[Obj]) -> int:
    """Take this shard's label off ModelVersions whose Model it does not hold (a label for
    the wrong shard, a Model moved away whose new shard has not relabelled them yet, a
    deleted Model's versions); how many were. Unplaced, every shard's watch carries them
    and the one that holds their Model places them. A version changed meanwhile (placed
    by its Model's shard, edited) or deleted is left alone; one the API server refused is
    found again by the next full list."""
    unplaced = 0
    for version in versions:
        meta = version["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        try:
            kube.merge_patch(MODEL_VERSIONS, namespace, name, version_unplace_patch(version))
        except KubeError as error:
            if not (error.conflict or error.not_found):
                log.warning("unplacing ModelVersion %s/%s failed: %s", namespace, name, error)
            continue
        shard = (meta.get("labels") or {}).get(LABEL_SHARD)
        model = (version.get("spec") or {}).get("model")
        post_event(kube, _involved(version), UNPLACED, unplaced_message(shard, model))
        unplaced += 1
    return unplaced


def unplaced_message(shard: str | None, model: str | None) -> str:
    return (
        f"Labelled {LABEL_SHARD}={shard}, but shard {shard} does not hold Model {model} "
        "(labelled for another shard, moved away, or deleted): the label is removed, and "
        f"the shard that holds Model {model}, now or once it is made, labels the version."
    )


def relabelled_message(was: str, shard: str, model: str) -> str:
    return (
        f"Labelled {LABEL_SHARD}={was}, but Model {model} is shard {shard}'s: labelled "
        f"{shard} again, so that its shard's watches carry it."
    )


def _involved(version: Obj) -> Obj:
    """Listed items may lack their kind: the Event names it."""
    return {**version, "apiVersion": API_VERSION, "kind": "ModelVersion"}
