"""Which ModelVersions to delete: keep the newest ``history.keep`` besides those that
serve or are in a rollout, so daily retraining of many models does not grow etcd
without bound. Pure."""

from typing import Any

from ..api.resources import LABEL_ROLE


def expired(
    versions: list[dict[str, Any]], keep: int, stable: str | None, canary: str | None
) -> list[str]:
    protected = {stable, canary}
    candidates = [
        v
        for v in versions
        if v["metadata"]["name"] not in protected
        and not (v["metadata"].get("labels") or {}).get(LABEL_ROLE)
    ]
    newest_first = sorted(
        candidates,
        key=lambda v: (v["metadata"]["creationTimestamp"], v["metadata"]["name"]),
        reverse=True,
    )
    return sorted(v["metadata"]["name"] for v in newest_first[keep:])
