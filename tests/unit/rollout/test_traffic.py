"""The traffic providers' pure builders, patches and observed splits, and replica splits."""

import copy
from typing import Any

import pytest
from tests.unit.models import spec_of

from modelloop.kube.rest import Kube, Resource
from modelloop.rollout.router import (
    GATEWAY_API,
    ISTIO,
    ManagedRoute,
    PatchedRoute,
    ReplicaRouter,
    TrafficRouter,
    router_for,
)
from modelloop.rollout.traffic import (
    ReplicaSplit,
    RouteError,
    Split,
    build_httproute,
    build_virtualservice,
    httproute_weight_patch,
    observed_httproute_split,
    observed_virtualservice_split,
    replica_split,
    virtualservice_weight_patch,
)
from modelloop.serving.objects import applied_hash

Obj = dict[str, Any]
VERSIONS = {"fraud-v1", "fraud-v2", "fraud-v3"}
SPLITS = [
    Split("fraud-v1", None, 0),
    Split("fraud-v1", "fraud-v2", 0),
    Split("fraud-v1", "fraud-v2", 1),
    Split("fraud-v1", "fraud-v2", 10),
    Split("fraud-v1", "fraud-v2", 50),
    Split("fraud-v1", "fraud-v2", 100),
    Split("fraud-v2", None, 0),
]

TEMPLATE = {"spec": {"containers": [{"name": "server", "image": "server:1"}]}}


def model(traffic: Obj | None = None) -> Obj:
    return {
        "metadata": {"name": "fraud", "namespace": "prod", "uid": "u-1"},
        "spec": {
            "serving": {"port": 9000, "replicas": 3, "template": TEMPLATE},
            "traffic": traffic or {},
        },
    }


def apply_patch(obj: Obj, ops: list[Obj]) -> Obj:
    """A JSON patch of ``test`` and ``replace`` ops, as the API server applies it."""
    result = copy.deepcopy(obj)
    for op in ops:
        *parents, leaf = op["path"].lstrip("/").split("/")
        target: Any = result
        for key in parents:
            target = target[int(key)] if isinstance(target, list) else target[key]
        index = int(leaf) if isinstance(target, list) else leaf
        if op["op"] == "test":
            assert target[index] == op["value"], f"test failed at {op['path']}"
        else:
            assert op["op"] == "replace"
            target[index] = op["value"]
    return result


# --------------------------------------------------------------------------- Split


@pytest.mark.parametrize(
    ("stable", "canary", "weight"),
    [("a", "b", -1), ("a", "b", 101), ("a", None, 10), ("a", "a", 10)],
)
def test_impossible_splits_are_refused(stable: str, canary: str | None, weight: int) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        Split(stable, canary, weight)


@pytest.mark.parametrize("split", SPLITS)
def test_split_weights_sum_to_100_stable_first(split: Split) -> None:
    weights = split.weights()
    assert sum(w for _, w in weights) == 100
    assert weights[0] == (split.stable, 100 - split.canary_weight)
    assert len(weights) == (1 if split.canary is None else 2)


# --------------------------------------------------------------------------- Gateway API


def ref(name: str, weight: int | None = None, **extra: Any) -> Obj:
    """A backendRef as the API server returns it, with the CRD's defaults filled in."""
    defaulted = {"group": "", "kind": "Service", "name": name, "port": 9000, **extra}
    return defaulted if weight is None else {**defaulted, "weight": weight}


def httproute(*rules: list[Obj]) -> Obj:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "shop", "namespace": "prod"},
        "spec": {
            "parentRefs": [{"name": "edge"}],
            "rules": [
                {"matches": [{"path": {"type": "PathPrefix", "value": f"/{i}"}}], "backendRefs": r}
                for i, r in enumerate(rules)
            ],
        },
    }


GATEWAY: Obj = {"provider": "gatewayAPI", "gatewayAPI": {"parentRefs": [{"name": "edge"}]}}


@pytest.mark.parametrize(
    ("split", "backend_refs"),
    [
        (Split("fraud-v1", None, 0), [("fraud-v1", 100)]),
        (Split("fraud-v1", "fraud-v2", 0), [("fraud-v1", 100), ("fraud-v2", 0)]),
        (Split("fraud-v1", "fraud-v2", 10), [("fraud-v1", 90), ("fraud-v2", 10)]),
        (Split("fraud-v1", "fraud-v2", 100), [("fraud-v1", 0), ("fraud-v2", 100)]),
    ],
)
def test_managed_httproute_has_one_rule_with_explicit_weights(
    split: Split, backend_refs: list[tuple[str, int]]
) -> None:
    route = build_httproute(model(GATEWAY), spec_of(model(GATEWAY)), split)
    assert route["spec"]["rules"] == [
        {"backendRefs": [{"name": n, "port": 9000, "weight": w} for n, w in backend_refs]}
    ]


