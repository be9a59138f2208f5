"""A small JSON client for the Kubernetes API on top of the official client's transport.

The official client brings authentication (kubeconfig, in-cluster tokens, client
certificates) and TLS; this adapter speaks plain dicts and paths so the rest of
ModelLoop never depends on generated model classes, and so server-side apply,
merge patches with optimistic concurrency and status subresources are one call.
"""

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from kubernetes import client, config
from kubernetes.watch.watch import iter_resp_lines

# Re-exported: callers name the kinds they read and write with it.
from ..api.gvr import Resource as Resource
from ..api.resources import MODEL_FIELD, MODEL_VERSIONS

Obj = dict[str, Any]
Objs = list[Obj]  # for annotations inside Kube, where `list` is its method

APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
JSON = "application/json"
FIELD_MANAGER = "modelloop"
# Connections kept to the API server: the reconcile's worker threads (16), the evaluation's
# and the leader election's, each with one of its own.
POOL_SIZE = 32
# Objects per page of a list (kopf's first lists too): no list is ever decoded whole.
# Not client-go's 500: a page of 500 Models decodes to 27 MiB, and much of what a
# process's first lists (or a relist) decode stays in its RSS after; at 1000 Models an
# operator's restart peaked at 194-205 MiB and settled at 190-198 with 500, at 171-176
# and 171-175 with 100 (docs/scale.md). 100 is 4 MiB a page of Models, and a relist of
# 20 000 objects is 200 requests every 10 minutes.
PAGE = 100
# The API server's whole answer to a JSON patch that does not apply to the object as it is
# now; a schema or CEL violation is a 422 too, but its message names the object and field.
PATCH_NOT_APPLICABLE = "the server rejected our request due to an error in our request"


