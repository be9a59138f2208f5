"""Reconcile a Model's retraining and the validation of its candidates.

Reads the world (the Model, its training Jobs and their pods — or its training workloads
and their result ConfigMaps — and its ModelVersions),
judges the candidates awaiting the offline gate, keeps the per-trigger bookkeeping
(status.training.triggers) up to date with what the cluster shows,
asks the pure decision, and carries it out in a restart-safe order:
reserve the sequence number in status, then create the Job (a workload: its result
ConfigMap, Role and RoleBinding, then the workload); on a finished one, create the
ModelVersion, then record the outcome in status, then delete it.
A crash between any two writes leaves a state the next reconcile completes.
"""

import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from ..api.model import ModelSpec, TrainingRecord, TrainingStatus, TriggerStatus
from ..api.modelversion import ModelVersionSpec
from ..api.resources import MODEL_VERSIONS, MODELS
from ..api.vocabulary import (
    ANNOTATION_RETRAIN,
    LABEL_MANAGED_BY,
    LABEL_MODEL,
    LABEL_SHARD,
    MANAGED_BY,
    TrainingOutcome,
)
from ..conditions import condition, find, stamp
from ..control.sharding import shard_label
from ..kube.events import post_event
from ..kube.kinds import forget, resource_of
from ..kube.rest import Kube, KubeError, Obj, Resource
from ..kube.status import owned_fields, write_status
from ..monitoring.specs import SPECS
from ..notify.evidence import gate_evidence, training_evidence
from ..retraining.cost import counted
from ..retraining.decide import (
    TRAINING,
    Adopt,
    Decision,
    EnsureJob,
    Finish,
    JobView,
    Rebaseline,
    Start,
    consumed,
    decide,
    kept_history,
    training_condition,
    trigger_states,
)
from ..retraining.holds import Hold, describe_hold
from ..retraining.jobs import (
    LABEL_TRAINING,
    build_job,
    build_version,
    termination_message,
    training_env,
    training_metadata,
)
from ..retraining.novelty import rejection_wait
from ..retraining.result import ResultError, parse_result
from ..retraining.retention import expired
from ..retraining.telemetry import TrainingTelemetry
from ..retraining.workloads import (
    JOB,
    PRESETS,
    Kind,
    build_workload,
    configmap_result,
    kind_of,
    outcome,
    result_binding,
    result_configmap,
    result_name,
    result_role,
    service_accounts,
    why_failed,
)
from ..retraining.world import training_world
from ..validation.gates import awaiting_judgement, validate
from .serving import versions_of

log = logging.getLogger(__name__)
JOBS = Resource("batch", "v1", "jobs")
PODS = Resource("", "v1", "pods")
CONFIG_MAPS = Resource("", "v1", "configmaps")
ROLES = Resource("rbac.authorization.k8s.io", "v1", "roles")
ROLE_BINDINGS = Resource("rbac.authorization.k8s.io", "v1", "rolebindings")
REFUSED = (400, 403, 404, 422)  # the API server will not take it: say so, retry later


def _kinds(kube: Kube, spec: ModelSpec) -> list[tuple[Kind, Resource]]:
    """What trainings create: Jobs always (one may have started before the spec changed),
    and the workload's kind while the API server serves it."""
    kinds = [(JOB, JOBS)]
    if spec.retraining is not None and spec.retraining.workload is not None:
        kind = kind_of(spec.retraining)
        resource = resource_of(kube, kind.api_version, kind.kind)
        if resource is not None:
            kinds.append((kind, resource))
    return kinds


def _kind_of(kube: Kube, spec: ModelSpec, body: Obj) -> tuple[Kind, Resource]:
    return next(((k, r) for k, r in _kinds(kube, spec) if k.owns(body)), (JOB, JOBS))