def test_managed_httproute_is_the_models_and_takes_parents_and_hostnames() -> None:
    traffic = {**GATEWAY, "gatewayAPI": {**GATEWAY["gatewayAPI"], "hostnames": ["fraud.example"]}}
    route = build_httproute(model(traffic), spec_of(model(traffic)), Split("fraud-v1", None, 0))
    meta = route["metadata"]
    assert (route["apiVersion"], route["kind"]) == ("gateway.networking.k8s.io/v1", "HTTPRoute")
    assert (meta["name"], meta["namespace"]) == ("fraud", "prod")
    assert meta["labels"]["modelloop.dev/model"] == "fraud"
    assert meta["ownerReferences"][0]["uid"] == "u-1"
    assert route["spec"]["parentRefs"] == [{"name": "edge"}]
    assert route["spec"]["hostnames"] == ["fraud.example"]
    assert (
        "hostnames"
        not in build_httproute(model(GATEWAY), spec_of(model(GATEWAY)), Split("fraud-v1", None, 0))[
            "spec"
        ]
    )


def test_managed_route_hash_follows_the_split() -> None:
    hashes = {
        applied_hash(build_httproute(model(GATEWAY), spec_of(model(GATEWAY)), split))
        for split in SPLITS
    }
    assert len(hashes) == len(SPLITS)
    again = build_httproute(model(GATEWAY), spec_of(model(GATEWAY)), SPLITS[3])
    assert applied_hash(again) == applied_hash(
        build_httproute(model(GATEWAY), spec_of(model(GATEWAY)), SPLITS[3])
    )


def new_ref(name: str, weight: int) -> Obj:
    """A backendRef ModelLoop adds (the API server fills in group and kind)."""
    return {"name": name, "port": 9000, "weight": weight}


OTHER_RULE = [ref("checkout", 1)]
FILTERS = [{"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": []}}]

# (rules as read, split, {rule index: its backendRefs after the patch})
HTTPROUTE_PATCHES = [
    pytest.param(
        [OTHER_RULE, [ref("fraud", 1)]],
        Split("fraud-v1", None, 0),
        {1: [new_ref("fraud-v1", 100)]},
        id="the Model's Service becomes the stable version's",
    ),
    pytest.param(
        [OTHER_RULE, [ref("fraud-v1", 100, filters=FILTERS)]],
        Split("fraud-v1", "fraud-v2", 10),
        {1: [ref("fraud-v1", 90, filters=FILTERS), new_ref("fraud-v2", 10)]},
        id="canary added, stable keeps its filters",
    ),
    pytest.param(
        [OTHER_RULE, [ref("fraud-v1", 90), ref("fraud-v2", 10)]],
        Split("fraud-v1", "fraud-v2", 10),
        {},
        id="already at the split",
    ),
    pytest.param(
        [[ref("legacy", 5), ref("fraud-v1", 100), ref("mirror", 0)]],
        Split("fraud-v1", "fraud-v2", 50),
        {0: [ref("legacy", 5), ref("fraud-v1", 50), new_ref("fraud-v2", 50), ref("mirror", 0)]},
        id="other backendRefs of our rule keep their place and weight",
    ),
    pytest.param(
        [[ref("fraud-v1", 0), ref("fraud-v2", 100)]],
        Split("fraud-v2", None, 0),
        {0: [ref("fraud-v2", 100)]},
        id="promoted: the old stable is dropped",
    ),
    pytest.param(
        [[ref("fraud-v2", 100), ref("fraud-v1", 0)]],
        Split("fraud-v1", "fraud-v2", 100),
        {0: [ref("fraud-v1", 0), ref("fraud-v2", 100)]},
        id="stable is written first",
    ),
    pytest.param(
        [[ref("fraud", 1)], OTHER_RULE, [ref("fraud-v1", 1)]],
        Split("fraud-v1", "fraud-v2", 10),
        {
            0: [new_ref("fraud-v1", 90), new_ref("fraud-v2", 10)],
            2: [ref("fraud-v1", 90), new_ref("fraud-v2", 10)],
        },
        id="every rule sending to the Model",
    ),
    pytest.param(
        [[ref("fraud-v1", 1), ref("fraud-v1", 1, namespace="staging")]],
        Split("fraud-v1", None, 0),
        {0: [ref("fraud-v1", 100), ref("fraud-v1", 1, namespace="staging")]},
        id="a Service of another namespace is not ours",
    ),
]


