"""Decide which version serves and what must change for it to serve. Pure: no I/O.

Which version serves is reconstructed from the world, not only from
``Model.status``: a pin, then the role label on ModelVersions (labels survive a
backup restore, status does not), then the status, then running Deployments.
Only a Model with no evidence of ever having served bootstraps its first
version; anything else that cannot be explained is reported, never guessed.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from ..api.model import ModelSpec
from ..api.versions import sequence_of
from ..api.vocabulary import (
    ANNOTATION_ROLE_SINCE,
    ANNOTATION_SERVED,
    LABEL_ROLE,
    LABEL_VERSION,
    VersionPhase,
)
from ..conditions import condition, find
from .kserve import inference_service_name, ready_condition
from .objects import (
    applied_hash,
    build_deployment,
    build_model_service,
    build_version_service,
)

Obj = dict[str, Any]
ROLE_STABLE = "stable"
BOOTSTRAP = "Bootstrap"  # the choice of a first version to serve: the one not taken back
# Phases a version reaches only by having taken production traffic.
SERVED_PHASES = frozenset(
    {VersionPhase.SERVING, VersionPhase.RETIRED, VersionPhase.CANARY, VersionPhase.ROLLED_BACK}
)


@dataclass(frozen=True)
class VersionView:
    """What the planner needs to know of one ModelVersion."""

    name: str
    uri: str
    phase: str | None
    role: str | None
    role_since: str | None
    created: str
    transitioned: str | None = None  # status.lastTransitionTime: when it entered its phase
    sequence: int | None = None  # the training sequence, or N of a name <model>-vN
    label_verdict: str | None = None  # an early rollback's verdict by the labels, once given
    served: str | None = None  # when it last took production traffic (ANNOTATION_SERVED)

    @property
    def order(self) -> tuple[int, str, str]:
        """Newer sorts higher: by training sequence (or the N a person gave it in
        <model>-vN), creation time only among versions with neither — a version
        re-created by a GitOps tool keeps its place."""
        return (self.sequence or 0, self.created, self.name)

    @classmethod
    def of(cls, obj: Obj) -> "VersionView":
        meta = obj["metadata"]
        return cls(
            name=meta["name"],
            uri=obj["spec"]["uri"],
            phase=(obj.get("status") or {}).get("phase"),
            role=(meta.get("labels") or {}).get(LABEL_ROLE),
            role_since=(meta.get("annotations") or {}).get(ANNOTATION_ROLE_SINCE),
            created=meta.get("creationTimestamp", ""),
            transitioned=(obj.get("status") or {}).get("lastTransitionTime"),
            sequence=sequence_of(obj),
            label_verdict=(obj.get("status") or {}).get("labelVerdict"),
            served=(meta.get("annotations") or {}).get(ANNOTATION_SERVED),
        )

    @property
    def has_served(self) -> bool:
        """Took production traffic once: by its annotation (kept through a restore that
        drops status), its role, or its phase."""
        return bool(self.served or self.role) or self.phase in SERVED_PHASES


@dataclass(frozen=True)
class StableChoice:
    version: str | None
    reason: str
    message: str


def choose_stable(
    pinned: str | None,
    status_stable: str | None,
    versions: list[VersionView],
    deployed: list[str],
) -> StableChoice:
    """The version that must serve, and the evidence for it."""
    by_name = {v.name: v for v in versions}
    if pinned and pinned in by_name:
        return StableChoice(pinned, "Pinned", f"spec.pinnedVersion holds production on {pinned}")
    labelled = [v for v in versions if v.role == ROLE_STABLE]
    if labelled:
        latest = max(labelled, key=lambda v: (v.role_since or "", v.name))
        return StableChoice(
            latest.name, "RoleLabel", f"{latest.name} carries {LABEL_ROLE}={ROLE_STABLE}"
        )
    serving = [v for v in versions if v.phase == "Serving"]
    if serving:
        latest = max(serving, key=lambda v: v.order)
        return StableChoice(latest.name, "ServingPhase", f"{latest.name} is in phase Serving")
    if status_stable and status_stable in by_name:
        return StableChoice(status_stable, "Status", f"status.stableVersion is {status_stable}")
    running = sorted(v for v in deployed if v in by_name)
    if running:
        return StableChoice(
            running[-1], "RunningDeployment", f"the Deployment of {running[-1]} is running"
        )
    if status_stable or deployed:
        missing = status_stable or ", ".join(sorted(deployed))
        return StableChoice(
            None,
            "StableVersionMissing",
            f"the serving version ({missing}) has no ModelVersion; refusing to pick another",
        )
    served = sorted(v.name for v in versions if v.has_served)
    if served:
        return StableChoice(
            None,
            "StableVersionMissing",
            f"{', '.join(served)} served before and no version serves now (a restore still "
            "bringing the serving one, or it was deleted); refusing to bootstrap another: "
            "set spec.pinnedVersion to serve one",
        )
    candidates = sorted(
        (v for v in versions if v.phase in (None, "Pending")), key=lambda v: v.order
    )
    if candidates:
        first = candidates[0].name
        return StableChoice(
            first,
            BOOTSTRAP,
            f"{first} is the first version of a model that never served; "
            "there is no champion to validate it against",
        )
    return StableChoice(None, "NoVersion", "no ModelVersion for this model yet")


# --------------------------------------------------------------------------- actions


@dataclass(frozen=True)
class Apply:
    manifest: Obj
    created: bool


@dataclass(frozen=True)
class Delete:
    kind: Literal["Deployment", "Service"]
    name: str


@dataclass(frozen=True)
class MarkVersion:
    """Set or clear a version's role label, and move its phase when ``phase`` is given."""

    version: str
    role: str | None
    phase: str | None
    reason: str
    message: str
    status: Mapping[str, Any] | None = None  # other status fields to set with it