def _job_views(
    kube: Kube, namespace: str, name: str, spec: ModelSpec, running: str | None
) -> list[JobView]:
    """The Model's trainings' objects, each with its outcome. ``running``, the training in
    status: read by name when the Model's list lacks it, in case it carries no or another
    shard's label (made before the shard label was, or before the Model moved), which
    this shard's watches do not select."""
    selector = f"{LABEL_MODEL}={name},{LABEL_MANAGED_BY}={MANAGED_BY}"
    views = []
    for kind, resource in _kinds(kube, spec):
        try:
            listed = kube.list(resource, namespace, selector)
            if running is not None and all(j["metadata"]["name"] != running for j in listed):
                listed += [j for j in [kube.get(resource, namespace, running)] if j]
        except KubeError as error:
            if not error.not_found:
                raise
            forget(kind.api_version, kind.kind)  # its CRD is gone
            continue
        for job in listed:
            job.setdefault("apiVersion", kind.api_version)  # a list's items may omit them
            job.setdefault("kind", kind.kind)
            views.append(JobView(job, outcome(kind, job)))
    return views


def _relabel(kube: Kube, model: Obj, spec: ModelSpec, jobs: list[JobView]) -> None:
    """Give the trainings' objects their Model's shard label where they carry another (the
    Model moved here, or they were made before the label was): from then on this shard's
    watches select them, and the other shard's let them go."""
    wanted = shard_label(model).get(LABEL_SHARD)
    for job in jobs:
        meta = job.body["metadata"]
        if (meta.get("labels") or {}).get(LABEL_SHARD) == wanted:
            continue
        kind, resource = _kind_of(kube, spec, job.body)
        if kind is not JOB and kind not in PRESETS.values():
            continue  # a kind of the user's own is not watched: no selector to meet
        patch = {"metadata": {"labels": {LABEL_SHARD: wanted}}}
        try:
            kube.merge_patch(resource, meta["namespace"], meta["name"], patch)
        except KubeError as error:
            if not error.not_found:  # finished and deleted meanwhile: nothing to move
                raise


def _result(kube: Kube, namespace: str, name: str, kind: Kind, job: Obj) -> str | None:
    """What the trainer reported: a Job's pod's termination message, a workload's
    ConfigMap. Read from the API server once, when the training is recorded: the operator
    does not watch pods (every shard would receive every training's pod events)."""
    if kind.result == "configMap":
        return configmap_result(
            kube.get(CONFIG_MAPS, namespace, result_name(job["metadata"]["name"]))
        )
    sequence = job["metadata"]["labels"].get(LABEL_TRAINING, "")
    pods = kube.list(PODS, namespace, f"{LABEL_MODEL}={name},{LABEL_TRAINING}={sequence}")
    return termination_message(pods)


def _write_training(
    kube: Kube,
    model: Obj,
    training: TrainingStatus | None,
    new_condition: Obj,
    now: datetime,
) -> Obj:
    """Write status.training (this loop's own field; None: unchanged) and the Training
    condition in one PATCH, nothing when neither changed; returns the Model as written.

    The decision was made on the training status as read: if it changed since, the
    write is refused as a conflict and the reconcile runs again on the new one."""
    read = (model.get("status") or {}).get("training")
    dumped = None if training is None else training.model_dump(mode="json", by_alias=True)
    merge = owned_fields({}, [new_condition], now, model["metadata"].get("generation"))

    def change(status: Obj) -> Obj:
        if status.get("training") != read:
            raise KubeError(409, "Conflict", "status.training changed since it was read")
        return merge(status if dumped is None else status | {"training": dumped})

    written = write_status(kube, MODELS, model, change)
    return written.body if written is not None else model