@pytest.mark.parametrize(("rules", "split", "after"), HTTPROUTE_PATCHES)
def test_httproute_patch_tests_then_replaces_only_our_rules(
    rules: list[list[Obj]], split: Split, after: dict[int, list[Obj]]
) -> None:
    route = httproute(*rules)
    ops = httproute_weight_patch(route, "fraud", VERSIONS, split, 9000)

    expected_ops = []
    for index, backend_refs in after.items():
        path = f"/spec/rules/{index}/backendRefs"
        expected_ops.append({"op": "test", "path": path, "value": rules[index]})
        expected_ops.append({"op": "replace", "path": path, "value": backend_refs})
    assert ops == expected_ops
    patched = apply_patch(route, ops)
    for index, rule in enumerate(patched["spec"]["rules"]):
        assert rule["backendRefs"] == after.get(index, rules[index])
        assert rule["matches"] == route["spec"]["rules"][index]["matches"]
    assert observed_httproute_split(patched, "fraud", VERSIONS) == split


@pytest.mark.parametrize("split", SPLITS)
def test_httproute_patch_then_again_is_a_no_op(split: Split) -> None:
    route = httproute(OTHER_RULE, [ref("fraud", 1)])
    patched = apply_patch(route, httproute_weight_patch(route, "fraud", VERSIONS, split, 9000))
    assert httproute_weight_patch(patched, "fraud", VERSIONS, split, 9000) == []


@pytest.mark.parametrize(
    "rules",
    [
        [OTHER_RULE],
        [[ref("fraud-v1", 1, kind="ServiceImport", group="multicluster.x-k8s.io")]],
        [[ref("fraud-v1", 1, namespace="staging")]],
        [[{"name": "x"}], []],
    ],
)
def test_httproute_patch_of_a_route_not_sending_to_the_model_is_an_error(
    rules: list[list[Obj]],
) -> None:
    with pytest.raises(RouteError, match="HTTPRoute prod/shop has no rule sending to Model fraud"):
        httproute_weight_patch(
            httproute(*rules), "fraud", VERSIONS, Split("fraud-v1", None, 0), 9000
        )


@pytest.mark.parametrize(
    ("backend_refs", "split"),
    [
        ([ref("fraud", 1)], None),
        ([ref("fraud-v1", 100)], Split("fraud-v1", None, 0)),
        ([ref("fraud-v1", 90), ref("fraud-v2", 10)], Split("fraud-v1", "fraud-v2", 10)),
        ([ref("fraud-v2", 0), ref("fraud-v1", 100)], Split("fraud-v2", "fraud-v1", 100)),
        ([ref("fraud-v1"), ref("fraud-v2")], Split("fraud-v1", "fraud-v2", 50)),  # default 1
        ([ref("fraud-v1", 2), ref("fraud-v2", 1)], Split("fraud-v1", "fraud-v2", 33)),
        ([ref("fraud-v1", 0), ref("fraud-v2", 0)], Split("fraud-v1", "fraud-v2", 0)),
        (
            [ref("legacy", 50), ref("fraud-v1", 75), ref("fraud-v2", 25)],
            Split("fraud-v1", "fraud-v2", 25),
        ),
        ([ref("fraud", 1), ref("fraud-v1", 1)], None),
        ([ref("fraud-v1", 1), ref("fraud-v2", 1), ref("fraud-v3", 1)], None),
        ([ref("fraud-v1", 1), ref("fraud-v1", 1)], None),
        ([ref("other", 1)], None),
    ],
)
def test_observed_httproute_split(backend_refs: list[Obj], split: Split | None) -> None:
    route = httproute(OTHER_RULE, backend_refs)
    assert observed_httproute_split(route, "fraud", VERSIONS) == split


@pytest.mark.parametrize("split", SPLITS)
def test_managed_httproute_reads_back_as_its_split(split: Split) -> None:
    route = build_httproute(model(GATEWAY), spec_of(model(GATEWAY)), split)
    assert observed_httproute_split(route, "fraud", VERSIONS) == split