@dataclass(frozen=True)
class NoteServed:
    """Record on a version that served before this annotation existed that it served
    (``ANNOTATION_SERVED``); a role written by ``MarkVersion`` records it with the role."""

    version: str


ServingAction = Apply | Delete | MarkVersion | NoteServed


@dataclass(frozen=True)
class EventNote:
    reason: str
    message: str
    type: Literal["Normal", "Warning"] = "Normal"


@dataclass
class ServingPlan:
    choice: StableChoice
    actions: list[ServingAction] = field(default_factory=list)
    status: Obj = field(default_factory=dict)  # the fields serving owns, conditions aside
    conditions: list[Obj] = field(default_factory=list)  # updates, merged by type when written
    events: list[EventNote] = field(default_factory=list)


def _apply_if_changed(desired: Obj, existing: Obj | None, actions: list[Any]) -> None:
    if applied_hash(existing) != applied_hash(desired):
        actions.append(Apply(desired, created=existing is None))


# Ready's reasons while a Deployment comes up: being created, no Available condition yet,
# and the Deployment's own Available=False while its first pods start.
COMING_UP = frozenset({"DeploymentPending", "DeploymentProgressing", "MinimumReplicasUnavailable"})


def _coming_up(condition: Obj) -> bool:
    """A Ready condition of a Deployment coming up. Ready moving into such a state is not
    told as an Event unless it was True: every new Model posted one or two ReadyFalse that
    nothing had gone wrong for, and the Created (or Updated) Event tells what is under
    way; ReadyTrue will follow. A Ready that was True and falls (MinimumReplicasUnavailable
    too), a Deployment that fails (another reason) and no version to serve are told."""
    return condition["type"] == "Ready" and (
        condition.get("status") != "True" and condition.get("reason") in COMING_UP
    )


def _ready(choice: StableChoice, deployment: Obj | None) -> Obj:
    if choice.version is None:
        return condition("Ready", "False", choice.reason, choice.message)
    if deployment is None:
        return condition(
            "Ready", "False", "DeploymentPending", f"Deployment {choice.version} is being created"
        )
    available = find((deployment.get("status") or {}).get("conditions") or [], "Available")
    if available is None:
        return condition(
            "Ready",
            "Unknown",
            "DeploymentProgressing",
            f"Deployment {choice.version} reports no Available condition yet",
        )
    return condition(
        "Ready",
        available["status"],
        available.get("reason") or "Available",
        f"Deployment {choice.version}: {available.get('message', '')}".strip(),
    )


def _pinned(pinned: str | None, choice: StableChoice) -> Obj:
    if not pinned:
        return condition("Pinned", "False", "NotPinned", "no spec.pinnedVersion")
    if choice.reason == "Pinned":
        return condition("Pinned", "True", "Pinned", f"production is held on {pinned}")
    return condition(
        "Pinned",
        "False",
        "PinnedVersionNotFound",
        f"spec.pinnedVersion {pinned} has no ModelVersion; serving stays as it is",
    )


