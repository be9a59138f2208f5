"""Which ModelVersions to delete: keep the newest ``history.keep`` of those ModelLoop's
trainings made, besides those that serve or are in a rollout, so daily retraining of
many models does not grow etcd without bound. Never a version applied from outside
(GitOps, kubectl apply): it belongs to its repository. Newest means the highest
training sequence, never creation time (a re-created object is not newer). Pure."""

from typing import Any

from ..api.versions import made_by_modelloop, sequence_of
from ..api.vocabulary import LABEL_ROLE


def expired(
    versions: list[dict[str, Any]], keep: int, stable: str | None, canary: str | None
) -> list[str]:
    protected = {stable, canary}
    candidates = [
        v
        for v in versions
        if v["metadata"]["name"] not in protected
        and not (v["metadata"].get("labels") or {}).get(LABEL_ROLE)
        and made_by_modelloop(v)
    ]
    newest_first = sorted(
        candidates, key=lambda v: (sequence_of(v) or 0, v["metadata"]["name"]), reverse=True
    )
    return sorted(v["metadata"]["name"] for v in newest_first[keep:])