def reconcile_training(
    kube: Kube,
    namespace: str,
    name: str,
    new_data: float | None = None,
    now: datetime | None = None,
    telemetry: TrainingTelemetry | None = None,
) -> None:
    """``new_data``: the new-data counter (spec.retraining.newData, or the newData
    trigger's) as the evaluation last read it; None when its last reading failed.

    A pass writes the Model's status once: the per-trigger bookkeeping, the decision's
    training record and the Training condition together (a second time only when the
    API server refused a training it reserved)."""
    now = now or datetime.now(UTC)
    model = kube.get(MODELS, namespace, name)
    if model is None or model["metadata"].get("deletionTimestamp"):
        return
    spec = SPECS.parsed(model)
    if spec is None:
        return  # the serving reconcile reports an invalid spec
    try:
        read = TrainingStatus.model_validate((model.get("status") or {}).get("training") or {})
    except ValidationError:
        return
    versions = versions_of(kube, namespace, name)
    judged = validate_candidates(kube, model, spec, versions, now)  # before the guards read them
    if telemetry is not None:
        for phase in judged:
            telemetry.judged.labels(namespace, name, phase).inc()
    if judged:
        versions = versions_of(kube, namespace, name)
    running = read.running.job if read.running is not None else None
    jobs = _job_views(kube, namespace, name, spec, running)
    _relabel(kube, model, spec, jobs)
    world = training_world(model, spec, read, versions, jobs, new_data, now)
    training = read.model_copy(update={"triggers": trigger_states(world)})
    world = replace(world, training=training)
    decision = decide(world)
    record = None if isinstance(decision, Rebaseline) else decision.record
    kind = _kind_named(spec, jobs, record.job) if record is not None else JOB.kind
    if world.manual and consumed(world, world.manual):
        model = _clear_request(kube, model)  # left by a crash after the training started
    refused = None
    if isinstance(decision, Finish):
        reported = training_condition(decision, kind)
        finished = _finish(kube, model, spec, training, decision, reported, now)
        if telemetry is not None:
            telemetry.record_finished(namespace, name, finished)
    elif isinstance(decision, EnsureJob):  # its condition says whether it was refused
        refused = _create_job(kube, model, spec, decision.record, world.stable, [])
        condition_now = refused or training_condition(decision, kind)
        _write_training(kube, model, _changed(read, training), condition_now, now)
    else:
        after = _recorded(training, decision)
        condition_now = training_condition(decision, kind)
        written = _write_training(kube, model, _changed(read, after), condition_now, now)
        if isinstance(decision, Start):  # the number is ours before anything exists
            refused = _start(kube, written, spec, decision, world.stable, kind)
            if refused is not None:
                _write_training(kube, written, None, refused, now)
            if telemetry is not None:
                telemetry.started.labels(namespace, name, decision.record.trigger.kind).inc()
        elif isinstance(decision, Adopt):
            post_event(
                kube, model, "TrainingAdopted", f"recorded {kind} {decision.record.job} again"
            )
        elif isinstance(decision, Hold):
            log.debug("%s/%s: %s", namespace, name, describe_hold(decision, kind))
    _backoff_events(kube, model, spec, read.triggers, training.triggers)
    if refused is not None:  # after the condition it explains, once per distinct refusal
        before = find((model.get("status") or {}).get("conditions") or [], TRAINING) or {}
        if before.get("message") != refused["message"]:
            post_event(kube, model, "JobRefused", refused["message"], "Warning")
    for old in expired(versions, spec.history.keep, world.stable, world.canary):
        if kube.delete(MODEL_VERSIONS, namespace, old):
            post_event(
                kube,
                model,
                "VersionExpired",
                f"deleted ModelVersion {old}: history.keep is {spec.history.keep}",
            )


def _changed(read: TrainingStatus, after: TrainingStatus) -> TrainingStatus | None:
    """What to write of status.training: nothing when the pass changed nothing (its
    dump may differ from the stored form, e.g. defaults left out)."""
    return None if after == read else after


def _recorded(training: TrainingStatus, decision: Decision) -> TrainingStatus:
    """status.training as a Start, Adopt or Rebaseline decision leaves it (a Hold: as is)."""
    if isinstance(decision, Start | Adopt):
        return training.model_copy(
            update={"running": decision.record, "next_sequence": decision.next_sequence}
        )
    if isinstance(decision, Rebaseline):
        return training.model_copy(update={"new_data_baseline": decision.count})
    return training


def _kind_named(spec: ModelSpec, jobs: list[JobView], job: str) -> str:
    """The kind of a training's object, for its words: the one found, else the one its
    spec creates."""
    found = next((j.body["kind"] for j in jobs if j.body["metadata"]["name"] == job), None)
    if found is not None:
        return str(found)
    return kind_of(spec.retraining).kind if spec.retraining is not None else JOB.kind


