"""Serving through a KServe InferenceService on the real API server: KServe's own CRD
(from its Go module), the harness playing KServe's controller openly (localcluster/kserve.py),
ModelLoop's router writing splits, and the operator serving a Model through it."""

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from localcluster.kserve import INFERENCE_SERVICES, FakeKServe
from localcluster.waiting import wait_for

from modelloop.api.model import ModelSpec
from modelloop.api.resources import MODEL_VERSIONS, MODELS
from modelloop.api.vocabulary import GROUP, VERSION
from modelloop.kube.rest import DEPLOYMENTS, EVENTS, SERVICES, Kube, KubeError
from modelloop.rollout.router import KServeRouter, router_for
from modelloop.rollout.traffic import RouteError, Split
from modelloop.serving.kserve import rolled_out, serves_ready

Obj = dict[str, Any]
MODEL = "churn"
V1, V2 = "churn-v1", "churn-v2"
URIS = {V1: "s3://models/churn/v1", V2: "s3://models/churn/v2"}
PREDICTOR = {
    "minReplicas": 1,
    "model": {
        "modelFormat": {"name": "sklearn"},
        "runtime": "kserve-sklearnserver",
        "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
    },
}


@pytest.fixture
def fake_kserve(kube: Kube, namespace: str, kserve_crd: list[str]) -> Iterator[FakeKServe]:
    kserve = FakeKServe(kube, namespace, ready_after=0.5).start()
    yield kserve
    kserve.stop()


def model(kserve: Obj, **spec: Any) -> Obj:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Model",
        "metadata": {"name": MODEL},
        "spec": {"serving": {"kserve": kserve}, **spec},
    }


def version(name: str) -> Obj:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelVersion",
        "metadata": {"name": name},
        "spec": {"model": MODEL, "uri": URIS[name]},
    }


def isvc_of(kube: Kube, namespace: str, name: str = MODEL) -> Obj:
    found = kube.get(INFERENCE_SERVICES, namespace, name)
    assert found is not None, f"InferenceService {name}"
    return found


def predictor(kube: Kube, namespace: str, name: str = MODEL) -> Obj:
    spec: Obj = isvc_of(kube, namespace, name)["spec"]["predictor"]
    return spec


def test_the_crd_is_kserves_and_validates_what_the_router_writes(
    kube: Kube, namespace: str, kserve_crd: list[str]
) -> None:
    assert kserve_crd == ["inferenceservices.serving.kserve.io"]
    bad = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "bad"},
        "spec": {"predictor": {"canaryTrafficPercent": "ten"}},
    }
    with pytest.raises(KubeError) as refused:
        kube.create(INFERENCE_SERVICES, namespace, bad)
    assert refused.value.status == 422
    assert "canaryTrafficPercent" in refused.value.message


def walk(
    kube: Kube, namespace: str, fake: FakeKServe, body: Obj
) -> tuple[KServeRouter, Obj, Callable[[Split], None]]:
    created = kube.create(MODELS, namespace, body)
    router = router_for(ModelSpec.model_validate(created["spec"]), URIS)
    assert isinstance(router, KServeRouter)

    def write(split: Split) -> None:
        router.write(kube, created, split, set(URIS))

    return router, created, write


def rolled_out_revision(kube: Kube, namespace: str) -> str | None:
    status = isvc_of(kube, namespace).get("status") or {}
    revision: str | None = status["components"]["predictor"].get("latestRolledoutRevision")
    return revision


def settled(kube: Kube, namespace: str, name: str = MODEL) -> None:
    """Wait until the predictor as written has all the traffic (a canary may start)."""
    wait_for(lambda: rolled_out(isvc_of(kube, namespace, name)), 30, f"{name} rolled out")


def weights_become(fake: FakeKServe, expected: dict[str, int], name: str = MODEL) -> None:
    reader = fake.weight_reader(name)
    wait_for(lambda: reader() == expected, 30, f"the data plane sends by {expected}")


