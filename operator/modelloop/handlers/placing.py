"""A shard labels its Models' ModelVersions for itself (``control.sharding``): users and
GitOps tools make them without the label, and a Model that moved here brings them
labelled for its old shard. Once labelled, only this shard's watch carries them."""

from ..api.resources import MODEL_VERSIONS
from ..control.sharding import version_label_patch
from ..kube.rest import Kube, KubeError, Obj


def place_versions(kube: Kube, model: Obj) -> int:
    """Label the Model's ModelVersions that lack its shard's labels; how many were. A
    version edited or deleted meanwhile is left to its own watch event, which brings
    the Model's next reconcile."""
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
    return placed
