"""Traffic splits between the stable and the canary version, per provider. Pure: no I/O.

Each version is served by a Service named after it (serving/objects.py). A split
becomes:

- ``gatewayAPI``: weights of an HTTPRoute rule's backendRefs;
- ``istio``: weights of a VirtualService http route's destinations;
- ``replicas`` (no mesh): replica counts behind the Model's Service, which spreads
  requests over every version's pods.

The route providers have two modes. *managed*: the route is ModelLoop's, named after
the Model and built whole. *patch*: the route is the user's, and only the backend lists
of the rules that send to the Model's Services are rewritten. Both APIs declare those
lists atomic, so server-side applying one weight would take ownership of the whole list,
and a merge patch would overwrite a concurrent edit blindly; instead each rewritten list
is an RFC 6902 ``replace`` preceded by a ``test`` of the value it was computed from.
"""

from collections.abc import Callable, Iterator, Set
from dataclasses import dataclass
from typing import Any

from ..api.model import GatewayAPITraffic, IstioTraffic, ModelSpec
from ..api.resources import owner_reference
from ..control.sharding import shard_label
from ..serving.objects import model_labels, with_hash

Obj = dict[str, Any]


class RouteError(ValueError):
    """The user's route cannot carry the split: it is missing or sends nothing to the Model."""


@dataclass(frozen=True)
class Split:
    """Who gets the traffic: the stable version ``100 - canary_weight`` percent, the canary
    the rest. Names are the versions' (= their Services')."""

    stable: str
    canary: str | None
    canary_weight: int

    def __post_init__(self) -> None:
        if not 0 <= self.canary_weight <= 100:
            raise ValueError(f"canary weight {self.canary_weight} is not within 0..100")
        if self.canary is None and self.canary_weight:
            raise ValueError("a split without a canary cannot give it weight")
        if self.canary == self.stable:
            raise ValueError(f"{self.stable} cannot be both stable and canary")

    @property
    def stable_weight(self) -> int:
        return 100 - self.canary_weight

    def weights(self) -> list[tuple[str, int]]:
        """Each backend with its weight, stable first; the canary is listed even at 0 or 100."""
        if self.canary is None:
            return [(self.stable, 100)]
        return [(self.stable, self.stable_weight), (self.canary, self.canary_weight)]


