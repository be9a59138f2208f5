from collections.abc import Callable
from typing import Any

from tests.unit.models import spec_of

from modelloop.serving.objects import (
    applied_hash,
    build_deployment,
    build_model_service,
    build_version_service,
)

MODEL: dict[str, Any] = {
    "metadata": {"name": "fraud", "namespace": "prod", "uid": "u-1"},
    "spec": {
        "serving": {
            "port": 9000,
            "template": {
                "metadata": {"labels": {"team": "risk"}},
                "spec": {
                    "containers": [
                        {
                            "name": "a",
                            "image": "a:1",
                            "env": [
                                {"name": "MODEL_URI", "value": "x"},
                                {"name": "KEEP", "value": "1"},
                            ],
                        },
                        {"name": "b", "image": "b:1"},
                    ]
                },
            },
        }
    },
}


def test_deployment_selects_by_model_and_version_and_is_owned() -> None:
    d = build_deployment(MODEL, spec_of(MODEL), "fraud-v3", "s3://f/3", 2)
    assert d["metadata"]["name"] == "fraud-v3"
    assert d["spec"]["selector"]["matchLabels"] == {
        "modelloop.dev/model": "fraud",
        "modelloop.dev/version": "fraud-v3",
    }
    labels = d["spec"]["template"]["metadata"]["labels"]
    assert labels["team"] == "risk"
    assert labels["modelloop.dev/version"] == "fraud-v3"
    owner = d["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("Model", "u-1", True)
    assert d["spec"]["replicas"] == 2


def test_every_container_gets_the_serving_env_and_user_env_is_kept() -> None:
    d = build_deployment(MODEL, spec_of(MODEL), "fraud-v3", "s3://f/3", 1)
    for container in d["spec"]["template"]["spec"]["containers"]:
        env = {e["name"]: e["value"] for e in container["env"]}
        assert env["MODEL_NAME"] == "fraud"
        assert env["MODEL_VERSION"] == "fraud-v3"
        assert env["MODEL_URI"] == "s3://f/3"
    first = d["spec"]["template"]["spec"]["containers"][0]["env"]
    assert [e["name"] for e in first].count("MODEL_URI") == 1
    assert {"name": "KEEP", "value": "1"} in first
    assert MODEL["spec"]["serving"]["template"]["spec"]["containers"][1].get("env") is None


def test_services_select_one_version_or_the_whole_model() -> None:
    version = build_version_service(MODEL, spec_of(MODEL), "fraud-v3")
    whole = build_model_service(MODEL, spec_of(MODEL))
    assert version["spec"]["selector"]["modelloop.dev/version"] == "fraud-v3"
    assert whole["spec"]["selector"] == {"modelloop.dev/model": "fraud"}
    assert whole["metadata"]["name"] == "fraud"
    assert version["spec"]["ports"][0]["port"] == 9000


def test_hash_changes_with_content_only() -> None:
    a = build_deployment(MODEL, spec_of(MODEL), "fraud-v3", "s3://f/3", 1)
    assert applied_hash(a) == applied_hash(
        build_deployment(MODEL, spec_of(MODEL), "fraud-v3", "s3://f/3", 1)
    )
    assert applied_hash(a) != applied_hash(
        build_deployment(MODEL, spec_of(MODEL), "fraud-v3", "s3://f/4", 1)
    )
    assert not any(k.startswith("kopf.zalando.org") for k in a["metadata"]["annotations"])


def test_the_models_shard_label_is_on_its_deployments_and_services_not_on_its_pods() -> None:
    """A shard's watches select its Models' Deployments and Services by this label; moving
    the Model re-applies them (the hash changes) without touching the pod template."""
    moved = {**MODEL, "metadata": {**MODEL["metadata"], "labels": {"modelloop.dev/shard": "b"}}}
    spec = spec_of(MODEL)
    built: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
        "deployment": lambda m: build_deployment(m, spec, "fraud-v3", "s3://f/3", 1),
        "version service": lambda m: build_version_service(m, spec, "fraud-v3"),
        "model service": lambda m: build_model_service(m, spec),
    }
    for what, build in built.items():
        before, after = build(MODEL), build(moved)
        assert "modelloop.dev/shard" not in before["metadata"]["labels"], what
        assert after["metadata"]["labels"]["modelloop.dev/shard"] == "b", what
        assert applied_hash(before) != applied_hash(after), what
        assert before["spec"] == after["spec"], what
