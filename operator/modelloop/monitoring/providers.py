"""Prometheus endpoints, configured in the operator, never in Models.

A Model names one with ``spec.metricsProvider``; URLs, credentials and TLS live
in the operator's configuration (the Helm chart writes it), so Models carry no
URLs (no SSRF) and the operator reads Secrets only in its own namespace.

The file (``--providers`` or ``$MODELLOOP_PROVIDERS``)::

    providers:
      - name: default
        url: http://prometheus-operated.monitoring:9090
        timeout: 10s
        maxConcurrency: 10          # stay under Prometheus' --query.max-concurrency (20)
        bearerToken: {secret: prometheus-token, key: token}
        basicAuth: {secret: prometheus-basic}        # keys username and password
        tls: {caFile: /etc/modelloop/prometheus-ca.crt, insecureSkipVerify: false}

Without a file, ``$MODELLOOP_PROMETHEUS_URL`` defines a provider named ``default``.
"""

import base64
import os
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import Field

from ..api.base import ApiModel
from ..api.durations import Duration, Within
from ..kube.rest import Kube, KubeError, Resource

SECRETS = Resource("", "v1", "secrets")


class SecretKey(ApiModel):
    secret: str = Field(description="Secret in the operator's namespace.")
    key: str = Field(default="token", description="Key in the Secret.")


class BasicAuth(ApiModel):
    secret: str = Field(description="Secret with the keys username and password.")


class Tls(ApiModel):
    ca_file: str | None = Field(default=None, description="CA bundle to verify the server.")
    insecure_skip_verify: bool = False


class ProviderConfig(ApiModel):
    name: str
    url: str
    timeout: Annotated[Duration, Within("100ms", "5m")] = Duration("10s")
    max_concurrency: int = Field(default=10, ge=1, le=100)
    bearer_token: SecretKey | None = None
    basic_auth: BasicAuth | None = None
    tls: Tls = Field(default_factory=Tls)


class ProvidersFile(ApiModel):
    providers: list[ProviderConfig] = Field(default_factory=list)


def load_providers(path: str | None) -> list[ProviderConfig]:
    """The configured providers; a broken file is an error at start-up, not later."""
    path = path or os.environ.get("MODELLOOP_PROVIDERS")
    if path:
        return ProvidersFile.model_validate(yaml.safe_load(Path(path).read_text()) or {}).providers
    url = os.environ.get("MODELLOOP_PROMETHEUS_URL")
    return [ProviderConfig(name="default", url=url)] if url else []


class Credentials:
    """Resolved credentials of one provider, or why they could not be resolved."""

    def __init__(
        self,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        error: str | None = None,
    ) -> None:
        self.headers = headers or {}
        self.auth = auth
        self.error = error


def _secret_value(kube: Kube, namespace: str, secret: str, key: str) -> str:
    found = kube.get(SECRETS, namespace, secret)
    if found is None:
        raise LookupError(f"Secret {namespace}/{secret} not found")
    data = found.get("data") or {}
    if key not in data:
        raise LookupError(f"Secret {namespace}/{secret} has no key {key}")
    return base64.b64decode(data[key]).decode().strip()


def resolve_credentials(config: ProviderConfig, kube: Kube, namespace: str) -> Credentials:
    try:
        headers: dict[str, str] = {}
        auth = None
        if config.bearer_token is not None:
            ref = config.bearer_token
            token = _secret_value(kube, namespace, ref.secret, ref.key)
            headers["Authorization"] = f"Bearer {token}"
        if config.basic_auth is not None:
            secret = config.basic_auth.secret
            auth = (
                _secret_value(kube, namespace, secret, "username"),
                _secret_value(kube, namespace, secret, "password"),
            )
        return Credentials(headers, auth)
    except (LookupError, KubeError) as error:
        return Credentials(error=f"provider {config.name}: {error}")
