"""Ask a rollout's webhook gates over HTTP: all at once, each within its own timeout.

The I/O around ``hooks``: a POST of the payload as JSON; a 2xx passes, any other status
fails, no answer in time or no connection is inconclusive (``HookOutcome``). A URL
from a Secret is read at each call, so a rotated token needs no restart.
"""

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from ..api.model import Webhook
from ..kube.rest import SECRETS, KubeError, Obj, Resource
from .hooks import HookAnswer, HookOutcome

DETAIL = 200  # characters of an answer's body kept in status


class SecretReader(Protocol):
    """What the hooks need of the API: a Secret holding a URL (``Kube`` is one)."""

    def get(self, resource: Resource, namespace: str | None, name: str) -> Obj | None: ...


def ask_all(
    kube: SecretReader,
    namespace: str,
    hooks: Sequence[Webhook],
    payload_of: Callable[[Webhook], Mapping[str, Any]],
) -> dict[str, HookAnswer]:
    """Every hook's answer, asked concurrently: the slowest bounds the wait."""
    if not hooks:
        return {}
    with ThreadPoolExecutor(max_workers=min(8, len(hooks))) as pool:
        futures = {
            hook.name: pool.submit(ask, kube, namespace, hook, payload_of(hook)) for hook in hooks
        }
        return {name: future.result() for name, future in futures.items()}


def ask(
    kube: SecretReader, namespace: str, hook: Webhook, payload: Mapping[str, Any]
) -> HookAnswer:
    try:
        url = _url(kube, namespace, hook)
    except LookupError as error:
        return HookAnswer(hook.name, HookOutcome.ERROR, None, str(error))
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "modelloop-webhook"},
    )
    timeout = hook.timeout.delta.total_seconds()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return HookAnswer(hook.name, HookOutcome.PASS, response.status, _body(response))
    except urllib.error.HTTPError as error:
        return HookAnswer(hook.name, HookOutcome.FAIL, error.code, _body(error))
    except TimeoutError:
        return HookAnswer(hook.name, HookOutcome.TIMEOUT, None, f"no answer within {hook.timeout}")
    except urllib.error.URLError as error:
        if isinstance(error.reason, TimeoutError):
            detail = f"no answer within {hook.timeout}"
            return HookAnswer(hook.name, HookOutcome.TIMEOUT, None, detail)
        return HookAnswer(hook.name, HookOutcome.ERROR, None, str(error.reason)[:DETAIL])
    except (OSError, ValueError) as error:
        return HookAnswer(hook.name, HookOutcome.ERROR, None, str(error)[:DETAIL])


def _url(kube: SecretReader, namespace: str, hook: Webhook) -> str:
    if hook.url is not None:
        return hook.url
    assert hook.url_from is not None
    ref = hook.url_from.secret_key_ref
    try:
        secret = kube.get(SECRETS, namespace, ref.name)
    except KubeError as error:
        raise LookupError(f"Secret {ref.name} could not be read: {error}") from error
    value = ((secret or {}).get("data") or {}).get(ref.key)
    if value is None:
        raise LookupError(f"Secret {ref.name} has no key {ref.key}")
    return base64.b64decode(value).decode().strip()


def _body(response: Any) -> str:
    try:
        return str(response.read(DETAIL).decode(errors="replace")).strip()
    except OSError:
        return ""