def test_a_canary_on_an_inference_service_starts_at_zero_then_walks_and_is_promoted(
    kube: Kube, namespace: str, fake_kserve: FakeKServe
) -> None:
    router, created, write = walk(kube, namespace, fake_kserve, model({"predictor": PREDICTOR}))
    write(Split(V1, None, 0))
    isvc = isvc_of(kube, namespace)
    assert isvc["metadata"]["ownerReferences"][0]["uid"] == created["metadata"]["uid"]
    assert isvc["metadata"]["labels"]["modelloop.dev/model"] == MODEL
    assert predictor(kube, namespace)["model"]["storageUri"] == URIS[V1]
    assert predictor(kube, namespace)["model"]["runtime"] == "kserve-sklearnserver"
    assert "canaryTrafficPercent" not in predictor(kube, namespace)
    write(Split(V1, V2, 0))  # not before v1's revision is rolled out: v1 stays
    assert predictor(kube, namespace)["model"]["storageUri"] == URIS[V1]
    weights_become(fake_kserve, {V1: 100})
    settled(kube, namespace)

    write(Split(V1, V2, 0))  # the canary's revision starts, with no traffic
    assert predictor(kube, namespace)["canaryTrafficPercent"] == 0
    assert predictor(kube, namespace)["labels"]["modelloop.dev/version"] == V2
    wait_for(lambda: serves_ready(isvc_of(kube, namespace), V2), 30, "the canary's revision")
    weights_become(fake_kserve, {V1: 100})
    write(Split(V1, V2, 10))
    weights_become(fake_kserve, {V1: 90, V2: 10})
    assert router.read(kube, created, set(URIS)) == Split(V1, V2, 10)
    again = isvc_of(kube, namespace)["metadata"]["resourceVersion"]
    write(Split(V1, V2, 10))  # idempotent: nothing written
    assert isvc_of(kube, namespace)["metadata"]["resourceVersion"] == again

    write(Split(V2, None, 0))  # the promotion: all of it to the canary's revision
    assert "canaryTrafficPercent" not in predictor(kube, namespace)
    weights_become(fake_kserve, {V2: 100})
    assert router.read(kube, created, set(URIS)) == Split(V2, None, 0)
    revisions = [r.name for r in fake_kserve.revisions(MODEL)]
    assert revisions == ["churn-predictor-00001", "churn-predictor-00002"]
    wait_for(lambda: rolled_out_revision(kube, namespace) == revisions[1], 30, "v2 rolled out")


def test_a_rollback_never_sends_the_canary_all_traffic_while_stable_restarts(
    kube: Kube, namespace: str, fake_kserve: FakeKServe
) -> None:
    _, _, write = walk(kube, namespace, fake_kserve, model({"predictor": PREDICTOR}))
    write(Split(V1, None, 0))
    settled(kube, namespace)
    write(Split(V1, V2, 0))
    wait_for(lambda: serves_ready(isvc_of(kube, namespace), V2), 30, "the canary's revision")
    write(Split(V1, V2, 50))
    weights_become(fake_kserve, {V1: 50, V2: 50})

    fake_kserve.hold = True  # stable's new revision takes its time to start
    write(Split(V1, None, 0))
    assert predictor(kube, namespace)["canaryTrafficPercent"] == 0
    assert predictor(kube, namespace)["model"]["storageUri"] == URIS[V1]
    weights_become(fake_kserve, {V1: 100})  # on the rolled-out revision, v1's
    write(Split(V1, None, 0))  # not ready yet: the percent stays
    assert predictor(kube, namespace)["canaryTrafficPercent"] == 0
    reader = fake_kserve.weight_reader(MODEL)
    assert reader() == {V1: 100}

    fake_kserve.release()
    wait_for(lambda: serves_ready(isvc_of(kube, namespace), V1), 30, "stable's new revision")
    write(Split(V1, None, 0))
    assert "canaryTrafficPercent" not in predictor(kube, namespace)
    wait_for(
        lambda: rolled_out_revision(kube, namespace) == "churn-predictor-00003",
        30,
        "v1's new revision rolled out",
    )
    assert fake_kserve.weight_reader(MODEL)() == {V1: 100}


