"""The traffic routers against the upstream HTTPRoute and VirtualService CRDs (schemas and CEL
rules) on a real API server: managed routes, patches of a user's route, concurrent edits."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from modelloop.api.model import ModelSpec
from modelloop.api.resources import MODELS
from modelloop.api.vocabulary import API_VERSION
from modelloop.kube.rest import HTTPROUTES, VIRTUALSERVICES, Kube, KubeError, Resource
from modelloop.rollout.router import ReplicaRouter, router_for
from modelloop.rollout.traffic import ReplicaSplit, RouteError, Split

Obj = dict[str, Any]
VERSIONS = {"fraud-v1", "fraud-v2"}
SPLITS = [
    Split("fraud-v1", None, 0),
    Split("fraud-v1", "fraud-v2", 0),
    Split("fraud-v1", "fraud-v2", 10),
    Split("fraud-v1", "fraud-v2", 100),
    Split("fraud-v2", None, 0),
]


@dataclass(frozen=True)
class Provider:
    """One route provider as the tests drive it."""

    name: str  # spec.traffic.provider
    resource: Resource
    managed: Obj  # its settings in managed mode
    patch: Obj  # its settings in patch mode, naming the user's route "shop"
    user_route: Callable[[str], Obj]  # namespace -> the user's route, rule 1 sends to the Model
    rules: str  # spec field of the rules
    backends: str  # rule field of the backends
    mirror: Obj  # a backend a user may add


def user_httproute(namespace: str) -> Obj:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "shop"},
        "spec": {
            "parentRefs": [{"name": "edge"}],
            "hostnames": ["shop.example"],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/checkout"}}],
                    "backendRefs": [{"name": "checkout", "port": 80}],
                },
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/fraud"}}],
                    "backendRefs": [{"name": "fraud", "port": 8080}],
                },
            ],
        },
    }


def user_virtualservice(namespace: str) -> Obj:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "shop"},
        "spec": {
            "hosts": ["shop.example"],
            "gateways": ["edge"],
            "http": [
                {
                    "match": [{"uri": {"prefix": "/checkout"}}],
                    "route": [{"destination": {"host": "checkout", "port": {"number": 80}}}],
                },
                {
                    "match": [{"uri": {"prefix": "/fraud"}}],
                    "route": [
                        {
                            "destination": {
                                "host": f"fraud.{namespace}.svc.cluster.local",
                                "port": {"number": 8080},
                            }
                        }
                    ],
                },
            ],
        },
    }


GATEWAY_API = Provider(
    name="gatewayAPI",
    resource=HTTPROUTES,
    managed={
        # As the API server returns it, with the CRD's defaults (group and kind).
        "parentRefs": [
            {
                "group": "gateway.networking.k8s.io",
                "kind": "Gateway",
                "name": "edge",
                "sectionName": "http",
            }
        ],
        "hostnames": ["fraud.example"],
    },
    patch={"mode": "patch", "routeName": "shop"},
    user_route=user_httproute,
    rules="rules",
    backends="backendRefs",
    mirror={"name": "mirror", "port": 80, "weight": 0},
)
ISTIO = Provider(
    name="istio",
    resource=VIRTUALSERVICES,
    managed={"hosts": ["fraud.example"], "gateways": ["istio-system/edge"]},
    patch={"mode": "patch", "virtualServiceName": "shop"},
    user_route=user_virtualservice,
    rules="http",
    backends="route",
    mirror={"destination": {"host": "mirror"}, "weight": 0},
)
PROVIDERS = [pytest.param(GATEWAY_API, id="HTTPRoute"), pytest.param(ISTIO, id="VirtualService")]


def create_model(kube: Kube, namespace: str, traffic: Obj) -> Obj:
    """A real Model (the route's owner needs its uid), with nothing reconciling it."""
    container = {"name": "server", "image": "example.invalid/server:1"}
    return kube.create(
        MODELS,
        namespace,
        {
            "apiVersion": API_VERSION,
            "kind": "Model",
            "metadata": {"name": "fraud"},
            "spec": {
                "serving": {"port": 8080, "template": {"spec": {"containers": [container]}}},
                "traffic": traffic,
            },
        },
    )


def spec_of(model: Obj) -> ModelSpec:
    return ModelSpec.model_validate(model["spec"])


def resource_version(kube: Kube, resource: Resource, namespace: str, name: str) -> str:
    obj = kube.get(resource, namespace, name)
    assert obj is not None
    return str(obj["metadata"]["resourceVersion"])


@pytest.mark.usefixtures("traffic_crds")
@pytest.mark.parametrize("provider", PROVIDERS)
def test_managed_route_is_accepted_and_written_only_when_the_split_changes(
    kube: Kube, namespace: str, provider: Provider
) -> None:
    model = create_model(
        kube, namespace, {"provider": provider.name, provider.name: provider.managed}
    )
    router = router_for(spec_of(model))
    assert router.read(kube, model, VERSIONS) is None

    for split in SPLITS:
        written = router.write(kube, model, split, VERSIONS)
        assert (written.achieved_weight, written.changed) == (split.canary_weight, True)
        before = resource_version(kube, provider.resource, namespace, "fraud")
        assert router.read(kube, model, VERSIONS) == split
        assert not router.write(kube, model, split, VERSIONS).changed
        assert resource_version(kube, provider.resource, namespace, "fraud") == before

    route = kube.get(provider.resource, namespace, "fraud")
    assert route is not None
    owner = route["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"]) == ("Model", model["metadata"]["uid"])
    for key, value in provider.managed.items():
        assert route["spec"][key] == value


