"""A watch that sees every change of a kind of object, across API server restarts.

The chaos run must know every Job ever created (they are deleted once their result is
recorded) and every written state of every HTTPRoute and Model, so sampling would not
do: this thread lists once, then watches from that list's resourceVersion and resumes
from the last event it saw whenever the connection breaks (an API server restart).
Only when the server no longer has that version (410 Gone: its watch cache started
again after a restart) does it list again, and it counts that as a gap: a change made
between the last event before the restart and the new list would be missed. Objects that
disappeared in a gap are reported as deleted.
"""

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.watch.watch import iter_resp_lines

from modelloop.kube.rest import Obj, Resource

Handler = Callable[[str, Obj], None]
"""Receives (type, object): ADDED, MODIFIED, DELETED, or LISTED after a (re)list."""


class Watch:
    """Calls ``handler`` from its own thread for every change of ``resource`` in
    ``namespace``; ``gaps`` counts the relists after the first."""

    def __init__(
        self,
        kubeconfig: str,
        resource: Resource,
        namespace: str,
        handler: Handler,
        label_selector: str | None = None,
    ) -> None:
        configuration = client.Configuration()
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)  # type: ignore[no-untyped-call]
        self._api = client.ApiClient(configuration)
        self.resource, self.namespace, self.handler = resource, namespace, handler
        self._selector = label_selector
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"watch-{resource.plural}")
        self._thread.daemon = True
        self.gaps = 0
        self.failure: BaseException | None = None
        self._known: dict[str, Obj] = {}  # uid -> object, to find what a gap deleted
        self._listed = threading.Event()
        self._stream: Any = None  # the watch response being read, shut down by stop()

    def start(self) -> "Watch":
        self._thread.start()
        return self

    def wait_listed(self, timeout: float) -> bool:
        return self._listed.wait(timeout)

    def stop(self) -> None:
        """Ends the thread now: a watch blocked reading its stream (up to its 60 s timeout)
        has its socket shut down, so its connection is closed here rather than left for the
        garbage collector to find (and warn about) during a later test."""
        self._stopping.set()
        stream = self._stream
        if stream is not None:
            stream.shutdown()
        self._thread.join(timeout=10)
        self._api.close()  # type: ignore[no-untyped-call]

    def _run(self) -> None:
        version: str | None = None
        try:
            while not self._stopping.is_set():
                try:
                    if version is None:
                        version = self._list()
                    version = self._watch(version)
                except (urllib3.exceptions.HTTPError, OSError, ValueError):
                    self._stopping.wait(0.5)  # the API server is restarting: resume
        except BaseException as error:  # reported by the run
            self.failure = error

    def _request(self, query: dict[str, str], timeout: Any) -> Any:
        if self._selector:
            query = {**query, "labelSelector": self._selector}
        method, url, headers, _, _ = self._api.param_serialize(
            method="GET",
            resource_path=self.resource.path(self.namespace),
            query_params=list(query.items()),
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        return self._api.call_api(method, url, header_params=headers, _request_timeout=timeout)

    def _list(self) -> str:
        response = self._request({}, 30)
        payload = json.loads(response.read())
        if response.status >= 400:
            raise ValueError(f"list {self.resource.plural}: {response.status} {payload}")
        if self._listed.is_set():
            self.gaps += 1
        items = {item["metadata"]["uid"]: item for item in payload["items"]}
        for uid, gone in list(self._known.items()):
            if uid not in items:
                self._deliver("DELETED", gone)
        for item in items.values():
            self._deliver("LISTED", item)
        self._listed.set()
        return str(payload["metadata"]["resourceVersion"])

    def _watch(self, version: str) -> str | None:
        """Follows the watch until it ends; the version to resume from (None: list again)."""
        query = {
            "watch": "true",
            "resourceVersion": version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": "60",
        }
        response = self._request(query, (5, 90))
        self._stream = response.response
        try:
            if self._stopping.is_set():  # stop() came before the stream could be shut down
                return version
            if response.status == 410:
                return None
            if response.status >= 400:  # e.g. 429 while its storage initialises: wait
                raise ValueError(f"watch {self.resource.plural}: {response.status}")
            for event in _events(response.response):
                kind, obj = event["type"], event["object"]
                if kind == "ERROR":
                    return None if obj.get("code") == 410 else version
                version = obj["metadata"]["resourceVersion"]
                if kind != "BOOKMARK":
                    self._deliver(kind, obj)
                if self._stopping.is_set():
                    break
        finally:
            self._stream = None
            if self._stopping.is_set():
                response.response.close()  # its socket, shut down or not, is done
            response.response.release_conn()
        return version

    def _deliver(self, kind: str, obj: Obj) -> None:
        uid = obj["metadata"]["uid"]
        if kind == "DELETED":
            self._known.pop(uid, None)
        else:
            self._known[uid] = obj
        self.handler(kind, obj)


def _events(response: Any) -> Iterator[dict[str, Any]]:
    for line in iter_resp_lines(response):  # type: ignore[no-untyped-call]
        if line:
            event: dict[str, Any] = json.loads(line)
            yield event


def wait_all_listed(watches: list[Watch], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for watch in watches:
        if not watch.wait_listed(max(0.0, deadline - time.monotonic())):
            raise AssertionError(f"no first list of {watch.resource.plural} within {timeout:g}s")
