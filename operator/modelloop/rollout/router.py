"""Write and read a Model's traffic split through its provider: the I/O around traffic.py
(and kserve.py).

``router_for(spec)`` picks the router of ``spec.traffic`` (or of ``spec.serving.kserve``).
Every call is idempotent: a managed route is applied only when its applied hash changed, a
user's route is patched only when its weights differ, so a reconcile may call ``write`` on
every pass.
"""

from collections.abc import Callable, Mapping, Set
from dataclasses import dataclass, field
from typing import Protocol

from ..api.model import GatewayAPITraffic, IstioTraffic, KServeServing, ModelSpec
from ..control.sharding import shard_label
from ..kube.rest import HTTPROUTES, VIRTUALSERVICES, Kube, Obj, Resource
from ..serving.kserve import (
    adopt_patch,
    build_inference_service,
    deployment_mode,
    inference_service_name,
    replaced_revision,
)
from ..serving.objects import applied_hash
from .kserve import RAW, observed_split, serve_for
from .traffic import (
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


@dataclass(frozen=True)
class Written:
    """What a write achieved."""

    achieved_weight: int  # the canary's share of the traffic, as the provider can split it
    changed: bool  # whether an API call changed a route
    replicas: ReplicaSplit | None = None  # replicas provider: the counts still to apply


class TrafficRouter(Protocol):
    def write(self, kube: Kube, model: Obj, split: Split, versions: Set[str]) -> Written:
        """Make the provider send traffic by ``split``; ``versions`` are the names of all the
        Model's ModelVersions (their Services may appear in a user's route)."""
        ...

    def read(self, kube: Kube, model: Obj, versions: Set[str]) -> Split | None:
        """The split the provider currently sends by; None when it holds none."""
        ...


@dataclass(frozen=True)
class RouteApi:
    """One route kind: where it lives and the pure functions that build and read it."""

    kind: str
    resource: Resource
    build: Callable[[Obj, ModelSpec, Split], Obj]
    patch: Callable[[Obj, str, Set[str], Split, int], list[Obj]]
    observe: Callable[[Obj, str, Set[str]], Split | None]


GATEWAY_API = RouteApi(
    "HTTPRoute", HTTPROUTES, build_httproute, httproute_weight_patch, observed_httproute_split
)
ISTIO = RouteApi(
    "VirtualService",
    VIRTUALSERVICES,
    build_virtualservice,
    virtualservice_weight_patch,
    observed_virtualservice_split,
)


def _read_route(
    kube: Kube, api: RouteApi, model: Obj, name: str, versions: Set[str]
) -> Split | None:
    route = kube.get(api.resource, model["metadata"]["namespace"], name)
    return None if route is None else api.observe(route, model["metadata"]["name"], versions)


@dataclass(frozen=True)
class ManagedRoute:
    """ModelLoop's own route, named after the Model: built whole, server-side applied.

    A pass reads the route, decides, then writes: the write compares with the route as
    that read found it (one GET per pass, not two); a write without a read before it
    reads. Routes are not watched, so an edit of ModelLoop's route by someone else is put
    right at the next pass, whether it lands before this pass's read or after it."""

    api: RouteApi
    spec: ModelSpec
    _read: list[Obj | None] = field(default_factory=list, compare=False, repr=False)

    def write(self, kube: Kube, model: Obj, split: Split, versions: Set[str]) -> Written:
        desired = self.api.build(model, self.spec, split)
        meta = model["metadata"]
        if self._read:
            existing = self._read.pop()
        else:
            existing = kube.get(self.api.resource, meta["namespace"], meta["name"])
        changed = applied_hash(existing) != applied_hash(desired)
        if changed:
            kube.apply(self.api.resource, meta["namespace"], desired)
        return Written(split.canary_weight, changed)

    def read(self, kube: Kube, model: Obj, versions: Set[str]) -> Split | None:
        meta = model["metadata"]
        route = kube.get(self.api.resource, meta["namespace"], meta["name"])
        self._read[:] = [route]
        return None if route is None else self.api.observe(route, meta["name"], versions)


@dataclass(frozen=True)
class PatchedRoute:
    """The user's route ``name``: only the backends that are the Model's Services change.

    ``write`` reads the route and sends a JSON patch whose ``test`` ops hold the values it
    was computed from. When the route changed in between, the API server refuses it whole:
    ``KubeError.test_failed``, nothing changed, and the next pass reads again. A route that
    is missing or sends nothing to the Model raises RouteError, naming the route.
    """

    api: RouteApi
    name: str
    port: int  # of the versions' Services

    def write(self, kube: Kube, model: Obj, split: Split, versions: Set[str]) -> Written:
        namespace = model["metadata"]["namespace"]
        route = kube.get(self.api.resource, namespace, self.name)
        if route is None:
            raise RouteError(f"{self.api.kind} {namespace}/{self.name} not found")
        ops = self.api.patch(route, model["metadata"]["name"], versions, split, self.port)
        if ops:
            kube.json_patch(self.api.resource, namespace, self.name, ops)
        return Written(split.canary_weight, bool(ops))

    def read(self, kube: Kube, model: Obj, versions: Set[str]) -> Split | None:
        return _read_route(kube, self.api, model, self.name, versions)


@dataclass(frozen=True)
class ReplicaRouter:
    """No mesh: the split is approximated by replica counts behind the Model's Service.

    ``write`` only computes the counts and changes nothing: the serving reconcile applies
    ``Written.replicas`` to the two Deployments. ``read`` has nothing to read, since no
    object records a weight (replica counts also move for other reasons): the rollout's
    weight is the one in the Model's status.
    """

    total: int  # spec.serving.replicas

    def write(self, kube: Kube, model: Obj, split: Split, versions: Set[str]) -> Written:
        replicas = replica_split(self.total, split.canary_weight)
        return Written(replicas.achieved_weight, changed=False, replicas=replicas)

    def read(self, kube: Kube, model: Obj, versions: Set[str]) -> Split | None:
        return None


INFERENCE_SERVICES = Resource("serving.kserve.io", "v1beta1", "inferenceservices")


def read_inference_service(kube: Kube, model: Obj, spec: ModelSpec) -> Obj | None:
    """The Model's InferenceService (None without spec.serving.kserve, or while missing)."""
    settings = spec.serving.kserve
    if settings is None:
        return None
    name = inference_service_name(model, settings)
    return kube.get(INFERENCE_SERVICES, model["metadata"]["namespace"], name)


@dataclass(frozen=True)
class KServeRouter:
    """The split as KServe's ``canaryTrafficPercent`` on the Model's InferenceService
    (rollout/kserve.py says how). Created: ModelLoop's own, built whole and server-side
    applied when its hash changes. Adopted: the user's, patched in ModelLoop's fields
    only; a missing one raises RouteError naming it. The split's versions come with their
    artifacts (``uris``): the predictor serves a version by its storageUri."""

    settings: KServeServing
    uris: Mapping[str, str] = field(default_factory=dict)

    def write(self, kube: Kube, model: Obj, split: Split, versions: Set[str]) -> Written:
        meta = model["metadata"]
        namespace, name = meta["namespace"], inference_service_name(model, self.settings)
        current = kube.get(INFERENCE_SERVICES, namespace, name)
        if self.settings.adopt is None:
            serve = serve_for(split, self.uris, current, self.settings.deployment_mode == RAW)
            desired = build_inference_service(
                model, self.settings, serve, replaced_revision(current, serve)
            )
            changed = applied_hash(current) != applied_hash(desired)
            if changed:
                kube.apply(INFERENCE_SERVICES, namespace, desired)
            return Written(split.canary_weight, changed)
        if current is None:
            raise RouteError(f"InferenceService {namespace}/{name} not found")
        if not (current.get("spec") or {}).get("predictor", {}).get("model"):
            raise RouteError(
                f"InferenceService {namespace}/{name} has no spec.predictor.model, whose "
                "storageUri ModelLoop sets (framework fields such as predictor.sklearn are "
                "not supported)"
            )
        mode = deployment_mode(current) or self.settings.deployment_mode
        if mode != self.settings.deployment_mode:
            raise RouteError(
                f"InferenceService {namespace}/{name} runs in {mode} mode, the Model says "
                f"{self.settings.deployment_mode}: set spec.serving.kserve.deploymentMode"
            )
        serve = serve_for(split, self.uris, current, mode == RAW)
        ops = adopt_patch(
            current, meta["name"], serve, replaced_revision(current, serve), shard_label(model)
        )
        if ops:
            kube.json_patch(INFERENCE_SERVICES, namespace, name, ops)
        return Written(split.canary_weight, bool(ops))

    def read(self, kube: Kube, model: Obj, versions: Set[str]) -> Split | None:
        namespace = model["metadata"]["namespace"]
        current = kube.get(
            INFERENCE_SERVICES, namespace, inference_service_name(model, self.settings)
        )
        return None if current is None else observed_split(current)


def router_for(spec: ModelSpec, uris: Mapping[str, str] | None = None) -> TrafficRouter:
    """The router of a Model's ``spec.traffic``, or its InferenceService's with
    ``spec.serving.kserve`` (``uris``: each ModelVersion's artifact, which it serves)."""
    if spec.serving.kserve is not None:
        return KServeRouter(spec.serving.kserve, dict(uris or {}))
    traffic, port = spec.traffic, spec.serving.port
    if traffic.provider == "gatewayAPI":
        gateway = traffic.gateway_api or GatewayAPITraffic()
        return _route_router(spec, GATEWAY_API, gateway.mode, gateway.route_name, port)
    if traffic.provider == "istio":
        istio = traffic.istio or IstioTraffic()
        return _route_router(spec, ISTIO, istio.mode, istio.virtual_service_name, port)
    return ReplicaRouter(spec.serving.replicas)


def _route_router(
    spec: ModelSpec, api: RouteApi, mode: str, name: str | None, port: int
) -> TrafficRouter:
    if mode != "patch":
        return ManagedRoute(api, spec)
    if name is None:  # the Model's validation requires it
        raise RouteError(f"{api.kind} patch mode needs the name of the route to patch")
    return PatchedRoute(api, name, port)