@dataclass(frozen=True)
class CanaryServing:
    """The canary the rollout asks to serve, and the replicas of both versions."""

    version: str
    stable_replicas: int
    canary_replicas: int
    achieved_weight: int | None = None  # what the replica counts achieve (replicas provider)


def _routes_to_versions(spec: ModelSpec) -> bool:
    """Whether each serving version gets its own Service: the mesh providers weight them;
    the replicas provider splits by pod counts behind the Model's Service, where a Service
    per version would cost the API server (a ClusterIP, EndpointSlices) and carry nothing."""
    return spec.serving.version_services == "Always" or spec.traffic.provider != "replicas"


def _unnoted(versions: list[VersionView], actions: list[ServingAction]) -> list[NoteServed]:
    """Versions that served but do not say so in their metadata (they served before
    ``ANNOTATION_SERVED`` existed, or were restored without it): recorded once each.
    A version given a role by this plan has it written with the role."""
    given_role = {a.version for a in actions if isinstance(a, MarkVersion) and a.role}
    return [
        NoteServed(v.name)
        for v in versions
        if v.served is None and v.has_served and v.name not in given_role
    ]


def _overruled_by_hand(choice: StableChoice, other: VersionView) -> bool:
    """Two versions labelled stable, and the one losing has no role-since: the operator
    writes both together, so a person (or a tool) labelled it. The newest role-since
    wins, as after a promotion cut short; a hand label cannot be dated, so it loses,
    and the person who set it is told why it is gone and what chooses instead."""
    return choice.reason == "RoleLabel" and other.role == ROLE_STABLE and other.role_since is None


def _keeps_warm(version: VersionView, delay: timedelta, now: datetime) -> bool:
    """A version retired less than ``rollout.scaleDownDelay`` ago keeps its replicas."""
    if version.phase != "Retired" or not version.transitioned:
        return False
    retired = datetime.fromisoformat(version.transitioned.replace("Z", "+00:00"))
    return now - retired < delay


