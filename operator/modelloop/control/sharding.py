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
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..api.vocabulary import LABEL_SHARD

DEFAULT = "default"  # the shard of the Models without the label; not a label value
# A label value that is also a DNS label: the shard names a Lease and, in the chart, a
# Deployment.
NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


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
