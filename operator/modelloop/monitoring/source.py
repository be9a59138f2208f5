"""One configured Prometheus endpoint: instant queries with a timeout, each failure
named by kind, every request counted. Synchronous (prometheus-api-client uses
requests): call it from worker threads, never from the event loop."""

import time
from typing import Any

import requests
from prometheus_api_client.exceptions import PrometheusApiClientException
from prometheus_api_client.prometheus_connect import PrometheusConnect

from ..api.durations import parse_duration
from .providers import Credentials, ProviderConfig
from .readings import Answer
from .telemetry import Telemetry


class PrometheusSource:
    def __init__(
        self, config: ProviderConfig, credentials: Credentials, telemetry: Telemetry
    ) -> None:
        self.name = config.name
        self.url = config.url
        self.max_concurrency = config.max_concurrency
        self._timeout = parse_duration(config.timeout).total_seconds()
        self._unusable = credentials.error
        self._telemetry = telemetry
        session = requests.Session()
        if config.tls.ca_file:
            session.verify = config.tls.ca_file
        # The library's annotations are narrower than what it accepts (None, float).
        options: dict[str, Any] = {"headers": credentials.headers, "auth": credentials.auth}
        self._client = PrometheusConnect(
            url=config.url,
            disable_ssl=config.tls.insecure_skip_verify,
            session=session,
            timeout=self._timeout,  # type: ignore[arg-type]
            # Combined queries get long; POST keeps them out of URL length limits.
            method="POST",
            **options,
        )

    def query(self, promql: str) -> Answer:
        if self._unusable is not None:
            return Answer(error=self._unusable)
        started = time.monotonic()
        kind = None
        try:
            result = self._client.custom_query(promql, params={"timeout": f"{self._timeout:g}"})
        except requests.Timeout:
            kind, error = "timeout", f"Prometheus {self.name} timed out after {self._timeout:g}s"
        except requests.ConnectionError as exc:
            kind, error = "connection", f"Prometheus {self.name} unreachable: {_first_line(exc)}"
        except PrometheusApiClientException as exc:
            kind, error = "http", f"Prometheus {self.name} refused the query: {_first_line(exc)}"
        except (requests.RequestException, ValueError, KeyError) as exc:
            kind, error = "response", f"Prometheus {self.name}: bad response: {_first_line(exc)}"
        finally:
            self._telemetry.request_seconds.labels(self.name).observe(time.monotonic() - started)
        if kind is not None:
            self._telemetry.requests.labels(self.name, "error").inc()
            self._telemetry.errors.labels(self.name, kind).inc()
            return Answer(error=error)
        self._telemetry.requests.labels(self.name, "success").inc()
        if not isinstance(result, list):
            return Answer(error=f"Prometheus {self.name}: the query did not return a vector")
        return Answer(result=result)


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0][:300] if str(error) else type(error).__name__