def plan_serving(
    model: Obj,
    spec: ModelSpec,
    versions: list[VersionView],
    deployments: list[Obj],
    services: list[Obj],
    now: datetime,
    canary: CanaryServing | None = None,
    inference_service: Obj | None = None,
) -> ServingPlan:
    """Everything needed to serve the stable version (and the canary), restart-safe.

    Order: the serving versions' Deployments and Services first, then the role
    labels (which make the choice durable), then scaling down what no longer
    serves, deletion of what has no ModelVersion any more, and the status last.
    A version that stops serving keeps its Deployment warm for the rollout's
    ``scaleDownDelay`` when it was retired (a quick undo; not with the replicas
    provider, where its pods would still take traffic), then at zero replicas
    until its ModelVersion is removed.

    With ``spec.serving.kserve`` the versions are served by the Model's
    ``inference_service`` (its router writes it): no Deployment or Service of ModelLoop's
    is made, those left from the template mode are deleted once it is Ready, and Ready
    is the InferenceService's.
    """
    status = model.get("status") or {}
    pinned = spec.pinned_version
    deployed = [d["metadata"].get("labels", {}).get(LABEL_VERSION, "") for d in deployments]
    choice = choose_stable(pinned, status.get("stableVersion"), versions, deployed)
    plan = ServingPlan(choice)
    by_name = {v.name: v for v in versions}
    deployments_by_name = {d["metadata"]["name"]: d for d in deployments}
    services_by_name = {s["metadata"]["name"]: s for s in services}
    stable = by_name.get(choice.version) if choice.version else None

    kserve = spec.serving.kserve
    if kserve is not None and choice.version is not None:
        ready = ready_condition(inference_service, inference_service_name(model, kserve))
    else:
        ready = _ready(choice, deployments_by_name.get(choice.version or ""))
    serving: list[tuple[VersionView, int]] = []
    if stable is not None and kserve is None:
        replicas = spec.serving.replicas
        serving = [(stable, canary.stable_replicas if canary else replicas)]
        canary_view = by_name.get(canary.version) if canary else None
        if canary is not None and canary_view is not None:
            serving.append((canary_view, canary.canary_replicas))
        for view, count in serving:
            _apply_if_changed(
                build_deployment(model, spec, view.name, view.uri, count),
                deployments_by_name.get(view.name),
                plan.actions,
            )
            if _routes_to_versions(spec):
                _apply_if_changed(
                    build_version_service(model, spec, view.name),
                    services_by_name.get(view.name),
                    plan.actions,
                )
        model_service = build_model_service(model, spec)
        _apply_if_changed(
            model_service, services_by_name.get(model["metadata"]["name"]), plan.actions
        )
    if stable is not None:
        if stable.role != ROLE_STABLE or stable.phase != "Serving":
            moving = stable.phase != "Serving"
            plan.actions.append(
                MarkVersion(
                    stable.name,
                    ROLE_STABLE,
                    "Serving" if moving else None,
                    choice.reason,
                    choice.message,
                )
            )
            if moving:
                plan.events.append(
                    EventNote("Serving", f"{stable.name} serves production ({choice.message})")
                )
        for other in versions:
            if other.name != stable.name and (
                other.role == ROLE_STABLE or other.phase == "Serving"
            ):
                plan.actions.append(
                    MarkVersion(
                        other.name,
                        None,
                        "Retired" if other.phase == "Serving" else None,
                        "Replaced",
                        f"{stable.name} serves production now",
                    )
                )
                if _overruled_by_hand(choice, other):
                    dated = (
                        f"since {stable.role_since}"
                        if stable.role_since
                        else "too (neither is dated: the later name wins)"
                    )
                    plan.events.append(
                        EventNote(
                            "StableLabelOverruled",
                            f"{other.name} was labelled {LABEL_ROLE}={ROLE_STABLE} without "
                            f"{ANNOTATION_ROLE_SINCE} (by hand?) while {stable.name} carried "
                            f"it {dated}: {stable.name} keeps production and "
                            f"the label is removed from {other.name}. To choose the serving "
                            "version, set spec.pinnedVersion",
                            "Warning",
                        )
                    )
    if stable is not None and kserve is not None:
        if ready["status"] == "True":
            plan.actions.extend(Delete("Deployment", name) for name in sorted(deployments_by_name))
            plan.actions.extend(Delete("Service", name) for name in sorted(services_by_name))
    elif stable is not None:
        serving_names = {view.name for view, _count in serving}
        delay = spec.rollout.scale_down_delay.delta
        if spec.traffic.provider == "replicas":
            delay = timedelta(0)  # behind the Model's one Service, warm pods would take traffic
        for name in sorted(deployments_by_name):
            idle = by_name.get(name)
            if idle is None or name in serving_names or _keeps_warm(idle, delay, now):
                continue
            if idle.role == ROLE_STABLE or idle.phase == "Serving":
                continue  # retired by this plan: warm until its phase records the time
            _apply_if_changed(
                build_deployment(model, spec, name, idle.uri, 0),
                deployments_by_name[name],
                plan.actions,
            )
        plan.actions.extend(
            Delete("Deployment", name)
            for name in sorted(deployments_by_name)
            if name not in by_name
        )
        plan.actions.extend(
            Delete("Service", name)
            for name in sorted(services_by_name)
            if name not in by_name and name != model["metadata"]["name"]
        )

    plan.actions.extend(_unnoted(versions, plan.actions))
    pin = _pinned(pinned, choice)
    generation = model["metadata"].get("generation")
    plan.conditions = [ready, pin]
    for new in (ready, pin):
        old = find(status.get("conditions") or [], new["type"])
        if old is None and new["type"] == "Pinned" and new["status"] == "False":
            continue  # a new Model is not pinned: its resting state, nothing happened
        if _coming_up(new) and (old is None or old.get("status") != "True"):
            continue  # on its way to Ready: the Created Event told it, ReadyTrue will
        if old is None or old.get("status") != new["status"] or old.get("reason") != new["reason"]:
            warn = new["type"] == "Ready" and new["status"] == "False" and stable is None
            plan.events.append(
                EventNote(
                    f"{new['type']}{new['status']}",
                    f"{new['reason']}: {new['message']}",
                    "Warning" if warn else "Normal",
                )
            )
    if stable is None:
        phase = "Failed" if choice.reason == "StableVersionMissing" else "Pending"
    elif spec.paused:
        phase = "Paused"
    else:
        phase = "Progressing" if canary else "Serving"
    plan.status = {
        "phase": phase,
        "stableVersion": stable.name if stable else status.get("stableVersion"),
        "observedGeneration": generation,
    }
    return plan
