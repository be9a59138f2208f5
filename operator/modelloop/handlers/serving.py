"""Reconcile a Model's serving: read the world, ask the planner, apply its actions."""

import logging
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from datetime import UTC, datetime

from pydantic import ValidationError

from ..api.model import CanaryStatus, LabelsPending, ModelSpec
from ..api.resources import MODEL_VERSIONS, MODELS
from ..api.vocabulary import (
    ANNOTATION_ABORT,
    ANNOTATION_APPROVE,
    ANNOTATION_ROLE_SINCE,
    ANNOTATION_SERVED,
    LABEL_MANAGED_BY,
    LABEL_MODEL,
    LABEL_ROLE,
    LABEL_VERSION,
    MANAGED_BY,
    CanaryPhase,
)
from ..conditions import condition, find, stamp
from ..control.turns import Turns
from ..kube.events import post_event
from ..kube.rest import DEPLOYMENTS, SERVICES, Kube, KubeError, Obj
from ..kube.status import owned_fields, write_status
from ..monitoring.snapshot import Snapshot
from ..monitoring.specs import SPECS
from ..notify.evidence import canary_evidence
from ..rollout.hookcalls import ask_all
from ..rollout.hooks import HookAnswer
from ..rollout.hooks import payload as hook_payload
from ..rollout.kserve import canary_refused
from ..rollout.machine import (
    RolloutDecision,
    RolloutWorld,
    decide,
    due_hooks,
    traffic_write_failed,
)
from ..rollout.router import TrafficRouter, Written, read_inference_service, router_for
from ..rollout.telemetry import RolloutTelemetry
from ..rollout.traffic import RouteError, Split
from ..serving.kserve import serves_ready
from ..serving.plan import (
    BOOTSTRAP,
    Apply,
    CanaryServing,
    Delete,
    MarkVersion,
    NoteServed,
    ServingAction,
    StableChoice,
    VersionView,
    choose_stable,
    plan_serving,
)

log = logging.getLogger(__name__)


def _owned_by(obj: Obj, model: Obj) -> bool:
    uid = model["metadata"]["uid"]
    return any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences") or [])


def versions_of(kube: Kube, namespace: str, model_name: str) -> list[Obj]:
    return kube.versions_of(namespace, model_name)


def _serving_versions(
    kube: Kube, namespace: str, name: str, spec: ModelSpec, status: Obj, deployed: list[str]
) -> tuple[list[VersionView], StableChoice]:
    """The Model's versions and the one that must serve. A first version chosen to serve
    (``Bootstrap``) is labelled stable and cannot be taken back without rolling the
    Deployment twice, so that choice is made only on the versions the API server holds
    now: a cache behind the Model's watch showed one Model a first version still without
    its status (Retired), and not yet the version created to serve (docs/scale.md)."""

    def chosen(found: list[Obj]) -> tuple[list[VersionView], StableChoice]:
        views = [VersionView.of(v) for v in found]
        return views, choose_stable(
            spec.pinned_version, status.get("stableVersion"), views, deployed
        )

    versions, choice = chosen(kube.versions_of(namespace, name))
    if choice.reason == BOOTSTRAP:
        versions, choice = chosen(kube.versions_of(namespace, name, fresh=True))
    return versions, choice


def _write_status(
    kube: Kube,
    model: Obj,
    owned: Obj,
    updates: list[Obj] | None = None,
    now: datetime | None = None,
) -> Obj:
    """Write the status fields serving owns and merge its condition updates by type, on
    the freshest status (see ``kube.status``); returns the Model as written."""
    change = owned_fields(owned, updates or (), now, model["metadata"].get("generation"))
    written = write_status(kube, MODELS, model, change)
    return written.body if written is not None else model


def _mark_version(kube: Kube, namespace: str, mark: MarkVersion, now: datetime) -> None:
    written = stamp(now)
    # A role is dated and records that the version served; taking it away keeps the latter.
    annotations: dict[str, str | None] = (
        {ANNOTATION_ROLE_SINCE: written, ANNOTATION_SERVED: written}
        if mark.role
        else {ANNOTATION_ROLE_SINCE: None}
    )
    kube.merge_patch(
        MODEL_VERSIONS,
        namespace,
        mark.version,
        {"metadata": {"labels": {LABEL_ROLE: mark.role}, "annotations": annotations}},
    )
    status = dict(mark.status or {})
    if mark.phase is not None:
        status |= {
            "phase": mark.phase,
            "reason": mark.reason,
            "message": mark.message,
            "lastTransitionTime": written,
        }
    if status:
        kube.merge_patch(MODEL_VERSIONS, namespace, mark.version, {"status": status}, sub="status")


