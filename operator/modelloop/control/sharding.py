"""Sharding: which Models one operator instance acts on (``--shard NAME``).

A Model's shard is its ``modelloop.dev/shard`` label, as Flux shards its controllers by
``sharding.fluxcd.io/key``. An instance started with ``--shard NAME`` watches only the
Models labelled NAME (a server-side label selector: the others never reach it); the
instance of the reserved shard ``default`` watches the Models without the label; an
instance without ``--shard`` watches every Model. Each shard elects its own leader, on a
Lease named after the shard, so every shard has an active replica and standbys of its own.

Moving a Model is relabelling it: the old shard's watch reports it deleted, the new
shard's reports it added. ``owns`` is the same rule as the selector, for a reconcile to
check the labels it read itself (the Model may have moved since its watch event).

ModelVersions are made by users and GitOps tools, who know nothing of shards. A sharded
instance watches two sets of them: its own (labelled with its shard's name, ``default``
included) and the unplaced ones (no label yet: a user's new version, rare and brief). It
labels its Models' versions with ``version_labels``; from then on only its own watch
carries them, and the other shards never decode their events. A version labelled for a
shard that does not hold its Model (a label written by hand, or a deleted Model's version)
is unplaced by that shard (``version_unplace_patch``), for the shard that holds its Model,
now or once it is made, to place it.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..api.vocabulary import LABEL_MODEL, LABEL_SHARD

DEFAULT = "default"  # the shard of the Models without the label; not a label value
# A label value that is also a DNS label: the shard names a Lease and, in the chart, a
# Deployment.
NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
# The ModelVersions no shard has labelled yet: every sharded instance watches them, and
# the one holding their Model labels them for itself.
UNPLACED = f"!{LABEL_SHARD}"


@dataclass(frozen=True)
class Shard:
    """``name`` None: unsharded, every Model is this instance's."""

    name: str | None = None

    def __post_init__(self) -> None:
        if self.name is not None and not NAME.fullmatch(self.name):
            raise ValueError(
                f"shard name {self.name!r}: lowercase letters, digits and '-', "
                "starting and ending with a letter or digit, at most 63 characters"
            )

    def model_selector(self) -> str | None:
        """The label selector of this instance's watch of Models (None: every Model)."""
        if self.name is None:
            return None
        if self.name == DEFAULT:
            return f"!{LABEL_SHARD}"
        return f"{LABEL_SHARD}={self.name}"

    def version_selectors(self) -> list[str | None]:
        """The label selectors of this instance's watches of ModelVersions: its own and
        the unplaced ones when sharded (the default shard's carry ``default``, so that the
        unplaced stay few); every one (None) when not. Its full lists take every one."""
        if self.name is None:
            return [None]
        return [f"{LABEL_SHARD}={self.name}", UNPLACED]

    def lease_name(self, base: str) -> str:
        """The Lease this shard's replicas elect their leader on."""
        return base if self.name is None else f"{base}-{self.name}"

    def owns(self, labels: Mapping[str, str]) -> bool:
        """Whether a Model with these labels is this instance's (as ``model_selector``)."""
        if self.name is None:
            return True
        label = labels.get(LABEL_SHARD)
        if self.name == DEFAULT:
            return label is None
        return label == self.name


def shard_label(model: Mapping[str, Any]) -> dict[str, str]:
    """The Model's shard label, carried by the children ModelLoop makes (its Deployments,
    Services and trainings): a shard's watches of them select its own, so the other
    shards' never reach it. Not on their pods: moving a Model to another shard must not
    restart them."""
    shard = (model["metadata"].get("labels") or {}).get(LABEL_SHARD)
    return {} if shard is None else {LABEL_SHARD: shard}


def version_labels(model: Mapping[str, Any]) -> dict[str, str]:
    """The labels a Model's ModelVersions carry once its shard holds them: the shard's
    name (``default`` for a Model without the label: a version without it is unplaced),
    and the Model's name, by which a shard that adopts a moved Model lists them."""
    meta = model["metadata"]
    shard = (meta.get("labels") or {}).get(LABEL_SHARD) or DEFAULT
    return {LABEL_SHARD: shard, LABEL_MODEL: meta["name"]}


def version_label_patch(
    model: Mapping[str, Any], version: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The merge patch giving one of the Model's ModelVersions ``version_labels``, guarded by
    the version's resourceVersion (a concurrent edit fails it, to be read again); None when
    it carries them already."""
    meta = version["metadata"]
    held = meta.get("labels") or {}
    missing = {k: v for k, v in version_labels(model).items() if held.get(k) != v}
    if not missing:
        return None
    return {"metadata": {"labels": missing, "resourceVersion": meta.get("resourceVersion")}}


def version_unplace_patch(version: Mapping[str, Any]) -> dict[str, Any]:
    """The merge patch taking the shard label off a ModelVersion, guarded by its
    resourceVersion (a version placed meanwhile is left as it is)."""
    meta = version["metadata"]
    return {
        "metadata": {"labels": {LABEL_SHARD: None}, "resourceVersion": meta.get("resourceVersion")}
    }
