"""Which REST resource serves a kind (client-go's RESTMapper, in small): asked of the API
server's discovery, for the custom resources trainings create (TrainJob, RayJob, ...),
whose CRDs may be installed after the operator started — or not at all."""

from ..api.gvr import Resource
from .rest import Kube, KubeError

_served: dict[tuple[str, str], Resource] = {}


def resource_of(kube: Kube, api_version: str, kind: str) -> Resource | None:
    """The resource serving ``kind`` in ``api_version``; None while the API server does not
    serve it (only an answer is remembered, so a CRD installed later is found)."""
    known = _served.get((api_version, kind))
    if known is not None:
        return known
    group, _, version = api_version.rpartition("/")
    try:
        listed = kube.request("GET", f"/apis/{api_version}" if group else f"/api/{version}")
    except KubeError as error:
        if error.not_found:
            return None
        raise
    for resource in listed.get("resources") or []:
        if resource.get("kind") == kind and "/" not in resource.get("name", "/"):
            _served[(api_version, kind)] = Resource(group, version, resource["name"])
            return _served[(api_version, kind)]
    return None


def forget(api_version: str, kind: str) -> None:
    """The API server stopped serving it (its CRD was deleted): ask again next time."""
    _served.pop((api_version, kind), None)
