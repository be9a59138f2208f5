"""InferenceServices as the API server serves them, for the unit tables of the KServe mode."""

from typing import Any

from modelloop.serving.kserve import ANNOTATION_REPLACED, ANNOTATION_STABLE

Obj = dict[str, Any]


def isvc(
    version: str | None = "churn-v1",
    percent: int | None = None,
    stable: str | None = None,
    created: str | None = None,
    ready: str | None = None,
    replaced: str | None = None,
    conditions: list[Obj] | None = None,
    rolled: str | None = None,
) -> Obj:
    """An InferenceService as the API server serves it: spec as written, KServe's status."""
    predictor: Obj = {"model": {"modelFormat": {"name": "sklearn"}}}
    if version is not None:
        predictor["model"]["storageUri"] = f"s3://m/{version}"
        predictor["labels"] = {"modelloop.dev/version": version}
    if percent is not None:
        predictor["canaryTrafficPercent"] = percent
    annotations = {
        k: v for k, v in ((ANNOTATION_STABLE, stable), (ANNOTATION_REPLACED, replaced)) if v
    }
    revisions = {
        "latestCreatedRevision": created,
        "latestReadyRevision": ready,
        "latestRolledoutRevision": rolled,
    }
    return {
        "metadata": {"name": "churn", "namespace": "ns", "annotations": annotations},
        "spec": {"predictor": predictor},
        "status": {
            "components": {"predictor": {k: v for k, v in revisions.items() if v}},
            "conditions": conditions or [],
        },
    }
