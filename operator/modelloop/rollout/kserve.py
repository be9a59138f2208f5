"""Traffic splits on a KServe InferenceService (``spec.serving.kserve``). Pure: no I/O.

KServe splits by revisions, not by versions: with ``canaryTrafficPercent`` set, the latest
revision (the predictor as written) takes that share and the last revision that had all
the traffic (``latestRolledoutRevision``) the rest; without it, the latest *ready*
revision takes everything. So:

- a canary at weight w: the predictor serves the canary with ``canaryTrafficPercent: w``
  (w = 0 while its revision starts; the rollout writes its first weight once it is ready).
  It starts only once stable's revision is rolled out (all the traffic, no percent):
  before, the rest would go to another revision — or, with none rolled out yet, KServe
  ignores the percent and the canary would take everything. Until then the predictor
  goes on serving stable, and the canary is not ready;
- the promotion: the percent is removed — the canary's revision takes everything;
- a rollback, or any change of the version the predictor serves without a canary:
  the predictor serves the stable version at percent 0 (traffic stays on the rolled-out
  revision), and once its new revision is ready the percent is removed. Removing it at
  once would leave everything to the latest *ready* revision — the failed canary's —
  until the new one starts.

RawDeployment mode has no such split: KServe's v1beta1 InferenceService (v0.17) has no
``spec.canary``, and ``canaryTrafficPercent`` is a Knative (Serverless) feature. There a
rollout never starts (``canary_refused``) and the router refuses a split with a canary.
"""

from collections.abc import Mapping
from typing import Any

from ..api.vocabulary import Automation
from ..conditions import condition
from ..serving.kserve import Serve, revision_ready, rolled_out, served
from .machine import RolloutDecision, RolloutWorld
from .traffic import RouteError, Split

Obj = dict[str, Any]
RAW = "RawDeployment"


def _uri(uris: Mapping[str, str], version: str) -> str:
    uri = uris.get(version)
    if uri is None:
        raise RouteError(f"ModelVersion {version} is gone: no artifact to serve")
    return uri


def _may_serve_canary(current: Obj, split: Split) -> bool:
    """It serves the canary already, or stable's revision has all the traffic. Not before:
    the canary's rest would go to another revision, or (none rolled out yet) KServe would
    ignore the percent and give the canary everything."""
    version = served(current).version
    return version == split.canary or (version == split.stable and rolled_out(current))


def serve_for(
    split: Split, uris: Mapping[str, str], current: Obj | None, raw: bool = False
) -> Serve:
    """What the predictor must serve for ``split``, given the InferenceService as it is
    (None: not created yet). ``raw``: RawDeployment mode, where a split with a canary
    raises RouteError."""
    if split.canary is not None:
        if raw:
            raise RouteError(
                f"KServe RawDeployment mode cannot split traffic to canary {split.canary}: "
                "its InferenceService has no canary field (spec.canary); serving "
                f"{split.stable} only. Use deploymentMode Serverless for canaries"
            )
        if current is not None and _may_serve_canary(current, split):
            return Serve(split.canary, _uri(uris, split.canary), split.canary_weight, split.stable)
    uri = _uri(uris, split.stable)
    percent: int | None = None
    if current is not None and not raw:
        now = served(current)
        if (now.version, now.uri) != (split.stable, uri):
            percent = 0  # a new revision: traffic stays where it is until it is ready
        elif now.percent is not None and not revision_ready(current):
            percent = now.percent
    return Serve(split.stable, uri, percent, split.stable)


def observed_split(isvc: Obj) -> Split | None:
    """The split an InferenceService's spec holds (None when it names no version): the
    canary is the predictor's version while a percent is set with another stable version
    recorded; else the predictor's version takes it all."""
    now = served(isvc)
    if now.version is None:
        return None
    if now.percent is None or now.stable in (None, now.version):
        return Split(now.version, None, 0)
    if not 0 <= now.percent <= 100:
        return None
    return Split(str(now.stable), now.version, now.percent)


def canary_refused(world: RolloutWorld) -> RolloutDecision | None:
    """In KServe RawDeployment mode no rollout starts: a Validated candidate waits, said
    by Progressing False (CanaryUnsupported), while the stable version serves. None when
    the rollout machine decides as usual (any other mode, a rollout already running, or
    nothing it would start anyway)."""
    spec = world.spec
    kserve = spec.serving.kserve
    if kserve is None or kserve.deployment_mode != RAW or world.canary is not None:
        return None
    if spec.pinned_version or spec.paused or world.stable is None:
        return None
    if spec.automation not in (Automation.PROPOSE, Automation.PROMOTE):
        return None
    if any(v.phase == "Canary" for v in world.versions):
        return None  # the machine takes a running canary back from the world
    waiting = sorted(
        (v for v in world.versions if v.phase == "Validated" and v.name != world.stable),
        key=lambda v: v.order,
    )
    if not waiting:
        return None
    message = (
        f"{waiting[-1].name} waits: KServe RawDeployment mode cannot split traffic "
        "(the InferenceService has no canary field in this mode; canaryTrafficPercent "
        f"is Serverless only), so {world.stable} serves alone. Set "
        "spec.serving.kserve.deploymentMode: Serverless for canaries, or "
        "spec.pinnedVersion to serve another version"
    )
    return RolloutDecision(
        None, conditions=[condition("Progressing", "False", "CanaryUnsupported", message)]
    )
