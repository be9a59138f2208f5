"""The notifier: ``kube.events``' sink. Every Event posted about a Model becomes one
notification per receiver subscribed to its kind — the operator's own receivers and
the Model's ``spec.notifications`` — rendered at once and queued for delivery.

Runs on the caller's thread (a handler, the evaluation) and never blocks it: no API
call, no HTTP here. The receivers' URLs are read from their Secrets when each attempt
is made, on a delivery thread: a Model's in its own namespace, the operator's in the
operator's namespace.
"""

import base64
import json
import logging
from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry
from pydantic import TypeAdapter, ValidationError

from ..api.model import NotificationReceiver
from ..kube.rest import SECRETS, Kube, KubeError, Obj
from .delivery import (
    Delivery,
    DeliveryError,
    Dispatcher,
    NotificationTelemetry,
    RetryPolicy,
    post_json,
)
from .payload import notification, render
from .settings import NotificationSettings
from .subscriptions import kind_of, recipients

log = logging.getLogger(__name__)
_RECEIVERS = TypeAdapter(list[NotificationReceiver])


def model_receivers(model: Mapping[str, Any]) -> list[NotificationReceiver]:
    """A Model's ``spec.notifications``; none when they do not parse (serving reports the
    invalid spec)."""
    try:
        return _RECEIVERS.validate_python((model.get("spec") or {}).get("notifications") or [])
    except ValidationError:
        return []


class Notifier:
    def __init__(
        self,
        kube: Kube,
        settings: NotificationSettings,
        namespace: str,
        registry: CollectorRegistry,
    ) -> None:
        """``namespace``: the operator's, where its own receivers' Secrets are."""
        self.kube, self.settings, self.namespace = kube, settings, namespace
        self.timeout = settings.timeout.delta.total_seconds()
        policy = RetryPolicy(settings.attempts, settings.backoff.delta.total_seconds())
        self.dispatcher = Dispatcher(
            self._send,
            policy,
            NotificationTelemetry(registry),
            capacity=settings.queue_size,
            workers=settings.workers,
        )

    def start(self) -> None:
        self.dispatcher.start()

    def stop(self) -> None:
        self.dispatcher.stop()

    def notify(self, event: Obj, involved: Obj, evidence: Obj | None) -> None:
        """The sink of ``kube.events.post_event``: queue the notifications of one Event."""
        if involved.get("kind") != "Model":
            return
        kind = kind_of(event["reason"], event["type"], evidence)
        if kind is None:
            return
        meta = involved["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        told = notification(kind, event, evidence)
        groups = (
            (("", ""), self.namespace, self.settings.receivers),
            ((namespace, name), namespace, model_receivers(involved)),
        )
        for (scope_namespace, scope_model), secret_namespace, receivers in groups:
            for receiver in recipients(receivers, kind):
                ref = receiver.url_from.secret_key_ref
                owner = "the operator's" if not scope_model else f"{namespace}/{name}'s"
                self.dispatcher.submit(
                    Delivery(
                        (scope_namespace, scope_model, receiver.name),
                        receiver.type,
                        (secret_namespace, ref.name, ref.key),
                        json.dumps(render(receiver.type, told)).encode(),
                        f"{event['reason']} of {namespace}/{name} to {owner} "
                        f"{receiver.type} receiver {receiver.name}",
                    )
                )

    def _send(self, delivery: Delivery) -> None:
        post_json(self._url(*delivery.secret), delivery.body, self.timeout)

    def _url(self, namespace: str, name: str, key: str) -> str:
        where = f"Secret {namespace}/{name}"
        try:
            found = self.kube.get(SECRETS, namespace, name)
        except KubeError as error:
            raise DeliveryError("secret", f"{where}: {error.reason}", retryable=True) from None
        if found is None:
            raise DeliveryError("secret", f"{where} not found", retryable=True)
        value = (found.get("data") or {}).get(key)
        if value is None:
            raise DeliveryError("secret", f"{where} has no key {key}", retryable=True)
        return base64.b64decode(value).decode().strip()
