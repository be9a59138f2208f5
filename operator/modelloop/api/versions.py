"""What a ModelVersion's metadata says about its place among its Model's versions and
about who made it. Pure; shared by serving, rollout and retention."""

import re
from typing import Any

from .vocabulary import LABEL_MANAGED_BY, MANAGED_BY

# Set by `kubectl apply` and by GitOps tools on what they apply: such an object belongs
# to its repository, and ModelLoop must never delete it.
APPLIED_FROM_OUTSIDE = (
    "kubectl.kubernetes.io/last-applied-configuration",
    "argocd.argoproj.io/tracking-id",
    "kustomize.toolkit.fluxcd.io/name",
)


def lineage_sequence(version: dict[str, Any]) -> int | None:
    """The training sequence a version's lineage records."""
    sequence = ((version.get("spec") or {}).get("lineage") or {}).get("sequence")
    return int(sequence) if sequence else None


def named_sequence(model: str, name: str) -> int | None:
    """The N of a name <model>-vN: a person's or a pipeline's explicit order."""
    named = re.fullmatch(rf"{re.escape(model)}-v(\d+)", name)
    return int(named.group(1)) if named else None


def sequence_of(version: dict[str, Any]) -> int | None:
    """A ModelVersion's place in its Model's order: lineage.sequence, else the N of a
    name <model>-vN."""
    model = str((version.get("spec") or {}).get("model", ""))
    return lineage_sequence(version) or named_sequence(model, version["metadata"]["name"])


def made_by_modelloop(version: dict[str, Any]) -> bool:
    """Made by one of ModelLoop's trainings, and not applied from outside since."""
    meta = version["metadata"]
    labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
    trained = ((version.get("spec") or {}).get("lineage") or {}).get("sequence") is not None
    return (
        labels.get(LABEL_MANAGED_BY) == MANAGED_BY
        and trained
        and not any(key in annotations for key in APPLIED_FROM_OUTSIDE)
        and not labels.get("app.kubernetes.io/instance")  # Argo CD's default tracking label
    )