def users_isvc(namespace: str, name: str = "churn-isvc") -> Obj:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"team": "churn"},
            "annotations": {"serving.kserve.io/deploymentMode": "Serverless"},
        },
        "spec": {
            "predictor": {
                "serviceAccountName": "churn-reader",
                "model": {"modelFormat": {"name": "sklearn"}, "storageUri": "s3://old"},
            }
        },
    }


def test_an_adopted_inference_service_changes_only_in_modelloops_fields(
    kube: Kube, namespace: str, fake_kserve: FakeKServe
) -> None:
    router, created, write = walk(kube, namespace, fake_kserve, model({"adopt": "churn-isvc"}))
    with pytest.raises(RouteError, match=f"InferenceService {namespace}/churn-isvc not found"):
        write(Split(V1, None, 0))
    kube.create(INFERENCE_SERVICES, namespace, users_isvc(namespace))
    write(Split(V1, None, 0))
    isvc = isvc_of(kube, namespace, "churn-isvc")
    assert "ownerReferences" not in isvc["metadata"]
    assert isvc["metadata"]["labels"]["team"] == "churn"
    assert isvc["metadata"]["labels"]["modelloop.dev/model"] == MODEL
    spec = isvc["spec"]["predictor"]
    assert spec["serviceAccountName"] == "churn-reader"
    assert spec["model"] == {"modelFormat": {"name": "sklearn"}, "storageUri": URIS[V1]}
    assert "canaryTrafficPercent" in spec  # another artifact: 0% until its revision runs
    wait_for(lambda: serves_ready(isvc_of(kube, namespace, "churn-isvc"), V1), 30, "v1 runs")
    write(Split(V1, None, 0))
    assert "canaryTrafficPercent" not in predictor(kube, namespace, "churn-isvc")
    weights_become(fake_kserve, {V1: 100}, "churn-isvc")
    settled(kube, namespace, "churn-isvc")
    write(Split(V1, V2, 0))
    wait_for(lambda: serves_ready(isvc_of(kube, namespace, "churn-isvc"), V2), 30, "v2 runs")
    write(Split(V1, V2, 10))
    weights_become(fake_kserve, {V1: 90, V2: 10}, "churn-isvc")
    assert router.read(kube, created, set(URIS)) == Split(V1, V2, 10)


def test_raw_deployment_mode_refuses_a_split_with_a_canary(
    kube: Kube, namespace: str, fake_kserve: FakeKServe
) -> None:
    body = model({"predictor": PREDICTOR, "deploymentMode": "RawDeployment"})
    _, _, write = walk(kube, namespace, fake_kserve, body)
    write(Split(V1, None, 0))
    weights_become(fake_kserve, {V1: 100})
    with pytest.raises(RouteError, match="RawDeployment mode cannot split traffic"):
        write(Split(V1, V2, 10))
    assert predictor(kube, namespace)["model"]["storageUri"] == URIS[V1]


# --------------------------------------------------------------------------- the operator


def model_condition(kube: Kube, namespace: str, type_: str) -> Obj:
    body = kube.get(MODELS, namespace, MODEL) or {}
    conditions = (body.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == type_), {})


def condition_with(kube: Kube, namespace: str, type_: str, reason: str) -> Obj:
    """The Model's condition ``type_`` once its reason is ``reason`` ({} until then)."""
    found = model_condition(kube, namespace, type_)
    return found if found.get("reason") == reason else {}


def phase_of(kube: Kube, namespace: str, name: str) -> str | None:
    phase: str | None = ((kube.get(MODEL_VERSIONS, namespace, name) or {}).get("status") or {}).get(
        "phase"
    )
    return phase


