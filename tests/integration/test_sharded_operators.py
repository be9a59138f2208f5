"""Two shards, a and b, of operator replicas with leader election (``--shard``,
``--leader-elect``), speaking as the ServiceAccount of a release installed with
``shards: [a, b]``, so the chart's RBAC for sharded Leases is proved enough. Each shard
acts only on the Models labelled for it; killing a's leader hands a's Models to a's
standby and leaves b's Lease alone; relabelling a Model from a to b moves it without a
second training Job or a weight change; a ModelVersion labelled for the wrong shard comes
back to its Model's.

What a replica acted on is read from its log: every action posts an Event, and posting
one logs a line ``<Reason> <namespace>/<model>: <message>``; what the shards did, from the
objects themselves (Deployments, Jobs, Leases, the canary's replica counts)."""

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from localcluster.chart import OPERATOR_NAMESPACE, operator_identity
from localcluster.controlplane import ControlPlane, Identity
from localcluster.kubelet import TRAINING_JOB, finish_running_training
from localcluster.processes import Process
from localcluster.waiting import wait_for
from tests.harness import canary
from tests.harness.world import create_served_model, model

from modelloop.api.resources import MODEL_VERSIONS, MODELS
from modelloop.api.vocabulary import ANNOTATION_ABORT, ANNOTATION_RETRAIN, API_VERSION, LABEL_SHARD
from modelloop.control.leader import LEASES
from modelloop.control.sharding import Shard
from modelloop.kube.rest import DEPLOYMENTS, EVENTS, HTTPROUTES, SERVICES, Kube, Obj, Resource

JOBS = Resource("batch", "v1", "jobs")
RELEASE = "sharded"
BASE = f"{RELEASE}-modelloop"  # the chart's full name of the release: the Leases' stem
SHARDS = ("a", "b")