@pytest.mark.usefixtures("traffic_crds")
@pytest.mark.parametrize("provider", PROVIDERS)
def test_patch_mode_changes_only_the_weights_of_our_rule(
    kube: Kube, namespace: str, provider: Provider
) -> None:
    user = kube.create(provider.resource, namespace, provider.user_route(namespace))
    model = create_model(
        kube, namespace, {"provider": provider.name, provider.name: provider.patch}
    )
    router = router_for(spec_of(model))
    assert router.read(kube, model, VERSIONS) is None  # it sends to the Model's own Service

    for split in SPLITS:
        assert router.write(kube, model, split, VERSIONS).changed
        before = resource_version(kube, provider.resource, namespace, "shop")
        assert router.read(kube, model, VERSIONS) == split
        assert not router.write(kube, model, split, VERSIONS).changed
        assert resource_version(kube, provider.resource, namespace, "shop") == before

    route = kube.get(provider.resource, namespace, "shop")
    assert route is not None
    rules, user_rules = route["spec"][provider.rules], user["spec"][provider.rules]
    assert rules[0] == user_rules[0]
    assert {k: v for k, v in rules[1].items() if k != provider.backends} == {
        k: v for k, v in user_rules[1].items() if k != provider.backends
    }
    assert {k: v for k, v in route["spec"].items() if k != provider.rules} == {
        k: v for k, v in user["spec"].items() if k != provider.rules
    }


@pytest.mark.usefixtures("traffic_crds")
@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_concurrent_edit_fails_the_patch_and_changes_nothing(
    kube: Kube, namespace: str, provider: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    kube.create(provider.resource, namespace, provider.user_route(namespace))
    model = create_model(
        kube, namespace, {"provider": provider.name, provider.name: provider.patch}
    )
    router = router_for(spec_of(model))
    router.write(kube, model, Split("fraud-v1", None, 0), VERSIONS)
    read = kube.get
    edited: list[Obj] = []

    def read_then_someone_edits(resource: Resource, namespace: str, name: str) -> Obj | None:
        route = read(resource, namespace, name)
        add = {"op": "add", "path": f"/spec/{provider.rules}/1/{provider.backends}/-"}
        edited.append(
            kube.json_patch(resource, namespace, name, [{**add, "value": provider.mirror}])
        )
        return route

    monkeypatch.setattr(kube, "get", read_then_someone_edits)
    with pytest.raises(KubeError) as refused:
        router.write(kube, model, Split("fraud-v1", "fraud-v2", 10), VERSIONS)
    monkeypatch.undo()

    assert refused.value.test_failed
    assert kube.get(provider.resource, namespace, "shop") == edited[0]

    # The next pass reads again: the split is written and the user's backend kept.
    assert router.write(kube, model, Split("fraud-v1", "fraud-v2", 10), VERSIONS).changed
    assert router.read(kube, model, VERSIONS) == Split("fraud-v1", "fraud-v2", 10)
    route = kube.get(provider.resource, namespace, "shop")
    assert route is not None
    backends = route["spec"][provider.rules][1][provider.backends]
    assert any(all(b.get(k) == v for k, v in provider.mirror.items()) for b in backends)


@pytest.mark.usefixtures("traffic_crds")
def test_a_schema_violation_is_invalid_not_a_failed_test(kube: Kube, namespace: str) -> None:
    kube.create(HTTPROUTES, namespace, user_httproute(namespace))
    no_port = [{"op": "add", "path": "/spec/rules/1/backendRefs/-", "value": {"name": "x"}}]
    with pytest.raises(KubeError, match="Must have port for Service reference") as refused:
        kube.json_patch(HTTPROUTES, namespace, "shop", no_port)
    assert refused.value.invalid
    assert not refused.value.test_failed


@pytest.mark.usefixtures("traffic_crds")
@pytest.mark.parametrize("provider", PROVIDERS)
def test_patch_mode_names_a_route_that_cannot_carry_the_split(
    kube: Kube, namespace: str, provider: Provider
) -> None:
    model = create_model(
        kube, namespace, {"provider": provider.name, provider.name: provider.patch}
    )
    router = router_for(spec_of(model))
    split = Split("fraud-v1", None, 0)
    with pytest.raises(RouteError, match=f"{namespace}/shop not found"):
        router.write(kube, model, split, VERSIONS)

    route = provider.user_route(namespace)
    del route["spec"][provider.rules][1]
    kube.create(provider.resource, namespace, route)
    with pytest.raises(RouteError, match=f"{namespace}/shop has no rule sending to Model fraud"):
        router.write(kube, model, split, VERSIONS)


@pytest.mark.usefixtures("traffic_crds")
def test_the_replicas_router_only_computes_the_counts(kube: Kube, namespace: str) -> None:
    model = create_model(kube, namespace, {"provider": "replicas"})
    router = router_for(spec_of(model))
    assert router == ReplicaRouter(1)
    written = router.write(kube, model, Split("fraud-v1", "fraud-v2", 10), VERSIONS)
    assert (written.achieved_weight, written.changed) == (50, False)
    assert written.replicas == ReplicaSplit(1, 1, 50)
    assert router.read(kube, model, VERSIONS) is None
