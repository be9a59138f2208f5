"""The operator serves a Model's stable version on a real control plane."""

from pathlib import Path
from typing import Any

import yaml
from localcluster.waiting import wait_for
from tests.harness.admission import deny_operator_writes

from modelloop.api.resources import MODEL_VERSIONS, MODELS
from modelloop.api.vocabulary import GROUP, VERSION
from modelloop.kube.rest import DEPLOYMENTS, SERVICES, Kube, Resource

EVENTS = Resource("", "v1", "events")
EXAMPLES = Path(__file__).parents[2] / "examples"
SELECTOR = "modelloop.dev/model=fraud-detector"


def example(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((EXAMPLES / name).read_text())
    return loaded


def version(name: str, uri: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelVersion",
        "metadata": {"name": name},
        "spec": {"model": "fraud-detector", "uri": uri},
    }


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any]:
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c["type"] == type_:
            return dict(c)
    return {}


def model_condition(kube: Kube, namespace: str, type_: str) -> dict[str, Any]:
    return condition(kube.get(MODELS, namespace, "fraud-detector"), type_)


def names(kube: Kube, resource: Resource, namespace: str) -> list[str]:
    return sorted(o["metadata"]["name"] for o in kube.list(resource, namespace, SELECTOR))


def test_first_version_is_served_and_ready_follows_the_deployment(
    kube: Kube, namespace: str, operator: Any
) -> None:
    operator()
    model = kube.create(MODELS, namespace, example("fraud-detector.yaml"))
    kube.create(MODEL_VERSIONS, namespace, example("fraud-detector-v1.yaml"))

    wait_for(
        lambda: model_condition(kube, namespace, "Ready").get("status") == "True",
        timeout=90,
        describe="Model Ready",
    )
    deployment = kube.get(DEPLOYMENTS, namespace, "fraud-detector-v1")
    assert deployment is not None
    assert condition(deployment, "Available")["status"] == "True"
    assert deployment["spec"]["selector"]["matchLabels"] == {
        "modelloop.dev/model": "fraud-detector",
        "modelloop.dev/version": "fraud-detector-v1",
    }
    assert deployment["spec"]["replicas"] == 2
    owner = deployment["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == (
        "Model",
        model["metadata"]["uid"],
        True,
    )
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env == {
        "MODEL_NAME": "fraud-detector",
        "MODEL_VERSION": "fraud-detector-v1",
        "MODEL_URI": "s3://models/fraud-detector/v1/model.joblib",
    }
    assert not any(k.startswith("kopf.") for k in deployment["metadata"].get("annotations", {}))

    # The replicas provider (the example's): the Model's one Service, none per version.
    assert names(kube, SERVICES, namespace) == ["fraud-detector"]
    whole = kube.get(SERVICES, namespace, "fraud-detector")
    assert whole is not None
    assert whole["spec"]["selector"] == {"modelloop.dev/model": "fraud-detector"}
    assert whole["metadata"]["ownerReferences"][0]["uid"] == model["metadata"]["uid"]

    current = kube.get(MODELS, namespace, "fraud-detector")
    assert current is not None
    assert current["status"]["phase"] == "Serving"
    assert current["status"]["stableVersion"] == "fraud-detector-v1"
    assert current["status"]["observedGeneration"] == current["metadata"]["generation"]
    v1 = kube.get(MODEL_VERSIONS, namespace, "fraud-detector-v1")
    assert v1 is not None
    assert v1["metadata"]["labels"]["modelloop.dev/role"] == "stable"
    assert (v1["status"]["phase"], v1["status"]["reason"]) == ("Serving", "Bootstrap")
    assert "ownerReferences" not in v1["metadata"]

    events = [
        e for e in kube.list(EVENTS, namespace) if e["involvedObject"]["name"] == "fraud-detector"
    ]
    reasons = [e["reason"] for e in events]  # names are creation times: the list is in order
    # Ready was on its way until kwok's pods made the Deployment Available: no Event for
    # that, the Created one tells it. A ReadyFalse is only the Model's first moment, when
    # its version did not exist yet.
    assert all(e["message"].startswith("NoVersion") for e in events if e["reason"] == "ReadyFalse")
    assert reasons.index("Created") < reasons.index("ReadyTrue")
    assert {"Created", "Serving"} <= set(reasons)


def test_template_edit_rolls_the_deployment(kube: Kube, namespace: str, operator: Any) -> None:
    operator()
    kube.create(MODELS, namespace, example("fraud-detector.yaml"))
    kube.create(MODEL_VERSIONS, namespace, example("fraud-detector-v1.yaml"))
    wait_for(lambda: kube.get(DEPLOYMENTS, namespace, "fraud-detector-v1"), 60, "Deployment")

    template = example("fraud-detector.yaml")["spec"]["serving"]["template"]
    template["spec"]["containers"][0]["image"] = "ghcr.io/modelloop-examples/sklearn-server:0.2"
    kube.merge_patch(
        MODELS, namespace, "fraud-detector", {"spec": {"serving": {"template": template}}}
    )

    def image() -> str:
        d = kube.get(DEPLOYMENTS, namespace, "fraud-detector-v1") or {}
        return str(d["spec"]["template"]["spec"]["containers"][0]["image"])

    wait_for(lambda: image().endswith(":0.2"), 60, "Deployment with the new image")
    wait_for(
        lambda: (
            (m := kube.get(MODELS, namespace, "fraud-detector"))
            and m["status"].get("observedGeneration") == m["metadata"]["generation"]
        ),
        60,
        "observedGeneration to catch up",
    )