@pytest.fixture(scope="module")
def identity(control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Identity:
    """The ServiceAccount and RBAC of a release with shards a and b (its Leader Role names
    the sharded Leases), beside the suite's own."""
    workdir = tmp_path_factory.mktemp("sharded")
    shards = "{" + ",".join(SHARDS) + "}"
    return operator_identity(
        control_plane.admin, workdir, "--set", f"shards={shards}", release=RELEASE
    )


class Shards:
    """Starts a shard's replicas and reads its Lease."""

    def __init__(self, kube: Kube, operator: Callable[..., Process], identity: Identity) -> None:
        self.kube, self.operator, self.identity = kube, operator, identity
        for shard in SHARDS:  # none left by an earlier run
            kube.delete(LEASES, OPERATOR_NAMESPACE, self.lease(shard))

    @staticmethod
    def lease(shard: str) -> str:
        return Shard(shard).lease_name(BASE)

    def start(self, shard: str, replicas: int = 2, *flags: str) -> list[Process]:
        return [
            self.operator(
                f"--leader-elect={OPERATOR_NAMESPACE}/{BASE}",
                f"--shard={shard}",
                *flags,
                env={"KUBECONFIG": str(self.identity.kubeconfig)},
            )
            for _ in range(replicas)
        ]

    def holder(self, shard: str) -> tuple[str, int]:
        """The Lease's holder identity and transitions ("" while there is none)."""
        spec = (self.kube.get(LEASES, OPERATOR_NAMESPACE, self.lease(shard)) or {}).get("spec")
        return str((spec or {}).get("holderIdentity") or ""), int(
            (spec or {}).get("leaseTransitions") or 0
        )

    def leader(self, shard: str, replicas: list[Process]) -> Process:
        """The replica holding the shard's Lease (identity: host and pid), once elected."""
        holding = wait_for(
            lambda: [r for r in replicas if self.holder(shard)[0].endswith(f"-{r.pid}")],
            30,
            f"shard {shard}'s leader elected",
        )
        return holding[0]


@pytest.fixture
def shards(kube: Kube, operator: Callable[..., Process], identity: Identity) -> Shards:
    return Shards(kube, operator, identity)


def acted(process: Process, namespace: str, model: str, since: int = 0) -> bool:
    """Whether the replica posted an Event about the Model (after ``since`` characters of
    its log)."""
    event = re.compile(rf"^[A-Z][A-Za-z]+ {re.escape(namespace)}/{re.escape(model)}: ", re.M)
    return event.search(process.log_text()[since:]) is not None


def await_acted(process: Process, namespace: str, model: str, since: int = 0) -> None:
    """Events are posted after the writes they tell of: wait for the replica's word."""
    wait_for(
        lambda: acted(process, namespace, model, since),
        30,
        f"{process.name}'s Events about {model}",
    )


def standing_by(process: Process) -> None:
    wait_for(lambda: "waiting to lead" in process.log_text(), 30, "a standby waiting to lead")


def label(kube: Kube, namespace: str, model: str, shard: str) -> None:
    kube.merge_patch(MODELS, namespace, model, {"metadata": {"labels": {LABEL_SHARD: shard}}})


def test_each_shard_acts_on_its_models_and_its_standby_takes_over(
    kube: Kube, namespace: str, shards: Shards
) -> None:
    models = {"fraud-a": "a", "fraud-b": "b", "fraud-none": None}
    for name, shard in models.items():
        create_served_model(kube, namespace, name, {})
        if shard is not None:
            label(kube, namespace, name, shard)

    # Shard a alone: it serves its Model, and not b's, which was there as long.
    a_replicas = shards.start("a")
    wait_for(lambda: kube.get(DEPLOYMENTS, namespace, "fraud-a-v1"), 60, "fraud-a served")
    a_leader = shards.leader("a", a_replicas)
    [a_standby] = [r for r in a_replicas if r is not a_leader]
    await_acted(a_leader, namespace, "fraud-a")
    assert not acted(a_leader, namespace, "fraud-b"), a_leader.log_tail()
    assert kube.get(DEPLOYMENTS, namespace, "fraud-b-v1") is None

    b_replicas = shards.start("b")
    wait_for(lambda: kube.get(DEPLOYMENTS, namespace, "fraud-b-v1"), 60, "fraud-b served")
    b_leader = shards.leader("b", b_replicas)
    [b_standby] = [r for r in b_replicas if r is not b_leader]
    await_acted(b_leader, namespace, "fraud-b")
    for standby in (a_standby, b_standby):  # it may still be starting: wait for its word
        standing_by(standby)
    assert not acted(a_leader, namespace, "fraud-b"), a_leader.log_tail()
    assert not acted(b_leader, namespace, "fraud-a"), b_leader.log_tail()
    for process in (*a_replicas, *b_replicas):  # no default shard runs: nobody's Model
        assert not acted(process, namespace, "fraud-none"), process.log_tail()
    assert kube.get(DEPLOYMENTS, namespace, "fraud-none-v1") is None
    for standby in (a_standby, b_standby):
        assert not any(acted(standby, namespace, m) for m in models), standby.log_tail()

    b_lease = shards.holder("b")
    a_leader.kill()
    kube.delete(DEPLOYMENTS, namespace, "fraud-a-v1")  # work only a's leader does
    wait_for(lambda: "leading as" in a_standby.log_text(), 40, "a's standby takes a's Lease")
    wait_for(lambda: kube.get(DEPLOYMENTS, namespace, "fraud-a-v1"), 30, "a's new leader acts")
    assert shards.leader("a", a_replicas) is a_standby
    assert shards.holder("b") == b_lease  # same holder, no transition
    assert "leading as" not in b_standby.log_text()
    assert not acted(a_standby, namespace, "fraud-b"), a_standby.log_tail()
    assert not acted(b_leader, namespace, "fraud-a"), b_leader.log_tail()
    # Each shard labelled its Model's version, made without the label (its watch of
    # ModelVersions selects its own from then on); nobody labelled fraud-none's.
    assert version_shards(kube, namespace) == {
        "fraud-a-v1": "a",
        "fraud-b-v1": "b",
        "fraud-none-v1": None,
    }


def labelled_version(model: str, name: str, shard: str) -> Obj:
    """A ModelVersion made with a shard label, as a manifest that carries one would."""
    return {
        "apiVersion": API_VERSION,
        "kind": "ModelVersion",
        "metadata": {"name": name, "labels": {LABEL_SHARD: shard}},
        "spec": {"model": model, "uri": f"s3://m/{name}"},
    }


def version_shards(kube: Kube, namespace: str, model: str | None = None) -> dict[str, str | None]:
    """The shard label of each ModelVersion (of one Model)."""
    return {
        v["metadata"]["name"]: (v["metadata"].get("labels") or {}).get(LABEL_SHARD)
        for v in kube.list(MODEL_VERSIONS, namespace)
        if model is None or v["spec"]["model"] == model
    }


def replicas_of(kube: Kube, namespace: str, model: str) -> dict[str, tuple[int, str]]:
    """Each of the Model's Deployments: (spec.replicas — the weight, with replicas
    traffic — and the whole spec, as JSON: any write of it). Not the generation: a
    Deployment's also counts its annotations' changes, e.g. ModelLoop's applied hash."""
    return {
        d["metadata"]["name"]: (d["spec"]["replicas"], json.dumps(d["spec"], sort_keys=True))
        for d in kube.list(DEPLOYMENTS, namespace, f"modelloop.dev/model={model}")
    }


def reconciled(kube: Kube, namespace: str, model: str) -> None:
    """Edit the Model's spec (its evaluation interval) and wait until a reconcile of the
    edit reported it (status.observedGeneration): proof that its shard looked."""
    body = kube.get(MODELS, namespace, model) or {}
    seconds = 2 + body["metadata"]["generation"]
    patch = {"spec": {"evaluationInterval": f"{seconds}s"}}
    edited = kube.merge_patch(MODELS, namespace, model, patch)["metadata"]["generation"]
    wait_for(
        lambda: (
            ((kube.get(MODELS, namespace, model) or {}).get("status") or {}).get(
                "observedGeneration"
            )
            == edited
        ),
        60,
        f"{model}'s generation {edited} reconciled",
    )


def route_of(kube: Kube, namespace: str, traffic: str) -> tuple[str, str] | None:
    """The managed HTTPRoute's shard label and spec (as JSON: any write of it); None on
    a provider without one."""
    if traffic != "gateway-managed":
        return None
    route = kube.get(HTTPROUTES, namespace, canary.MODEL) or {}
    labels = route.get("metadata", {}).get("labels") or {}
    return labels.get(LABEL_SHARD, ""), json.dumps(route.get("spec"), sort_keys=True)


@pytest.mark.parametrize("traffic", ["replicas", "gateway-managed"])
def test_a_relabelled_model_moves_without_a_second_training_or_a_weight_change(
    kube: Kube, namespace: str, shards: Shards, traffic: str, request: pytest.FixtureRequest
) -> None:
    """On the replicas provider the weights are the Deployments' replica counts; on a
    managed HTTPRoute, the route's, and the route moves with its Model."""
    if traffic != "replicas":
        request.getfixturevalue("traffic_crds")
    # fraud trains (its pod held Running); churn's canary holds at its first step: its
    # metrics have no provider here, so every analysis is inconclusive, and it pauses.
    retraining: dict[str, Any] = {
        "automation": "retrain",
        "retraining": {
            "cooldown": "1h",
            "dataWindow": "7d",
            "outputURI": "s3://m/fraud",
            "job": TRAINING_JOB,
        },
    }
    create_served_model(kube, namespace, "fraud", retraining)
    rollout = canary.rollout(maxInconclusive=2, onInconclusive="pause")
    kube.create(MODELS, namespace, canary.model(canary.TRAFFIC[traffic], rollout=rollout))
    kube.create(MODEL_VERSIONS, namespace, canary.version(canary.STABLE))
    for name in ("fraud", canary.MODEL):
        label(kube, namespace, name, "a")
    [a] = shards.start("a", replicas=1)
    [b] = shards.start("b", replicas=1)
    wait_for(lambda: shards.holder("a")[0] and shards.holder("b")[0], 30, "both shards elected")

    def jobs() -> list[str]:
        return [
            j["metadata"]["uid"] for j in kube.list(JOBS, namespace, "modelloop.dev/model=fraud")
        ]

    kube.merge_patch(
        MODELS, namespace, "fraud", {"metadata": {"annotations": {ANNOTATION_RETRAIN: "test"}}}
    )
    [job] = wait_for(jobs, 60, "fraud's training Job")
    [made] = kube.list(JOBS, namespace, "modelloop.dev/model=fraud")
    assert made["metadata"]["labels"][LABEL_SHARD] == "a"  # a's Job watch selects it
    wait_for(lambda: kube.get(DEPLOYMENTS, namespace, canary.STABLE), 60, "churn-v1 served")
    kube.create(MODEL_VERSIONS, namespace, canary.version(canary.CANARY))
    wait_for(  # a user's new version, unplaced: a's second watch brings it, and a labels it
        lambda: version_shards(kube, namespace, canary.MODEL)[canary.CANARY] == "a",
        30,
        "the canary's version labelled for a",
    )

    def canary_status() -> dict[str, Any]:
        status = (kube.get(MODELS, namespace, canary.MODEL) or {}).get("status") or {}
        return dict(status.get("canary") or {})

    def paused() -> dict[str, Any]:
        status = canary_status()
        return status if status.get("phase") == "Paused" else {}

    held = wait_for(paused, 90, "the canary paused at its first step")
    assert held["weight"] == 10
    read_weights = canary.weight_reader(kube, namespace, traffic)
    assert canary.percent(read_weights()) == {canary.STABLE: 90, canary.CANARY: 10}
    weights = replicas_of(kube, namespace, canary.MODEL)
    route = route_of(kube, namespace, traffic)
    assert route is None or route[0] == "a"

    # Move both to b.
    since, since_b = len(a.log_text()), len(b.log_text())
    for name in ("fraud", canary.MODEL):
        label(kube, namespace, name, "b")
    for name in ("fraud", canary.MODEL):
        reconciled(kube, namespace, name)
    assert jobs() == [job]  # the same Job: relabelled, not made again
    assert replicas_of(kube, namespace, canary.MODEL) == weights
    assert canary.percent(read_weights()) == {canary.STABLE: 90, canary.CANARY: 10}
    assert canary_status()["weight"] == 10

    def relabelled(name: str) -> Callable[[], bool]:
        """b's watches select the Model's Deployments, Services and training Job by its
        shard label: b relabels them (metadata only: the generations above did not
        change, and the Job runs on)."""

        def done() -> bool:
            children = [
                o
                for kind in (DEPLOYMENTS, SERVICES, JOBS)
                for o in kube.list(kind, namespace, f"modelloop.dev/model={name}")
            ]
            return bool(children) and all(
                o["metadata"]["labels"].get(LABEL_SHARD) == "b" for o in children
            )

        return done

    for name in ("fraud", canary.MODEL):
        wait_for(relabelled(name), 30, f"{name}'s Deployments and Services for b")
        assert set(version_shards(kube, namespace, name).values()) == {"b"}
    if route is not None:  # relabelled for b, its rules as a left them
        wait_for(lambda: route_of(kube, namespace, traffic) == ("b", route[1]), 30, "route for b")

    # b finishes what a began: it records the training's result, and rolls the canary back
    # when told (its metrics never conclude here: the only way on is an operator's word).
    result = json.dumps({"artifactURI": "s3://m/fraud/2/model.joblib"})
    finish_running_training(kube, namespace, result, 60)
    wait_for(lambda: kube.get(MODEL_VERSIONS, namespace, "fraud-v2"), 60, "fraud-v2 recorded")
    abort = {"metadata": {"annotations": {ANNOTATION_ABORT: canary.CANARY}}}
    kube.merge_patch(MODELS, namespace, canary.MODEL, abort)

    def stable_only() -> bool:
        return canary.percent(read_weights()) == {canary.STABLE: 100}

    wait_for(stable_only, 60, "the canary rolled back, by b")
    assert set(jobs()) <= {job}  # deleted once its result was recorded: no other came
    training = ((kube.get(MODELS, namespace, "fraud") or {}).get("status") or {})["training"]
    [record] = training["history"]
    assert (record["outcome"], record["version"]) == ("Succeeded", "fraud-v2")
    assert training["nextSequence"] == 3  # fraud-v1 held 1, the one training 2
    versions = kube.list(MODEL_VERSIONS, namespace)
    trained = [v["metadata"]["name"] for v in versions if v["spec"]["model"] == "fraud"]
    assert sorted(trained) == ["fraud-v1", "fraud-v2"]
    for name in ("fraud", canary.MODEL):
        await_acted(b, namespace, name, since_b)
        assert not acted(a, namespace, name, since), a.log_tail()


def version_events(kube: Kube, namespace: str, version: str) -> list[str]:
    """The reasons of the Events about a ModelVersion, in order."""
    return [
        e["reason"]
        for e in kube.list(EVENTS, namespace)
        if e["involvedObject"]["kind"] == "ModelVersion" and e["involvedObject"]["name"] == version
    ]


def test_a_version_labelled_for_the_wrong_shard_comes_back_to_its_models_shard(
    kube: Kube, namespace: str, shards: Shards
) -> None:
    """A label for shard b on a version of a's Model, by hand or put back by a GitOps tool:
    a, told by its watch that the version left, labels it back at once, and its Deployment
    is never touched. A version made with b's label for a Model b does not hold: b unplaces
    it within a few resync periods, and the Model's shard, a, places it. One labelled for
    a shard no instance runs is placed by a at its next full list."""
    create_served_model(kube, namespace, "fraud", {})
    label(kube, namespace, "fraud", "a")
    [a] = shards.start("a", 1, "--resync-period=2")
    [b] = shards.start("b", 1, "--resync-period=2")
    wait_for(lambda: shards.holder("a")[0] and shards.holder("b")[0], 30, "both shards elected")
    wait_for(lambda: kube.get(DEPLOYMENTS, namespace, "fraud-v1"), 60, "fraud-v1 served")
    wait_for(lambda: version_shards(kube, namespace) == {"fraud-v1": "a"}, 30, "fraud-v1 for a")
    served = replicas_of(kube, namespace, "fraud")
    uid = (kube.get(DEPLOYMENTS, namespace, "fraud-v1") or {})["metadata"]["uid"]

    wrong = {"metadata": {"labels": {LABEL_SHARD: "b"}}}
    kube.merge_patch(MODEL_VERSIONS, namespace, "fraud-v1", wrong)
    wait_for(
        lambda: "Relabelled" in version_events(kube, namespace, "fraud-v1"),
        15,
        "a labels fraud-v1 back, and says so",
    )
    assert version_shards(kube, namespace) == {"fraud-v1": "a"}
    assert replicas_of(kube, namespace, "fraud") == served
    assert (kube.get(DEPLOYMENTS, namespace, "fraud-v1") or {})["metadata"]["uid"] == uid

    kube.create(MODEL_VERSIONS, namespace, labelled_version("churn", "churn-v1", "b"))
    wait_for(
        lambda: "Unplaced" in version_events(kube, namespace, "churn-v1"),
        30,
        "b unplaces churn-v1, whose Model it does not hold",
    )
    churn = model({})
    churn["metadata"] |= {"name": "churn", "labels": {LABEL_SHARD: "a"}}
    kube.create(MODELS, namespace, churn)
    wait_for(lambda: kube.get(DEPLOYMENTS, namespace, "churn-v1"), 60, "churn-v1 served by a")
    assert version_shards(kube, namespace, "churn") == {"churn-v1": "a"}

    # Labelled for a shard no instance runs: no watch of any shard selects it; a's next
    # full list (every 20 resync periods, 40 s here) takes it, and a places it.
    kube.create(MODEL_VERSIONS, namespace, labelled_version("fraud", "fraud-v2", "zz"))
    wait_for(
        lambda: version_shards(kube, namespace, "fraud").get("fraud-v2") == "a",
        90,
        "a's relist finds fraud-v2 and labels it for a",
    )
    assert "Relabelled" in version_events(kube, namespace, "fraud-v2")
    for model_name in ("fraud", "churn"):
        assert not acted(b, namespace, model_name), b.log_tail()
    await_acted(a, namespace, "churn")
