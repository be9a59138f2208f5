"""A list-then-watch of one label selector, run on a thread of its own: an informer's
reflector, for a second selector of a kind kopf already watches (kopf watches each kind
with one selector; a shard watches ModelVersions with two, see ``control.sharding``)."""

import logging
import threading
from collections.abc import Callable

from .rest import Kube, KubeError, Obj, Resource

log = logging.getLogger(__name__)

# The API server ends each watch after this; it is then resumed from where it stood.
WATCH_SECONDS = 300
RETRY_SECONDS = 5.0


def follow(
    kube: Kube,
    resource: Resource,
    namespace: str | None,
    selector: str,
    on_event: Callable[[str | None, Obj], None],
    stopped: threading.Event,
) -> None:
    """Until ``stopped``: every object the selector selects (``on_event(None, body)``, as
    kopf tells a listed object), then every event (ADDED, MODIFIED, DELETED). A watch the
    API server ends is resumed from the last resourceVersion seen (bookmarks keep it
    fresh); one whose version expired (410), or a failure, starts over with a list. Like
    kopf's relist, a list does not tell of what was deleted meanwhile: the caches' own
    full lists do."""
    version = ""
    while not stopped.is_set():
        try:
            if not version:
                for page, at in kube.pages(resource, selector, namespace):
                    for body in page:
                        on_event(None, body)
                    version = str(at)
                    del page  # gone before the next page is read (Kube.pages)
            for kind, body in kube.watch(resource, namespace, selector, version, WATCH_SECONDS):
                if stopped.is_set():
                    return
                if kind == "ERROR":
                    if body.get("code") != 410:
                        raise KubeError(int(body.get("code") or 0), "", str(body.get("message")))
                    version = ""  # too old: list again
                    break
                version = str(body["metadata"].get("resourceVersion") or version)
                if kind != "BOOKMARK":
                    on_event(kind, body)
        except Exception as error:  # the watch's connection, or the API server's answer
            log.warning(
                "watching %s (%s): %s; again in %ss",
                resource.plural,
                selector,
                error,
                RETRY_SECONDS,
            )
            version = ""
            stopped.wait(RETRY_SECONDS)


def start_following(
    kube: Kube,
    resource: Resource,
    namespaces: list[str | None],
    selector: str,
    on_event: Callable[[str | None, Obj], None],
) -> threading.Event:
    """``follow`` in each namespace (None: all), on daemon threads (a process that stops
    does not wait for a watch to end); set the Event returned to stop them."""
    stopped = threading.Event()
    for namespace in namespaces:
        threading.Thread(
            target=follow,
            args=(kube, resource, namespace, selector, on_event, stopped),
            name=f"follow-{resource.plural}",
            daemon=True,
        ).start()
    return stopped