def test_deleting_the_model_lets_the_garbage_collector_remove_its_children(
    kube: Kube, namespace: str, operator: Any
) -> None:
    operator()
    model = example("fraud-detector.yaml")
    model["spec"]["serving"]["versionServices"] = "Always"  # a version's Service, too
    kube.create(MODELS, namespace, model)
    kube.create(MODEL_VERSIONS, namespace, example("fraud-detector-v1.yaml"))
    wait_for(
        lambda: names(kube, SERVICES, namespace) == ["fraud-detector", "fraud-detector-v1"],
        60,
        "Services",
    )

    kube.delete(MODELS, namespace, "fraud-detector")
    wait_for(
        lambda: not names(kube, DEPLOYMENTS, namespace) and not names(kube, SERVICES, namespace),
        90,
        "garbage collection of Deployments and Services",
    )
    # ModelVersions are not owned by the Model: the artifacts' records survive.
    assert kube.get(MODEL_VERSIONS, namespace, "fraud-detector-v1") is not None


def test_crash_between_the_deployment_and_the_service_leaves_one_of_each(
    kube: Kube, namespace: str, operator: Any, control_plane: Any
) -> None:
    with deny_operator_writes(
        control_plane,
        "deny-service-create",
        [
            {
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "resources": ["services"],
                "operations": ["CREATE", "UPDATE"],
            }
        ],
        "crash test: Services are denied",
    ):
        first = operator()
        kube.create(MODELS, namespace, example("fraud-detector.yaml"))
        kube.create(MODEL_VERSIONS, namespace, example("fraud-detector-v1.yaml"))
        wait_for(
            lambda: "crash test: Services are denied" in first.log_text(),
            60,
            "the operator's Service write to be denied",
        )
        assert names(kube, DEPLOYMENTS, namespace) == ["fraud-detector-v1"]
        assert names(kube, SERVICES, namespace) == []
        first.kill()

    operator()
    wait_for(lambda: names(kube, SERVICES, namespace), 60, "the Service after restart")
    wait_for(lambda: model_condition(kube, namespace, "Ready").get("status") == "True", 60, "Ready")
    assert names(kube, DEPLOYMENTS, namespace) == ["fraud-detector-v1"]
    # The replicas provider: the Model's one Service, no Service per version.
    assert names(kube, SERVICES, namespace) == ["fraud-detector"]


def replicas(kube: Kube, namespace: str) -> dict[str, int]:
    return {d["metadata"]["name"]: d["spec"]["replicas"] for d in kube.list(DEPLOYMENTS, namespace)}


def test_a_restore_without_status_or_pin_keeps_serving_the_pinned_version(
    kube: Kube, namespace: str, operator: Any
) -> None:
    running = operator()
    kube.create(MODELS, namespace, example("fraud-detector.yaml"))
    kube.create(MODEL_VERSIONS, namespace, example("fraud-detector-v1.yaml"))
    wait_for(lambda: kube.get(DEPLOYMENTS, namespace, "fraud-detector-v1"), 60, "v1 Deployment")
    kube.create(MODEL_VERSIONS, namespace, version("fraud-detector-v2", "s3://models/fd/v2"))
    kube.merge_patch(
        MODELS, namespace, "fraud-detector", {"spec": {"pinnedVersion": "fraud-detector-v2"}}
    )
    wait_for(lambda: kube.get(DEPLOYMENTS, namespace, "fraud-detector-v2"), 60, "switch to v2")
    wait_for(
        lambda: model_condition(kube, namespace, "Pinned").get("reason") == "Pinned", 60, "Pinned"
    )
    v1 = kube.get(MODEL_VERSIONS, namespace, "fraud-detector-v1")
    assert v1 is not None
    assert v1["status"]["phase"] == "Retired"
    assert "modelloop.dev/role" not in v1["metadata"].get("labels", {})
    # The replicas provider (the example's default) has no warm period: behind the Model's
    # one Service the old version's pods would still take traffic.
    wait_for(
        lambda: replicas(kube, namespace) == {"fraud-detector-v1": 0, "fraud-detector-v2": 2},
        30,
        "the retired v1 scaled to zero",
    )

    # A restore from backup: the operator is down, status is gone, the pin was never in Git.
    running.kill()
    kube.merge_patch(MODELS, namespace, "fraud-detector", {"status": None}, sub="status")
    for name in ("fraud-detector-v1", "fraud-detector-v2"):
        kube.merge_patch(MODEL_VERSIONS, namespace, name, {"status": None}, sub="status")
    kube.merge_patch(MODELS, namespace, "fraud-detector", {"spec": {"pinnedVersion": None}})
    operator()

    def settled() -> bool:
        m = kube.get(MODELS, namespace, "fraud-detector") or {}
        status = m.get("status") or {}
        return bool(status.get("observedGeneration") == m["metadata"]["generation"])

    wait_for(settled, 60, "the operator to reconcile the restored Model")
    current = kube.get(MODELS, namespace, "fraud-detector")
    assert current is not None
    assert current["status"]["stableVersion"] == "fraud-detector-v2"
    assert condition(current, "Pinned")["reason"] == "NotPinned"
    # v1 lost the phase that timed its warm period: it is scaled to zero, not deleted.
    wait_for(
        lambda: replicas(kube, namespace) == {"fraud-detector-v1": 0, "fraud-detector-v2": 2},
        30,
        "v1 scaled to zero",
    )
    v2 = kube.get(MODEL_VERSIONS, namespace, "fraud-detector-v2")
    assert v2 is not None
    assert v2["status"]["phase"] == "Serving"