def _backoff_events(
    kube: Kube,
    model: Obj,
    spec: ModelSpec,
    before: list[TriggerStatus],
    tracked: list[TriggerStatus],
) -> None:
    """An Event when a trigger kind starts backing off after one more rejected candidate
    (its bookkeeping written)."""
    if spec.retraining is None:
        return
    rejections = {s.kind: s.rejections for s in before}
    for state in tracked:
        if state.rejections > rejections.get(state.kind, 0) and state.last_rejected is not None:
            wait = rejection_wait(spec.retraining.cooldown.delta, state.rejections)
            fresh = spec.retraining.new_data
            post_event(
                kube,
                model,
                "TriggerBackoff",
                f"{state.kind} trigger backs off after {state.rejections} rejected "
                f"candidate(s) in a row: {wait} from {stamp(state.last_rejected)}"
                + (f", or until {fresh.minimum} new labelled examples" if fresh else ""),
                "Warning",
            )


def _start(
    kube: Kube, model: Obj, spec: ModelSpec, start: Start, stable: str | None, kind: str
) -> dict[str, Any] | None:
    """Create the Job of a training whose number ``model`` holds reserved (``kind``: or
    the workload); the Training condition when it was refused."""
    refused = _create_job(kube, model, spec, start.record, stable, start.failing, start.onset)
    if refused is not None:
        return refused
    trigger = start.record.trigger
    if trigger.kind == "manual":
        _clear_request(kube, model)
    post_event(
        kube,
        model,
        "TrainingStarted",
        f"training {start.record.sequence} ({kind} {start.record.job}) started by "
        f"{trigger.kind}: {trigger.reason}",
        evidence=training_evidence(start.record),
    )
    return None


def _clear_request(kube: Kube, model: Obj) -> Obj:
    """Remove the retraining request; the Model as written."""
    meta = model["metadata"]
    return kube.merge_patch(
        MODELS,
        meta["namespace"],
        meta["name"],
        {"metadata": {"annotations": {ANNOTATION_RETRAIN: None}}},
    )


def _create_job(
    kube: Kube,
    model: Obj,
    spec: ModelSpec,
    record: TrainingRecord,
    stable: str | None,
    failing: list[str],
    onset: Mapping[str, datetime] | None = None,
) -> dict[str, Any] | None:
    """Create the training's Job or workload (again, under the same name, after a crash). One
    the API server refuses (an invalid spec.retraining.job or workload, a quota, RBAC, a
    kind it does not serve) is returned as the Training condition (the reconcile writes
    it, then posts a Warning Event); the reserved training is retried at every reconcile,
    so fixing the template is enough."""
    assert spec.retraining is not None
    namespace = model["metadata"]["namespace"]
    base = kube.get(MODEL_VERSIONS, namespace, stable) if stable else None
    base_uri = (base or {}).get("spec", {}).get("uri")
    kind = kind_of(spec.retraining)
    workload = spec.retraining.workload
    if workload is None:
        job = build_job(model, spec, record, stable, failing, base_uri, onset)
        return _create(kube, JOBS, namespace, job)
    resource = resource_of(kube, kind.api_version, kind.kind)
    if resource is None:
        message = (
            f"the API server does not serve {kind.kind} in {kind.api_version} (is its CRD "
            f"installed?): {kind.kind} {record.job} not created"
        )
        return condition(TRAINING, "False", "JobRefused", message)
    # Where the trainer reports, and its right to, before the workload that needs them.
    wanted = result_configmap(model, record.job, record.sequence)
    refused = _create(kube, CONFIG_MAPS, namespace, wanted)
    if refused is not None:
        return refused
    configmap = kube.get(CONFIG_MAPS, namespace, wanted["metadata"]["name"])  # its uid
    if configmap is None:
        return None  # deleted at once: the next reconcile makes it again
    accounts = service_accounts(kind, workload, workload.template)
    for made, body in (
        (ROLES, result_role(configmap)),
        (ROLE_BINDINGS, result_binding(configmap, accounts)),
    ):
        refused = _create(kube, made, namespace, body)
        if refused is not None:
            return refused
    env = training_env(model, spec, record, stable, failing, base_uri, onset)
    meta = training_metadata(model, spec, record, stable, workload.template.get("metadata") or {})
    refused = _create(kube, resource, namespace, build_workload(kind, workload, meta, env))
    if refused is not None:
        forget(kind.api_version, kind.kind)  # ask discovery again: its CRD may be gone
    return refused