def _execute(
    kube: Kube, model: Obj, action: ServingAction, now: datetime
) -> tuple[str, str] | None:
    """Carry out one action; an applied object is returned as (verb, what), for the pass
    to tell in one Event."""
    namespace = model["metadata"]["namespace"]
    if isinstance(action, Apply):
        manifest = action.manifest
        resource = DEPLOYMENTS if manifest["kind"] == "Deployment" else SERVICES
        kube.apply(resource, namespace, manifest)
        verb = "Created" if action.created else "Updated"
        return verb, f"{manifest['kind']} {manifest['metadata']['name']}"
    if isinstance(action, Delete):
        resource = DEPLOYMENTS if action.kind == "Deployment" else SERVICES
        if kube.delete(resource, namespace, action.name):
            post_event(
                kube, model, "Deleted", f"Deleted {action.kind} {action.name}: it no longer serves"
            )
    elif isinstance(action, NoteServed):
        kube.merge_patch(
            MODEL_VERSIONS,
            namespace,
            action.version,
            {"metadata": {"annotations": {ANNOTATION_SERVED: stamp(now)}}},
        )
    else:
        _mark_version(kube, namespace, action, now)
    return None


def _creates_service(action: ServingAction) -> bool:
    return isinstance(action, Apply) and action.created and action.manifest["kind"] == "Service"


def _execute_all(
    kube: Kube,
    model: Obj,
    actions: list[ServingAction],
    now: datetime,
    turns: Turns | None = None,
) -> Obj | None:
    """Carry out the plan; a write the API server refuses (422 invalid, 403 forbidden)
    stops the plan and becomes the Ready condition and a Warning Event naming the object
    and the server's words, retried at the next reconcile — never only a log line.

    What the pass created or updated is told in one Event per verb ("Created Deployment
    churn-v1, Service churn, Service churn-v1"), not one per object: a new Model's three
    Events of that kind were a fifth of the API requests of applying a fleet.

    A Service is created only in a turn (``control.turns``): without one, the pass does
    the rest, and its Ready condition says what the Model waits for."""
    meta = model["metadata"]
    creating = [a for a in actions if _creates_service(a)]
    with (
        turns.turn((meta["namespace"], meta["name"]))
        if creating and turns is not None
        else nullcontext(True)
    ) as granted:
        if granted:
            return _execute_each(kube, model, actions, now)
    refused = _execute_each(kube, model, [a for a in actions if not _creates_service(a)], now)
    if refused is not None:
        return refused
    names = ", ".join(_described(a) for a in creating)
    waiting = condition(
        "Ready",
        "False",
        "ServicePending",
        f"{names} waits its turn to be created: the API server allocates Services' "
        "ClusterIPs one at a time, and other Models' Services are ahead of it",
    )
    before = find((model.get("status") or {}).get("conditions") or [], "Ready") or {}
    if before.get("status") == "True":  # its Service was deleted: serving falls, say so
        post_event(kube, model, "ReadyFalse", f"ServicePending: {waiting['message']}", "Warning")
    return waiting


def _execute_each(
    kube: Kube, model: Obj, actions: list[ServingAction], now: datetime
) -> Obj | None:
    applied: dict[str, list[str]] = {}
    try:
        for action in actions:
            try:
                made = _execute(kube, model, action, now)
            except KubeError as error:
                if error.status not in (400, 403, 422):
                    raise
                what = _described(action)
                message = f"the API server refused {what}: {error.message}"[:1000]
                before = find((model.get("status") or {}).get("conditions") or [], "Ready") or {}
                if before.get("message") != message:
                    post_event(kube, model, "WriteRefused", message, "Warning")
                return condition("Ready", "False", "WriteRefused", message)
            if made is not None:
                applied.setdefault(made[0], []).append(made[1])
    finally:
        for verb, objects in applied.items():
            post_event(kube, model, verb, f"{verb} {', '.join(objects)}")
    return None


def _described(action: ServingAction) -> str:
    if isinstance(action, Apply):
        return f"{action.manifest['kind']} {action.manifest['metadata']['name']}"
    if isinstance(action, Delete):
        return f"the deletion of {action.kind} {action.name}"
    if isinstance(action, NoteServed):
        return f"the {ANNOTATION_SERVED} annotation of ModelVersion {action.version}"
    return f"the marks of ModelVersion {action.version}"