# --------------------------------------------------------------------------- Istio

ISTIO_TRAFFIC: Obj = {"provider": "istio", "istio": {}}


def destination(host: str, weight: int | None = None, **extra: Any) -> Obj:
    entry = {"destination": {"host": host, "port": {"number": 9000}}, **extra}
    return entry if weight is None else {**entry, "weight": weight}


def virtualservice(*routes: list[Obj]) -> Obj:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "shop", "namespace": "prod"},
        "spec": {
            "hosts": ["shop.example"],
            "http": [
                {"match": [{"uri": {"prefix": f"/{i}"}}], "route": route}
                for i, route in enumerate(routes)
            ],
        },
    }


@pytest.mark.parametrize(
    ("split", "destinations"),
    [
        (Split("fraud-v1", None, 0), [destination("fraud-v1", 100)]),
        (
            Split("fraud-v1", "fraud-v2", 0),
            [destination("fraud-v1", 100), destination("fraud-v2", 0)],
        ),
        (
            Split("fraud-v1", "fraud-v2", 33),
            [destination("fraud-v1", 67), destination("fraud-v2", 33)],
        ),
        (
            Split("fraud-v1", "fraud-v2", 100),
            [destination("fraud-v1", 0), destination("fraud-v2", 100)],
        ),
    ],
)
def test_managed_virtualservice_has_one_route_with_explicit_weights(
    split: Split, destinations: list[Obj]
) -> None:
    service = build_virtualservice(model(ISTIO_TRAFFIC), spec_of(model(ISTIO_TRAFFIC)), split)
    assert service["spec"] == {"hosts": ["fraud"], "http": [{"route": destinations}]}
    assert observed_virtualservice_split(service, "fraud", VERSIONS) == split


def test_managed_virtualservice_takes_hosts_and_gateways() -> None:
    settings = {"hosts": ["fraud.example"], "gateways": ["istio-system/edge"]}
    service = build_virtualservice(
        model({"provider": "istio", "istio": settings}),
        spec_of(model({"provider": "istio", "istio": settings})),
        SPLITS[0],
    )
    meta = service["metadata"]
    assert (service["apiVersion"], service["kind"]) == ("networking.istio.io/v1", "VirtualService")
    assert (meta["name"], meta["namespace"], meta["ownerReferences"][0]["uid"]) == (
        "fraud",
        "prod",
        "u-1",
    )
    assert service["spec"]["hosts"] == ["fraud.example"]
    assert service["spec"]["gateways"] == ["istio-system/edge"]
    assert applied_hash(service) is not None


HEADERS = {"request": {"set": {"x-model": "fraud"}}}
OTHER_ROUTE = [destination("checkout")]

VIRTUALSERVICE_PATCHES = [
    pytest.param(
        [OTHER_ROUTE, [destination("fraud.prod.svc.cluster.local")]],
        Split("fraud-v1", None, 0),
        {1: [destination("fraud-v1", 100)]},
        id="the Model's Service, by its full name, becomes the stable version's",
    ),
    pytest.param(
        [OTHER_ROUTE, [destination("fraud-v1.prod.svc", 100, headers=HEADERS)]],
        Split("fraud-v1", "fraud-v2", 10),
        {1: [destination("fraud-v1.prod.svc", 90, headers=HEADERS), destination("fraud-v2", 10)]},
        id="canary added, stable keeps its host and headers",
    ),
    pytest.param(
        [[destination("fraud-v1.prod", 90), destination("fraud-v2", 10)]],
        Split("fraud-v1", "fraud-v2", 10),
        {},
        id="already at the split",
    ),
    pytest.param(
        [[destination("fraud-v1", 100), destination("fraud-v1.staging", 0)]],
        Split("fraud-v1", "fraud-v2", 20),
        {
            0: [
                destination("fraud-v1", 80),
                destination("fraud-v2", 20),
                destination("fraud-v1.staging", 0),
            ]
        },
        id="a host of another namespace is not ours",
    ),
    pytest.param(
        [
            [destination("fraud-v1", 0), destination("fraud-v2", 100)],
            OTHER_ROUTE,
            [destination("fraud")],
        ],
        Split("fraud-v2", None, 0),
        {0: [destination("fraud-v2", 100)], 2: [destination("fraud-v2", 100)]},
        id="promoted, in every route sending to the Model",
    ),
]


