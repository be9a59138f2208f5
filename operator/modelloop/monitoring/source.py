"""One configured Prometheus endpoint: instant queries with a timeout, each failure
named by kind, every request counted. Synchronous (prometheus-api-client uses
requests): call it from worker threads, never from the event loop.

A fault stays the fault of one query: nothing a query meets raises out of ``query``.
No retries: a refused connection fails at once and a silent endpoint after its
timeout, so the next cycle asks again instead of the client sleeping between tries
(prometheus-api-client retries three times with back-off by default)."""

import time
from typing import Any

import requests
from prometheus_api_client.exceptions import PrometheusApiClientException
from prometheus_api_client.prometheus_connect import PrometheusConnect
from pydantic_core import from_json
from urllib3.util.retry import Retry

from .providers import Credentials, ProviderConfig
from .readings import Answer
from .telemetry import Telemetry

NO_RETRIES = Retry(total=0, read=False)  # as requests' own default: a read timeout stays one


class FormQueries(PrometheusConnect):
    """prometheus-api-client with an instant query's parameters in a POST's form body.

    Its own POST still puts them in the URL, and a combined query is kilobytes of PromQL
    (a Model's slices and versions, each a part): past a proxy's URL limit (often 8 KiB)
    or Prometheus' own (1 MiB of headers) it is refused, and requests and urllib3 quote
    it again byte by byte in Python, more than half of a request's CPU. Prometheus reads
    a POST's form body as it reads the URL's parameters."""

    def custom_query(
        self, query: str, params: dict[str, Any] | None = None, timeout: float | None = None
    ) -> Any:
        response = self._session.request(
            method="POST",
            url=f"{self.url}/api/v1/query",
            data={"query": str(query), **(params or {})},
            verify=self._session.verify,
            headers=self.headers,
            auth=self.auth,
            cert=self._session.cert,
            timeout=self._timeout if timeout is None else timeout,
        )
        if response.status_code != 200:
            raise PrometheusApiClientException(
                f"HTTP Status Code {response.status_code} ({response.content!r})"
            )
        # pydantic's JSON reader, not requests' (the stdlib's): a grouped answer repeats
        # its label names and most values on every series, and it decodes one of 2500
        # Models' series 1.4 times as fast, one string held per repeated value.
        return from_json(response.content, cache_strings="all")["data"]["result"]


class PrometheusSource:
    def __init__(
        self, config: ProviderConfig, credentials: Credentials, telemetry: Telemetry
    ) -> None:
        self.name = config.name
        self.url = config.url
        self.max_concurrency = config.max_concurrency
        self._timeout = config.timeout.delta.total_seconds()
        self._credentials_error = credentials.error
        self._ca_file = config.tls.ca_file
        self._telemetry = telemetry
        session = requests.Session()
        # The client ignores disable_ssl when given a session: the session says it.
        if config.tls.insecure_skip_verify:
            session.verify = False
        elif config.tls.ca_file:
            session.verify = config.tls.ca_file
        # The library's annotations are narrower than what it accepts (None, float).
        options: dict[str, Any] = {
            "headers": credentials.headers,
            "auth": credentials.auth,
            "timeout": self._timeout,
            "retry": NO_RETRIES,
        }
        self._client = FormQueries(url=config.url, session=session, **options)

    def problem(self) -> str | None:
        """Why no query can be sent now (credentials, an unreadable CA file), or None.
        The CA file is checked every time: a Secret volume may be mounted late."""
        if self._credentials_error is not None:
            return self._credentials_error
        if self._ca_file is not None:
            try:
                with open(self._ca_file, "rb") as ca:
                    ca.read(1)
            except OSError as error:
                cause = error.strerror or type(error).__name__
                return f"provider {self.name}: tls.caFile {self._ca_file} cannot be read: {cause}"
        return None

    def query(self, promql: str) -> Answer:
        problem = self.problem()
        if problem is not None:
            return Answer(error=problem)
        started = time.monotonic()
        kind = None
        try:
            result = self._client.custom_query(promql, params={"timeout": f"{self._timeout:g}"})
        except requests.Timeout:
            kind, error = "timeout", f"Prometheus {self.name} timed out after {self._timeout:g}s"
        except requests.exceptions.SSLError as exc:
            kind, error = "tls", f"Prometheus {self.name}: TLS: {_first_line(exc)}"
        except requests.ConnectionError as exc:
            kind, error = "connection", f"Prometheus {self.name} unreachable: {_first_line(exc)}"
        except PrometheusApiClientException as exc:
            kind, error = "http", f"Prometheus {self.name} refused the query: {_first_line(exc)}"
        except (requests.RequestException, ValueError, KeyError) as exc:
            kind, error = "response", f"Prometheus {self.name}: bad response: {_first_line(exc)}"
        except Exception as exc:  # whatever else one query meets is that query's error
            problem = self.problem()  # e.g. the CA file went away since the last check
            kind = "other"
            error = problem or f"Prometheus {self.name}: {type(exc).__name__}: {_first_line(exc)}"
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