def test_the_operator_serves_the_stable_version_through_the_inference_service(
    kube: Kube, namespace: str, fake_kserve: FakeKServe, operator: Callable[..., Any]
) -> None:
    fake_kserve.hold = True
    operator()
    kube.create(MODELS, namespace, model({"predictor": PREDICTOR}))
    kube.create(MODEL_VERSIONS, namespace, version(V1))
    wait_for(lambda: phase_of(kube, namespace, V1) == "Serving", 60, "v1 Serving")
    wait_for(
        lambda: (
            model_condition(kube, namespace, "Ready").get("reason") == "InferenceServiceProgressing"
        ),
        60,
        "Ready Unknown while the revision starts",
    )
    fake_kserve.release()
    ready = wait_for(
        lambda: condition_with(kube, namespace, "Ready", "InferenceServiceReady"),
        60,
        "the Model Ready with its InferenceService",
    )
    assert ready["status"] == "True"
    assert predictor(kube, namespace)["model"]["storageUri"] == URIS[V1]
    selector = f"modelloop.dev/model={MODEL}"
    assert kube.list(DEPLOYMENTS, namespace, selector) == []
    assert kube.list(SERVICES, namespace, selector) == []


def test_raw_mode_keeps_serving_stable_and_says_why_no_canary_starts(
    kube: Kube, namespace: str, fake_kserve: FakeKServe, operator: Callable[..., Any]
) -> None:
    operator()
    body = model({"predictor": PREDICTOR, "deploymentMode": "RawDeployment"}, automation="promote")
    kube.create(MODELS, namespace, body)
    kube.create(MODEL_VERSIONS, namespace, version(V1))
    wait_for(lambda: phase_of(kube, namespace, V1) == "Serving", 60, "v1 Serving")
    kube.create(MODEL_VERSIONS, namespace, version(V2))
    progressing = wait_for(
        lambda: condition_with(kube, namespace, "Progressing", "CanaryUnsupported"),
        60,
        "the refused canary explained",
    )
    assert progressing["status"] == "False"
    assert "RawDeployment" in progressing["message"]
    assert phase_of(kube, namespace, V2) == "Validated"
    assert predictor(kube, namespace)["model"]["storageUri"] == URIS[V1]
    weights_become(fake_kserve, {V1: 100})


def test_a_lost_canary_status_is_read_back_from_the_inference_service(
    kube: Kube, namespace: str, fake_kserve: FakeKServe, operator: Callable[..., Any]
) -> None:
    """No metrics provider here: the canary takes its first weight and waits there for an
    analysis, where the operator is killed and the Model's status.canary lost."""
    first = operator()
    steps = {"steps": [{"weight": 20, "duration": "1m"}, {"weight": 100}]}
    kube.create(
        MODELS, namespace, model({"predictor": PREDICTOR}, automation="promote", rollout=steps)
    )
    kube.create(MODEL_VERSIONS, namespace, version(V1))
    wait_for(lambda: phase_of(kube, namespace, V1) == "Serving", 60, "v1 Serving")
    kube.create(MODEL_VERSIONS, namespace, version(V2))
    weights_become(fake_kserve, {V1: 80, V2: 20})
    first.kill()
    kube.merge_patch(MODELS, namespace, MODEL, {"status": {"canary": None}}, sub="status")
    operator()

    def canary() -> Obj:
        found: Obj = ((kube.get(MODELS, namespace, MODEL) or {}).get("status") or {}).get(
            "canary"
        ) or {}
        return found

    resumed = wait_for(canary, 60, "the canary resumed from the world")
    assert (resumed["version"], resumed["step"], resumed["weight"]) == (V2, 0, 20)
    reasons = [
        e["reason"] for e in kube.list(EVENTS, namespace) if e["involvedObject"]["name"] == MODEL
    ]
    assert (reasons.count("RolloutStarted"), reasons.count("WeightChanged")) == (1, 1)
    assert predictor(kube, namespace)["canaryTrafficPercent"] == 20
    assert phase_of(kube, namespace, V2) == "Canary"