def _report_invalid(kube: Kube, model: Obj, error: ValidationError, now: datetime) -> None:
    message = "; ".join(
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
    )[:1000]
    status = model.get("status") or {}
    generation = model["metadata"].get("generation")
    ready = condition("Ready", "False", "InvalidSpec", message)
    before = find(status.get("conditions") or [], "Ready") or {}
    _write_status(kube, model, {"observedGeneration": generation}, [ready], now)
    if (before.get("reason"), before.get("message")) != ("InvalidSpec", message):
        post_event(kube, model, "InvalidSpec", message, "Warning")


def _available(deployment: Obj) -> bool:
    available = find((deployment.get("status") or {}).get("conditions") or [], "Available")
    return available is not None and available.get("status") == "True"


def _ask_hooks(kube: Kube, world: RolloutWorld, namespace: str) -> dict[str, HookAnswer]:
    """The answers of the webhook gates this pass needs, asked before deciding."""
    canary = world.canary
    due = due_hooks(world)
    if canary is None or not due:
        return {}
    steps = len(world.spec.rollout.steps)
    return ask_all(
        kube,
        namespace,
        due,
        lambda hook: hook_payload(world.name, namespace, hook, canary, world.stable, steps),
    )


def _canary_ready(
    spec: ModelSpec, canary: CanaryStatus | None, deployments: list[Obj], isvc: Obj | None
) -> bool:
    """Its Deployment is available; with the replicas provider the replica counts are the
    split, so the canary is scaled up by the first step itself. With KServe: the
    InferenceService's predictor serves it, in a ready revision."""
    if canary is None:
        return False
    if spec.serving.kserve is not None:
        return serves_ready(isvc, canary.version)
    deployment = next((d for d in deployments if d["metadata"]["name"] == canary.version), None)
    return deployment is not None and (
        spec.traffic.provider == "replicas" or _available(deployment)
    )


def _serving_of(
    spec: ModelSpec, canary: CanaryStatus | None, written: Written | None
) -> CanaryServing | None:
    """Replica counts of stable and canary: the split itself when the router asks for it
    (replicas provider), both at full size behind a route."""
    if canary is None:
        return None
    counts = written.replicas if written is not None else None
    if counts is None:
        total = spec.serving.replicas
        return CanaryServing(canary.version, total, total)
    return CanaryServing(
        canary.version, counts.stable_replicas, counts.canary_replicas, counts.achieved_weight
    )


def _priority(kube: Kube, decision: RolloutDecision) -> AbstractContextManager[None]:
    rolls_back = any(
        c is not None and c.phase == CanaryPhase.ROLLING_BACK
        for c in (decision.intent, decision.canary)
    )
    return kube.urgent() if rolls_back else nullcontext()


def _read_split(kube: Kube, model: Obj, router: TrafficRouter, names: set[str]) -> Split | None:
    """The split the route holds; unknown (None) when it cannot be read — the write says why."""
    try:
        return router.read(kube, model, names)
    except (KubeError, RouteError):
        return None


def _observed_weight(observed: Split | None, canary: CanaryStatus | None) -> int | None:
    """The canary weight the route holds now (0 when it names another canary or none)."""
    if observed is None:
        return None
    if observed.canary is None or (canary is not None and observed.canary != canary.version):
        return 0
    return observed.canary_weight


def _dump(status: CanaryStatus | LabelsPending) -> Obj:
    return status.model_dump(mode="json", by_alias=True, exclude_none=True)


def _canary_dump(canary: CanaryStatus | None) -> Obj | None:
    return _dump(canary) if canary else None


def _marked(views: list[VersionView], marks: list[MarkVersion], now: datetime) -> list[VersionView]:
    """The versions as they are once ``marks`` are written (the planner reads labels)."""
    by_name = {m.version: m for m in marks}
    return [
        replace(
            v,
            role=by_name[v.name].role,
            role_since=stamp(now),
            phase=by_name[v.name].phase or v.phase,
        )
        if v.name in by_name
        else v
        for v in views
    ]


