"""Wait until the API server lists every resource the operator watches.

Why before kopf starts: kopf resolves its resources once, at start-up. An API server
that has just started answers for a moment with an incomplete discovery (measured by the
chaos run: for 50-150 ms after its first answer ``/apis`` lists one group while
``/api/v1`` is complete); a replica started in that moment would watch nothing of
ModelLoop's, yet win the Lease and stall every Model. Waiting here for a complete
discovery closes that window.
"""

import logging
import time
from typing import Protocol

from .rest import KubeError, Obj

log = logging.getLogger(__name__)


class DiscoveryApi(Protocol):
    """What the wait needs of the API client (``kube.rest.Kube`` is one)."""

    def request(self, method: str, path: str) -> Obj: ...


# (group/version path, plural) of everything the operator watches.
WATCHED = (
    ("/apis/modelloop.dev/v1alpha1", "models"),
    ("/apis/modelloop.dev/v1alpha1", "modelversions"),
    ("/apis/modelloop.dev/v1alpha1", "metrictemplates"),
    ("/apis/apps/v1", "deployments"),
    ("/apis/batch/v1", "jobs"),
    ("/api/v1", "pods"),
    ("/api/v1", "services"),
)


def missing_resources(kube: DiscoveryApi) -> list[str]:
    """The watched resources discovery does not list yet (all of them when it fails)."""
    try:
        groups = {g["name"] for g in kube.request("GET", "/apis").get("groups") or []}
        missing = []
        listed: dict[str, set[str]] = {}
        for path, plural in WATCHED:
            group = path.split("/")[2] if path.startswith("/apis/") else ""
            if group and group not in groups:
                missing.append(f"{group}/{plural}")
                continue
            if path not in listed:
                resources = kube.request("GET", path).get("resources") or []
                listed[path] = {r["name"] for r in resources}
            if plural not in listed[path]:
                missing.append(f"{group or 'core'}/{plural}")
        return missing
    except (KubeError, OSError, ValueError) as error:
        return [f"discovery unavailable: {str(error).splitlines()[0][:200]}"]


def wait_for_discovery(kube: DiscoveryApi, timeout: float = 120.0, poll: float = 0.2) -> bool:
    """True once discovery lists every watched resource; False after ``timeout`` (the
    operator then starts anyway, and kopf reports what it cannot watch)."""
    deadline = time.monotonic() + timeout
    said = None
    while True:
        missing = missing_resources(kube)
        if not missing:
            return True
        if time.monotonic() >= deadline:
            log.warning("starting although discovery does not list: %s", ", ".join(missing))
            return False
        if missing != said:
            log.info("waiting for the API server's discovery: %s", ", ".join(missing))
            said = missing
        time.sleep(poll)
