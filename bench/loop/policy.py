"""A policy to replay: the spec of a Model manifest (YAML), parsed as the operator does."""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from modelloop.api.model import ModelSpec

from .trainer import METRIC

POLICIES = Path(__file__).parent / "policies"
RECOMMENDED = POLICIES / "recommended.yaml"
BREACH = POLICIES / "breach.yaml"
DEFAULT_POLICIES = (RECOMMENDED, BREACH)  # the first one's dataWindow is the baselines'


class PolicyError(ValueError):
    pass


@dataclass(frozen=True)
class Policy:
    name: str  # the file's stem
    model: str  # metadata.name
    spec: ModelSpec


def load_policy(path: Path, slices: Sequence[str]) -> Policy:
    """The Model in ``path``. Without ``spec.slices`` it gets the stream's slices; the
    benchmark computes one metric, ``accuracy``, and no drift check."""
    manifest = yaml.safe_load(path.read_text())
    if not isinstance(manifest, dict) or manifest.get("kind") != "Model":
        raise PolicyError(f"{path}: not a Model manifest")
    body: dict[str, Any] = dict(manifest.get("spec") or {})
    body.setdefault("slices", [{"name": s, "matchLabels": {"slice": s}} for s in slices])
    try:
        spec = ModelSpec.model_validate(body)
    except ValidationError as error:
        raise PolicyError(f"{path}: {error}") from None
    if sorted(spec.slice_names()) != sorted(slices):
        raise PolicyError(
            f"{path}: slices {', '.join(spec.slice_names())} are not the stream's "
            f"({', '.join(slices)})"
        )
    others = [m.name for m in spec.metrics if m.name != METRIC]
    if others:
        raise PolicyError(f"{path}: the benchmark computes only {METRIC!r}, not {others}")
    if spec.drift:
        raise PolicyError(f"{path}: drift checks are not simulated")
    return Policy(path.stem, str((manifest.get("metadata") or {}).get("name", "model")), spec)