@pytest.mark.parametrize(("routes", "split", "after"), VIRTUALSERVICE_PATCHES)
def test_virtualservice_patch_tests_then_replaces_only_our_routes(
    routes: list[list[Obj]], split: Split, after: dict[int, list[Obj]]
) -> None:
    service = virtualservice(*routes)
    ops = virtualservice_weight_patch(service, "fraud", VERSIONS, split, 9000)

    expected_ops = []
    for index, destinations in after.items():
        path = f"/spec/http/{index}/route"
        expected_ops.append({"op": "test", "path": path, "value": routes[index]})
        expected_ops.append({"op": "replace", "path": path, "value": destinations})
    assert ops == expected_ops
    patched = apply_patch(service, ops)
    for index, http in enumerate(patched["spec"]["http"]):
        assert http["route"] == after.get(index, routes[index])
        assert http["match"] == service["spec"]["http"][index]["match"]
    assert observed_virtualservice_split(patched, "fraud", VERSIONS) == split
    assert virtualservice_weight_patch(patched, "fraud", VERSIONS, split, 9000) == []


@pytest.mark.parametrize(
    "routes",
    [
        [OTHER_ROUTE],
        [[destination("fraud.staging.svc.cluster.local")]],
        [[destination("fraud-v1x")]],
    ],
)
def test_virtualservice_patch_of_a_route_not_sending_to_the_model_is_an_error(
    routes: list[list[Obj]],
) -> None:
    with pytest.raises(RouteError, match="VirtualService prod/shop has no rule sending to Model"):
        virtualservice_weight_patch(
            virtualservice(*routes), "fraud", VERSIONS, Split("fraud-v1", None, 0), 9000
        )


@pytest.mark.parametrize(
    ("destinations", "split"),
    [
        ([destination("fraud")], None),
        ([destination("fraud-v1")], Split("fraud-v1", None, 0)),
        (
            [destination("fraud-v1", 75), destination("fraud-v2.prod", 25)],
            Split("fraud-v1", "fraud-v2", 25),
        ),
        (
            [destination("fraud-v1"), destination("fraud-v2", 10)],
            Split("fraud-v1", "fraud-v2", 100),
        ),
        ([destination("fraud-v1"), destination("fraud-v2")], Split("fraud-v1", "fraud-v2", 0)),
        (
            [destination("fraud-v1.other", 50), destination("fraud-v2", 50)],
            Split("fraud-v2", None, 0),
        ),
    ],
)
def test_observed_virtualservice_split(destinations: list[Obj], split: Split | None) -> None:
    service = virtualservice(OTHER_ROUTE, destinations)
    assert observed_virtualservice_split(service, "fraud", VERSIONS) == split


# --------------------------------------------------------------------------- replicas

# total -> {weight: (stable, canary, achieved)}
REPLICA_TABLE = {
    1: {
        1: (1, 1, 50),
        10: (1, 1, 50),
        33: (1, 1, 50),
        50: (1, 1, 50),
        99: (1, 1, 50),
        100: (0, 1, 100),
    },
    2: {
        1: (1, 1, 50),
        10: (1, 1, 50),
        33: (1, 1, 50),
        50: (1, 1, 50),
        99: (1, 1, 50),
        100: (0, 2, 100),
    },
    3: {
        1: (2, 1, 33),
        10: (2, 1, 33),
        33: (2, 1, 33),
        50: (1, 2, 67),
        99: (1, 2, 67),
        100: (0, 3, 100),
    },
    10: {
        1: (9, 1, 10),
        10: (9, 1, 10),
        33: (7, 3, 30),
        50: (5, 5, 50),
        99: (1, 9, 90),
        100: (0, 10, 100),
    },
}


@pytest.mark.parametrize(
    ("total", "weight", "expected"),
    [(t, w, e) for t, row in REPLICA_TABLE.items() for w, e in row.items()]
    + [
        (10, 0, (10, 0, 0)),
        (0, 50, (0, 0, 0)),
        (0, 100, (0, 0, 0)),
        (8, 25, (6, 2, 25)),
        (8, 6, (7, 1, 13)),
    ],
)
def test_replica_split(total: int, weight: int, expected: tuple[int, int, int]) -> None:
    assert replica_split(total, weight) == ReplicaSplit(*expected)