def reconcile_serving(
    kube: Kube,
    namespace: str,
    name: str,
    snapshot: Snapshot | None = None,
    now: datetime | None = None,
    telemetry: RolloutTelemetry | None = None,
    turns: Turns | None = None,
) -> None:
    """Bring the world in line with the plan for one Model; idempotent and restart-safe.

    One pass: the rollout decides (pure), its intent and version marks are
    written, then the traffic split, then the Deployments and Services, then
    what follows the split (a rolled-back version's mark), and the status last.
    """
    now = now or datetime.now(UTC)
    model = kube.get(MODELS, namespace, name)
    if model is None or model["metadata"].get("deletionTimestamp"):
        SPECS.forget((namespace, name))
        if telemetry is not None:
            telemetry.forget(namespace, name)
        return  # the garbage collector removes what the Model owned
    spec = SPECS.parsed(model)
    if spec is None:
        try:
            ModelSpec.model_validate(model["spec"])  # again, for what is wrong with it
        except ValidationError as error:
            _report_invalid(kube, model, error, now)
        return
    selector = f"{LABEL_MODEL}={name},{LABEL_MANAGED_BY}={MANAGED_BY}"
    deployments = [d for d in kube.list(DEPLOYMENTS, namespace, selector) if _owned_by(d, model)]
    services = [s for s in kube.list(SERVICES, namespace, selector) if _owned_by(s, model)]
    status = model.get("status") or {}
    deployed = [d["metadata"].get("labels", {}).get(LABEL_VERSION, "") for d in deployments]
    versions, choice = _serving_versions(kube, namespace, name, spec, status, deployed)
    names = {v.name for v in versions}
    router = router_for(spec, {v.name: v.uri for v in versions})
    isvc = read_inference_service(kube, model, spec)
    observed = _read_split(kube, model, router, names) if choice.version else None
    previous = CanaryStatus.model_validate(status["canary"]) if status.get("canary") else None
    annotations = model["metadata"].get("annotations") or {}
    world = RolloutWorld(
        name=name,
        spec=spec,
        stable=choice.version,
        canary=previous,
        versions=versions,
        canary_ready=_canary_ready(spec, previous, deployments, isvc),
        observed_weight=_observed_weight(observed, previous),
        snapshot=snapshot,
        approval=annotations.get(ANNOTATION_APPROVE),
        abort=annotations.get(ANNOTATION_ABORT),
        now=now,
        pending=[LabelsPending.model_validate(p) for p in status.get("labelsPending") or []],
    )
    decision = canary_refused(world) or decide(
        replace(world, hooks=_ask_hooks(kube, world, namespace))
    )
    with _priority(kube, decision):  # a rollback's writes pass the write limit
        pending = (
            {}
            if decision.pending is None
            else {"labelsPending": [_dump(p) for p in decision.pending] or None}
        )
        if decision.intent is not None:
            model = _write_status(kube, model, {"canary": _canary_dump(decision.intent), **pending})
        for mark in decision.marks:
            _mark_version(kube, namespace, mark, now)
        versions = _marked(versions, decision.marks, now)
        canary, conditions = decision.canary, decision.conditions
        stable = choose_stable(spec.pinned_version, status.get("stableVersion"), versions, deployed)
        written = None
        try:
            if stable.version is not None:
                split = Split(stable.version, canary.version if canary else None, decision.weight)
                written = router.write(kube, model, split, names)
        except (KubeError, RouteError) as error:
            before = find(status.get("conditions") or [], "Progressing")
            decision = traffic_write_failed(decision, previous, before, str(error))
            canary, conditions = decision.canary, decision.conditions
        serving = _serving_of(spec, canary, written)
        if canary is not None and serving is not None:
            canary = canary.model_copy(update={"achieved_weight": serving.achieved_weight})
        plan = plan_serving(model, spec, versions, deployments, services, now, serving, isvc)
        refused = _execute_all(kube, model, plan.actions, now, turns)
        for mark in decision.marks_after:
            _mark_version(kube, namespace, mark, now)
        updates = [*plan.conditions, *conditions]
        if refused is not None:  # in the plan's Ready's place: merged after it, the
            # plan's would move lastTransitionTime at every pass, and each be a write
            updates = [*(c for c in updates if c["type"] != "Ready"), refused]
        owned = {**plan.status, "canary": _canary_dump(canary), **pending}
        _write_status(kube, model, owned, updates, now)
        # After the write they report: an Event never tells of a change status does not hold.
        # The rollout's carry its analysis as written (as last written, once the rollout ended).
        evidence = canary_evidence(canary or decision.intent or previous)
        for note in decision.events:
            post_event(kube, model, note.reason, note.message, note.type, evidence)
        for note in plan.events:
            if refused is not None and note.reason.startswith("Ready"):
                continue  # the plan's Ready is not the one written: the write's is told
            post_event(kube, model, note.reason, note.message, note.type)
        if telemetry is not None:
            telemetry.record(namespace, name, canary, decision.analysed)