def _round_half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half up, in integers (no float, no banker's rounding)."""
    return (2 * numerator + denominator) // (2 * denominator)


# --------------------------------------------------------------------------- route shapes


@dataclass(frozen=True)
class _RouteShape:
    """Where a route kind keeps its backends and how it names a Service."""

    kind: str
    rules: str  # spec field holding the rules
    backends: str  # rule field holding the weighted backends
    default_weight: int  # the weight of a backend that states none
    service: Callable[[Obj, str], str | None]  # (backend, route namespace) -> Service name
    backend: Callable[[str, int], Obj]  # (Service name, port) -> a new backend, no weight


def _backend_ref_service(ref: Obj, namespace: str) -> str | None:
    """The Service a backendRef sends to, when it is a core Service in the route's namespace."""
    if ref.get("group", "") or ref.get("kind", "Service") != "Service":
        return None
    if ref.get("namespace", namespace) != namespace:
        return None
    name = ref.get("name")
    return str(name) if name else None


def _destination_service(route: Obj, namespace: str) -> str | None:
    """The Service an Istio destination sends to, when its host is a Service of the route's
    namespace: ``name``, ``name.ns``, ``name.ns.svc`` or ``name.ns.svc.cluster.local``."""
    name, _, domain = str((route.get("destination") or {}).get("host", "")).partition(".")
    local = ("", namespace, f"{namespace}.svc", f"{namespace}.svc.cluster.local")
    return name if name and domain in local else None


HTTPROUTE = _RouteShape(
    kind="HTTPRoute",
    rules="rules",
    backends="backendRefs",
    default_weight=1,
    service=_backend_ref_service,
    backend=lambda name, port: {"name": name, "port": port},
)
VIRTUALSERVICE = _RouteShape(
    kind="VirtualService",
    rules="http",
    backends="route",
    default_weight=0,
    service=_destination_service,
    backend=lambda name, port: {"destination": {"host": name, "port": {"number": port}}},
)


def _weighted(shape: _RouteShape, split: Split, port: int, existing: dict[str, Obj]) -> list[Obj]:
    """The split's backends; one that already exists keeps its other fields (filters...)."""
    return [
        {**existing.get(name, shape.backend(name, port)), "weight": weight}
        for name, weight in split.weights()
    ]


def _our_rules(
    shape: _RouteShape, route: Obj, services: Set[str]
) -> Iterator[tuple[int, list[Obj]]]:
    """Index and backends of each rule with a backend that is one of ``services``."""
    namespace = route["metadata"]["namespace"]
    for index, rule in enumerate((route.get("spec") or {}).get(shape.rules) or []):
        backends: list[Obj] = rule.get(shape.backends) or []
        if any(shape.service(b, namespace) in services for b in backends):
            yield index, backends


def _rewritten(
    shape: _RouteShape,
    backends: list[Obj],
    namespace: str,
    ours: Set[str],
    split: Split,
    port: int,
) -> list[Obj]:
    """A rule's backends with ours replaced by the split's, where the first of ours stood.

    Other backends keep their place and weight. Of ours only the split's remain: the Model's
    own Service (which selects every version's pods) or a version outside the split would
    blur the weights.
    """
    existing: dict[str, Obj] = {}
    for backend in backends:
        service = shape.service(backend, namespace)
        if service is not None and service in ours:
            existing.setdefault(service, backend)
    result: list[Obj] = []
    placed = False
    for backend in backends:
        if shape.service(backend, namespace) not in ours:
            result.append(backend)
        elif not placed:
            result.extend(_weighted(shape, split, port, existing))
            placed = True
    return result


def _weight_patch(
    shape: _RouteShape, route: Obj, model_name: str, versions: Set[str], split: Split, port: int
) -> list[Obj]:
    """The guarded JSON patch that writes ``split`` into the user's route; [] when it is
    already there. Raises RouteError when no rule sends to the Model's Services."""
    ours = {model_name, *versions, *(name for name, _ in split.weights())}
    namespace = route["metadata"]["namespace"]
    rules = list(_our_rules(shape, route, ours))
    if not rules:
        raise RouteError(
            f"{shape.kind} {namespace}/{route['metadata']['name']} has no rule sending to "
            f"Model {model_name}'s Services ({', '.join(sorted(ours))})"
        )
    ops: list[Obj] = []
    for index, backends in rules:
        desired = _rewritten(shape, backends, namespace, ours, split, port)
        if desired != backends:
            path = f"/spec/{shape.rules}/{index}/{shape.backends}"
            ops.append({"op": "test", "path": path, "value": backends})
            ops.append({"op": "replace", "path": path, "value": desired})
    return ops


def _observed_split(
    shape: _RouteShape, route: Obj, model_name: str, versions: Set[str]
) -> Split | None:
    """The split written in the first rule sending to the Model: its version backends in
    order, stable first (as they are written). None when that rule holds no split: no
    version, more than two, or the Model's own Service beside versions."""
    services = {model_name, *versions}
    first = next(_our_rules(shape, route, services), None)
    if first is None:
        return None
    namespace = route["metadata"]["namespace"]
    written = [
        (service, int(backend.get("weight", shape.default_weight)))
        for backend in first[1]
        if (service := shape.service(backend, namespace)) in services
    ]
    return _split_of(written, model_name)


def _split_of(written: list[tuple[str, int]], model_name: str) -> Split | None:
    """The split of the Model's backends (Service, weight) as written, stable first."""
    names = [name for name, _ in written]
    if model_name in names or len(set(names)) != len(names):
        return None
    if len(written) == 1:
        return Split(names[0], None, 0)
    if len(written) == 2:
        total = written[0][1] + written[1][1]
        weight = _round_half_up(100 * written[1][1], total) if total else 0
        return Split(names[0], names[1], weight)
    return None


def _managed_route(model: Obj, api_version: str, kind: str, spec: Obj) -> Obj:
    """A route of ModelLoop's own: named after the Model, owned by it, with its applied hash."""
    meta = model["metadata"]
    return with_hash(
        {
            "apiVersion": api_version,
            "kind": kind,
            "metadata": {
                "name": meta["name"],
                "namespace": meta["namespace"],
                "labels": model_labels(meta["name"]) | shard_label(model),
                "ownerReferences": [owner_reference(model)],
            },
            "spec": spec,
        }
    )


# --------------------------------------------------------------------------- Gateway API


def build_httproute(model: Obj, model_spec: ModelSpec, split: Split) -> Obj:
    """The managed HTTPRoute: parentRefs and hostnames from spec.traffic.gatewayAPI, one rule
    whose backendRefs carry the split with explicit weights."""
    settings = model_spec.traffic.gateway_api or GatewayAPITraffic()
    spec: Obj = {}
    if settings.parent_refs:
        spec["parentRefs"] = settings.parent_refs
    if settings.hostnames:
        spec["hostnames"] = settings.hostnames
    port = model_spec.serving.port
    spec["rules"] = [{"backendRefs": _weighted(HTTPROUTE, split, port, {})}]
    return _managed_route(model, "gateway.networking.k8s.io/v1", "HTTPRoute", spec)


def httproute_weight_patch(
    route: Obj, model_name: str, versions: Set[str], split: Split, port: int
) -> list[dict[str, Any]]:
    """The guarded JSON patch writing ``split`` into the user's HTTPRoute, in every rule with
    a backendRef to the Model's Service or one of its versions' (``versions``): for each
    rule that changes, a ``test`` of its backendRefs as read, then their ``replace``.
    Other rules and other backendRefs are untouched; [] when nothing must change.
    Raises RouteError (a ValueError), naming the route, when no rule sends to the Model."""
    return _weight_patch(HTTPROUTE, route, model_name, versions, split, port)


def observed_httproute_split(route: Obj, model_name: str, versions: Set[str]) -> Split | None:
    """The split an HTTPRoute currently sends by (None when none is written there)."""
    return _observed_split(HTTPROUTE, route, model_name, versions)


# --------------------------------------------------------------------------- Istio


def build_virtualservice(model: Obj, model_spec: ModelSpec, split: Split) -> Obj:
    """The managed VirtualService: hosts (default: the Model's Service, so in-mesh calls to
    it are split) and gateways from spec.traffic.istio, one http route with the split."""
    settings = model_spec.traffic.istio or IstioTraffic()
    spec: Obj = {"hosts": settings.hosts or [model["metadata"]["name"]]}
    if settings.gateways:
        spec["gateways"] = settings.gateways
    port = model_spec.serving.port
    spec["http"] = [{"route": _weighted(VIRTUALSERVICE, split, port, {})}]
    return _managed_route(model, "networking.istio.io/v1", "VirtualService", spec)


def virtualservice_weight_patch(
    virtual_service: Obj, model_name: str, versions: Set[str], split: Split, port: int
) -> list[dict[str, Any]]:
    """As ``httproute_weight_patch``, for the ``spec.http[i].route`` destinations of the
    user's VirtualService whose host is one of the Model's Services."""
    return _weight_patch(VIRTUALSERVICE, virtual_service, model_name, versions, split, port)


def observed_virtualservice_split(
    virtual_service: Obj, model_name: str, versions: Set[str]
) -> Split | None:
    """The split a VirtualService currently sends by (None when none is written there)."""
    return _observed_split(VIRTUALSERVICE, virtual_service, model_name, versions)


# --------------------------------------------------------------------------- replicas


@dataclass(frozen=True)
class ReplicaSplit:
    stable_replicas: int
    canary_replicas: int
    achieved_weight: int  # the canary's share of the pods, hence of the requests


def replica_split(total: int, canary_weight: int) -> ReplicaSplit:
    """Approximate a canary weight by replica counts behind the Model's Service.

    Rounding rule: the canary gets ``total * weight / 100`` replicas rounded half up, then
    clamped so that both versions run at least one replica while 0 < weight < 100 — which
    takes two replicas, one above ``total`` when it is 1. Weight 0 gives every replica to
    stable, weight 100 every one to the canary, and total 0 (scaled to zero) runs nothing.
    ``achieved_weight`` is ``100 * canary / (stable + canary)``, rounded half up too (0 when
    nothing runs).
    """
    if total < 0 or not 0 <= canary_weight <= 100:
        raise ValueError(f"no replica split of {total} replicas at weight {canary_weight}")
    if total == 0 or canary_weight == 0:
        return ReplicaSplit(total, 0, 0)
    if canary_weight == 100:
        return ReplicaSplit(0, total, 100)
    pods = max(total, 2)
    canary = min(max(_round_half_up(pods * canary_weight, 100), 1), pods - 1)
    return ReplicaSplit(pods - canary, canary, _round_half_up(100 * canary, pods))