@pytest.mark.parametrize("total", range(1, 13))
def test_replica_split_runs_both_versions_at_the_closest_achievable_weight(total: int) -> None:
    pods = max(total, 2)
    for weight in range(1, 100):
        got = replica_split(total, weight)
        assert got.stable_replicas >= 1
        assert got.canary_replicas >= 1
        assert got.stable_replicas + got.canary_replicas == pods
        closest = min(abs(100 * c / pods - weight) for c in range(1, pods))
        assert abs(100 * got.canary_replicas / pods - weight) == pytest.approx(closest)
        assert abs(got.achieved_weight - 100 * got.canary_replicas / pods) <= 0.5


@pytest.mark.parametrize(("total", "weight"), [(-1, 10), (3, -1), (3, 101)])
def test_replica_split_refuses_impossible_inputs(total: int, weight: int) -> None:
    with pytest.raises(ValueError, match="no replica split"):
        replica_split(total, weight)


# --------------------------------------------------------------------------- router_for


@pytest.mark.parametrize(
    ("traffic", "router"),
    [
        ({}, ReplicaRouter(3)),
        (GATEWAY, ManagedRoute(GATEWAY_API, spec_of(model(GATEWAY)))),
        (
            {"provider": "gatewayAPI", "gatewayAPI": {"mode": "patch", "routeName": "shop"}},
            PatchedRoute(GATEWAY_API, "shop", 9000),
        ),
        (ISTIO_TRAFFIC, ManagedRoute(ISTIO, spec_of(model(ISTIO_TRAFFIC)))),
        (
            {"provider": "istio", "istio": {"mode": "patch", "virtualServiceName": "shop"}},
            PatchedRoute(ISTIO, "shop", 9000),
        ),
    ],
)
def test_router_for_the_provider_and_mode(traffic: Obj, router: TrafficRouter) -> None:
    spec = spec_of(model(traffic))
    assert router_for(spec) == router


# --------------------------------------------------------------------------- managed route I/O


class RouteServer(Kube):
    """The API server for one route: GETs and applies recorded, an applied route kept."""

    def __init__(self) -> None:
        super().__init__(None)  # type: ignore[arg-type]
        self.route: Obj | None = None
        self.requests: list[str] = []

    def get(self, resource: Resource, namespace: str | None, name: str) -> Obj | None:
        self.requests.append("get")
        return copy.deepcopy(self.route)

    def apply(self, resource: Resource, namespace: str | None, body: Obj) -> Obj:
        self.requests.append("apply")
        self.route = copy.deepcopy(body)
        return body


@pytest.mark.parametrize(
    ("calls", "requests"),
    [
        # A pass: the read's GET serves the write that follows.
        (["read", "write 0"], ["get"]),
        (["read", "write 10"], ["get", "apply"]),
        # A write with no read before it, or a second write, reads the route itself.
        (["write 10"], ["get", "apply"]),
        (["read", "write 10", "write 50"], ["get", "apply", "get", "apply"]),
        (["read", "write 10", "read", "write 10"], ["get", "apply", "get"]),
    ],
)
def test_a_managed_route_is_read_once_per_pass(calls: list[str], requests: list[str]) -> None:
    """Starting from a route at weight 0, written by an earlier pass."""
    kube, body = RouteServer(), model(GATEWAY)
    router = router_for(spec_of(body))
    router.write(kube, body, Split("fraud-v1", "fraud-v2", 0), VERSIONS)
    kube.requests.clear()
    for call in calls:
        if call == "read":
            router.read(kube, body, VERSIONS)
        else:
            weight = int(call.split()[1])
            router.write(kube, body, Split("fraud-v1", "fraud-v2", weight), VERSIONS)
    assert kube.requests == requests


@pytest.mark.parametrize("shard", [None, "a"])
def test_a_managed_route_carries_its_models_shard_label(shard: str | None) -> None:
    """So that its shard's watch selects it; moved, the route's hash changes and the next
    pass applies it with the new shard's label (none for the default shard)."""
    sharded = model(GATEWAY)
    if shard is not None:
        sharded["metadata"]["labels"] = {"modelloop.dev/shard": shard}
    split = Split("fraud-v1", None, 0)
    route = build_httproute(sharded, spec_of(sharded), split)
    assert route["metadata"]["labels"].get("modelloop.dev/shard") == shard
    unsharded = build_httproute(model(GATEWAY), spec_of(model(GATEWAY)), split)
    assert (applied_hash(route) == applied_hash(unsharded)) is (shard is None)