class KubeError(Exception):
    """An API error with its HTTP status and the server's message."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409

    @property
    def invalid(self) -> bool:
        """422: the request was refused, by validation or because a JSON patch did not apply."""
        return self.status == 422

    @property
    def test_failed(self) -> bool:
        """A JSON patch did not apply: a ``test`` op failed (the object changed since it was
        read) or a path is gone. Nothing changed; read again and rebuild the patch."""
        return self.invalid and self.message == PATCH_NOT_APPLICABLE


DEPLOYMENTS = Resource("apps", "v1", "deployments")
SERVICES = Resource("", "v1", "services")
SECRETS = Resource("", "v1", "secrets")
EVENTS = Resource("", "v1", "events")
HTTPROUTES = Resource("gateway.networking.k8s.io", "v1", "httproutes")
VIRTUALSERVICES = Resource("networking.istio.io", "v1", "virtualservices")


class Kube:
    """Synchronous JSON client; call it from a worker thread, never the event loop."""

    def __init__(self, api_client: client.ApiClient, timeout: float = 30.0) -> None:
        self.api_client = api_client
        self.timeout = timeout
        # Told of every request by verb (get, list, create, apply, patch, delete) and
        # resource plural: the operator counts its API traffic on /metrics with it.
        self.on_request: Callable[[str, str], None] | None = None

    def _count(self, verb: str, resource: Resource) -> None:
        if self.on_request is not None:
            self.on_request(verb, resource.plural)

    @classmethod
    def from_environment(cls, timeout: float = 30.0) -> "Kube":
        """In-cluster credentials when running in a pod, else $KUBECONFIG / ~/.kube/config."""
        configuration = client.Configuration()
        configuration.connection_pool_maxsize = POOL_SIZE
        try:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except config.ConfigException:
            config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        return cls(client.ApiClient(configuration), timeout)

    @classmethod
    def from_kubeconfig(cls, path: str, timeout: float = 30.0) -> "Kube":
        configuration = client.Configuration()
        configuration.connection_pool_maxsize = POOL_SIZE
        config.load_kube_config(config_file=path, client_configuration=configuration)  # type: ignore[no-untyped-call]
        return cls(client.ApiClient(configuration), timeout)

    def urgent(self) -> AbstractContextManager[None]:
        """Writes inside the block pass any write limit (a limited client's: rollbacks)."""
        return nullcontext()

    @property
    def live(self) -> "Kube":
        """A client whose reads go to the API server (a cached client's are its cache's)."""
        return self

    def after_writes(self, action: Callable[[], None]) -> None:
        """Run ``action`` (an Event's posting) once the writes handed to this client are
        made: at once, for this client sends each when handed it (``status.StatusBatch``
        holds some back)."""
        action()

    def close(self) -> None:
        """Close the connection pool (its sockets) and the client's thread pool."""
        self.api_client.close()  # type: ignore[no-untyped-call]

    def __enter__(self) -> "Kube":
        return self

    def __exit__(self, *exc: object) -> None:
        """A client used in a ``with`` block leaves no socket to the garbage collector."""
        self.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: dict[str, str] | None = None,
        content_type: str = JSON,
        accept: str = JSON,
    ) -> Obj:
        method, url, headers, body, _ = self.api_client.param_serialize(
            method=method,
            resource_path=path,
            query_params=list((query or {}).items()),
            header_params={"Content-Type": content_type, "Accept": accept},
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self.api_client.call_api(
            method, url, header_params=headers, body=body, _request_timeout=self.timeout
        )
        data = response.read()  # type: ignore[no-untyped-call]
        try:
            payload: Obj = json.loads(data) if data else {}
        except ValueError:  # an error's answer may be plain text ("404 page not found")
            if response.status < 400:
                raise
            payload = {"message": data.decode(errors="replace").strip()}
        if response.status >= 400:
            raise KubeError(
                response.status, str(payload.get("reason", "")), str(payload.get("message", data))
            )
        return payload

    def get(self, resource: Resource, namespace: str | None, name: str) -> Obj | None:
        self._count("get", resource)
        try:
            return self.request("GET", resource.path(namespace, name))
        except KubeError as error:
            if error.not_found:
                return None
            raise

    def list(
        self, resource: Resource, namespace: str | None, label_selector: str | None = None
    ) -> list[Obj]:
        query = {"labelSelector": label_selector} if label_selector else None
        self._count("list", resource)
        items: list[Obj] = self.request("GET", resource.path(namespace), query=query)["items"]
        return items

    def versions_of(self, namespace: str, model: str, fresh: bool = False) -> Objs:
        """The ModelVersions of one Model, as the API server holds them now (``fresh``
        matters to a cached client only). Selected by the server on ``spec.model`` (the
        CRD's selectable field); a CRD older than that field refuses the selector, and
        the whole namespace's are listed and filtered here instead."""
        self._count("list", MODEL_VERSIONS)
        try:
            listed = self.request(
                "GET",
                MODEL_VERSIONS.path(namespace),
                query={"fieldSelector": f"{MODEL_FIELD}={model}"},
            )
        except KubeError as error:
            if error.status != 400:
                raise
            return versions_of_model(self.list(MODEL_VERSIONS, namespace), model)
        items: Objs = listed["items"]
        return items

    def create(self, resource: Resource, namespace: str | None, body: Obj) -> Obj:
        self._count("create", resource)
        return self.request(
            "POST",
            resource.path(namespace),
            body=body,
            query={"fieldManager": FIELD_MANAGER},
        )

    def apply(self, resource: Resource, namespace: str | None, body: Obj) -> Obj:
        """Server-side apply as ModelLoop's field manager, taking over conflicting fields."""
        self._count("apply", resource)
        return self.request(
            "PATCH",
            resource.path(namespace, body["metadata"]["name"]),
            body=body,
            query={"fieldManager": FIELD_MANAGER, "force": "true"},
            content_type=APPLY,
        )

    def merge_patch(
        self, resource: Resource, namespace: str | None, name: str, patch: Obj, sub: str = ""
    ) -> Obj:
        """A JSON merge patch; include metadata.resourceVersion in it to fail on conflicts."""
        self._count("patch", resource)
        return self.request(
            "PATCH",
            resource.path(namespace, name, sub),
            body=patch,
            query={"fieldManager": FIELD_MANAGER},
            content_type=MERGE,
        )

    def json_patch(
        self, resource: Resource, namespace: str | None, name: str, ops: Sequence[Obj]
    ) -> Obj:
        """An RFC 6902 JSON patch, applied whole or not at all: put ``test`` ops before the
        changes they guard, and a concurrent edit fails it (``KubeError.test_failed``)."""
        self._count("patch", resource)
        return self.request(
            "PATCH",
            resource.path(namespace, name),
            body=ops,
            query={"fieldManager": FIELD_MANAGER},
            content_type=JSON_PATCH,
        )

    def pages(
        self, resource: Resource, selector: str | None, namespace: str | None
    ) -> Iterator[tuple[Objs, int]]:
        """A list in pages of ``PAGE`` objects (``limit`` and ``continue``: one consistent
        snapshot), each with the list's resourceVersion. Decoded whole, a relist of 2500
        Models' objects held 207 MiB at the operator's peak (``make bench-scale``); a page
        at a time, only what the caller keeps of each stays. Neither this generator nor
        its caller may hold a page while the next is read: two pages of 500 Models decoded
        at once made the peak of an operator's start (55 MiB of it at 1000 Models)."""
        query = {"limit": str(PAGE)} | ({"labelSelector": selector} if selector else {})
        while True:
            self._count("list", resource)
            listed = self.request("GET", resource.path(namespace), query=query)
            kind = (listed.get("kind") or "").removesuffix("List")
            items, at = listed["items"], revision(listed)
            for item in items:  # a list's items omit them; a watch event's have them
                item.setdefault("apiVersion", listed.get("apiVersion"))
                item.setdefault("kind", kind)
            token = (listed.get("metadata") or {}).get("continue")
            del listed
            yield items, at
            del items
            if not token:
                return
            query = query | {"continue": token}

    def watch(
        self,
        resource: Resource,
        namespace: str | None,
        selector: str | None,
        resource_version: str,
        timeout_seconds: int,
    ) -> Iterator[tuple[str, Obj]]:
        """A watch's events (type, object) from ``resource_version`` until the API server
        ends it (after ``timeout_seconds``), bookmarks included. An ``ERROR`` event's
        object is a Status (410: the version is older than what the API server keeps)."""
        query = {
            "watch": "1",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_seconds),
        } | ({"labelSelector": selector} if selector else {})
        self._count("watch", resource)
        method, url, headers, _, _ = self.api_client.param_serialize(
            method="GET",
            resource_path=resource.path(namespace),
            query_params=list(query.items()),
            header_params={"Accept": JSON},
            auth_settings=["BearerToken"],
        )
        response = self.api_client.call_api(
            method, url, header_params=headers, _request_timeout=timeout_seconds + self.timeout
        )
        try:
            if response.status >= 400:
                payload = json.loads(response.read() or b"{}")  # type: ignore[no-untyped-call]
                raise KubeError(
                    response.status, str(payload.get("reason", "")), str(payload.get("message"))
                )
            for line in iter_resp_lines(response.response):  # type: ignore[no-untyped-call]
                if line:
                    event = json.loads(line)
                    yield event["type"], event["object"]
        finally:
            response.response.release_conn()

    def delete(self, resource: Resource, namespace: str | None, name: str) -> bool:
        """Delete in the background; False when it was already gone."""
        self._count("delete", resource)
        try:
            self.request(
                "DELETE",
                resource.path(namespace, name),
                body={"propagationPolicy": "Background"},
            )
        except KubeError as error:
            if error.not_found:
                return False
            raise
        return True


def revision(body: Obj) -> int:
    """resourceVersion as an integer (etcd's revision); 0 when it is not one."""
    try:
        return int((body.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


def versions_of_model(versions: Iterable[Obj], model: str) -> Objs:
    """The ModelVersions of one Model among ``versions`` (they name it in their spec, not in
    a label)."""
    return [v for v in versions if (v.get("spec") or {}).get("model") == model]