def _create(kube: Kube, resource: Resource, namespace: str, body: Obj) -> dict[str, Any] | None:
    """Create ``body``; one that exists already (made before a crash) is fine. A refusal is
    returned as the Training condition."""
    try:
        kube.create(resource, namespace, body)
    except KubeError as error:
        if error.conflict:  # AlreadyExists: made before a crash
            return None
        if error.status not in REFUSED:
            raise
        what = f"{body['kind']} {body['metadata']['name']}"
        message = f"the API server refused {what}: {error.message}"[:1000]
        return condition(TRAINING, "False", "JobRefused", message)
    return None


def _finish(
    kube: Kube,
    model: Obj,
    spec: ModelSpec,
    training: TrainingStatus,
    finish: Finish,
    reported: Obj,
    now: datetime,
) -> TrainingRecord:
    """Record the finished training (with ``reported``, the Training condition); returns
    its record, outcome included."""
    namespace = model["metadata"]["namespace"]
    record, job = finish.record, finish.job
    kind, resource = _kind_of(kube, spec, job.body)
    version = None
    failure = None
    if job.outcome == "Complete":
        try:
            source = None if kind is JOB else f"ConfigMap {result_name(record.job)}"
            message = _result(kube, namespace, model["metadata"]["name"], kind, job.body)
            result = parse_result(message, source)
        except ResultError as error:
            failure = str(error)
        else:
            manifest = build_version(model, job.body, record, result)
            version = manifest["metadata"]["name"]
            try:
                kube.create(MODEL_VERSIONS, namespace, manifest)
            except KubeError as error:
                if error.status in (400, 422):  # e.g. a result the schema refuses
                    failure = f"the API server refused ModelVersion {version}: {error.message}"
                    version = None
                elif not error.conflict:
                    raise
    else:
        failure = why_failed(kind, job.body)
    finished = record.model_copy(
        update={
            "finished": now,
            "outcome": TrainingOutcome.FAILED if failure else TrainingOutcome.SUCCEEDED,
            "version": version,
            "message": failure,
        }
    )
    recorded = training.model_copy(
        update={
            "running": None,
            "history": kept_history([*training.history, finished], now),
            "consecutive_failures": training.consecutive_failures + 1 if failure else 0,
            "totals": counted(training.totals, finished),
        }
    )
    _write_training(kube, model, recorded, reported, now)
    kube.delete(resource, namespace, record.job)  # its result is recorded; the pods go with it
    if kind.result == "configMap":  # the Role and RoleBinding go with it
        kube.delete(CONFIG_MAPS, namespace, result_name(record.job))
    if failure:
        post_event(
            kube,
            model,
            "TrainingFailed",
            f"training {record.sequence} made no ModelVersion: {failure}",
            "Warning",
            training_evidence(finished),
        )
    else:
        made = f"training {record.sequence} made {version}"
        post_event(kube, model, "TrainingSucceeded", made, evidence=training_evidence(finished))
    return finished


def validate_candidates(
    kube: Kube, model: Obj, spec: ModelSpec, versions: list[Obj], now: datetime
) -> list[str]:
    """Judge every new ModelVersion of a Model that already serves (the bootstrap version
    is not a candidate: there is no champion); returns the phases given."""
    stable = (model.get("status") or {}).get("stableVersion")
    judged: list[str] = []
    for version in awaiting_judgement(versions, stable):
        meta = version["metadata"]
        try:
            version_spec = ModelVersionSpec.model_validate(version["spec"])
        except ValidationError:
            continue
        trigger = version_spec.lineage.trigger
        result = validate(spec, version_spec.metrics, trigger.failing if trigger else [])
        phase = "Validated" if result.validated else "Rejected"
        gates = [c.to_status() for c in result.checks]
        kube.merge_patch(
            MODEL_VERSIONS,
            meta["namespace"],
            meta["name"],
            {
                "status": {
                    "phase": phase,
                    "reason": "GatesPassed" if result.validated else "GatesFailed",
                    "message": result.summary()[:1024],
                    "gates": gates,
                    "lastTransitionTime": stamp(now),
                }
            },
            sub="status",
        )
        text = f"{meta['name']} {phase.lower()} against {stable}: {result.summary()}"
        evidence = gate_evidence(meta["name"], gates)
        post_event(kube, model, phase, text, "Normal" if result.validated else "Warning", evidence)
        judged.append(phase)
    return judged
