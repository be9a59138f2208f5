"""``modelloop feedback`` as a child process, with a settings file the caller writes; a
small client that posts its batches; and KServe's inference logger, played: the two
CloudEvents its agent sends for each inference (``KServeLogger``)."""

import http.client
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from localcluster.processes import Process, free_port, wait_healthy
from modelloop.api.vocabulary import LABEL_VERSION
from modelloop.feedback.kserve import REQUEST, RESPONSE


def post(url: str, payload: Any, timeout: float = 30.0) -> tuple[int, Any]:
    """POST ``payload`` (JSON, or bytes as they are); the status and the decoded reply."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


class FeedbackService:
    """One service process on its own port and store file under ``workdir``; started
    again (``start``) after a ``kill`` or ``stop``, it finds its store."""

    def __init__(self, workdir: Path, settings: dict[str, Any], name: str = "feedback") -> None:
        self.workdir = workdir
        self.name = name
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.address}"
        self.settings_file = workdir / f"{name}.yaml"
        settings = {
            "listen": self.address,
            "store": {"path": str(workdir / f"{name}.db")},
            **settings,
        }
        self.settings_file.write_text(yaml.safe_dump(settings))
        self.start()

    def start(self) -> None:
        argv = [sys.executable, "-m", "modelloop", "feedback", "--config", str(self.settings_file)]
        self.process: Process = Process(self.name, argv, self.workdir)
        try:
            wait_healthy(self.process, f"{self.url}/healthz", 30)
        except BaseException:
            self.process.stop()
            raise

    def predictions(self, records: list[dict[str, Any]]) -> tuple[int, Any]:
        return post(f"{self.url}/v1/predictions", {"predictions": records})

    def labels(self, records: list[dict[str, Any]]) -> tuple[int, Any]:
        return post(f"{self.url}/v1/labels", {"labels": records})

    def metrics(self) -> str:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=10) as response:
            text: str = response.read().decode()
            return text

    def kill(self) -> None:
        self.process.kill()

    def stop(self) -> None:
        self.process.stop()


def kserve_headers(
    kind: str, event_id: str, model: str, version: str, sent: float, namespace: str = "ml"
) -> dict[str, str]:
    """The headers of one event as KServe's logger agent sends it (kserve/kserve,
    pkg/logger/worker.go, binary mode through the cloudevents Go SDK, Go's canonical
    case): the attributes, the extensions, and the InferenceService's annotation
    ``modelloop.dev/version`` as listed in ``logger.metadataAnnotations``."""
    return {
        "User-Agent": "Go-http-client/1.1",
        "Ce-Specversion": "1.0",
        "Ce-Id": event_id,
        "Ce-Source": f"http://{model}-predictor-00001-deployment-6b9c8f9d4-x2x7k/",
        "Ce-Type": kind,
        "Ce-Time": datetime.fromtimestamp(sent, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "Ce-Inferenceservicename": model,
        "Ce-Namespace": namespace,
        "Ce-Component": "predictor",
        "Ce-Endpoint": "",
        "Ce-Metadata": "{}",
        "Ce-Annotations": json.dumps({LABEL_VERSION: version}),
        "Content-Type": "application/json",
        "Accept-Encoding": "gzip",
    }


class KServeLogger:
    """KServe's logger agent for one InferenceService: for each inference, the request
    event then the response event, one POST each, to ``url`` (the feedback service's
    ``/v1/kserve``) over one keep-alive connection. Not thread-safe: one sender each."""

    def __init__(self, url: str, model: str, version: str, timeout: float = 5.0) -> None:
        parts = urllib.parse.urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.path = parts.path or "/"
        self.model, self.version, self.timeout = model, version, timeout
        self._connection: http.client.HTTPConnection | None = None

    def send(
        self, event_id: str, request: dict[str, Any], response: dict[str, Any], sent: float
    ) -> list[int]:
        """The statuses of the two events; 0 for an event that could not be sent."""
        return [
            self._post(kserve_headers(kind, event_id, self.model, self.version, sent), body)
            for kind, body in ((REQUEST, request), (RESPONSE, response))
        ]

    def _post(self, headers: dict[str, str], body: dict[str, Any]) -> int:
        if self._connection is None:
            self._connection = http.client.HTTPConnection(self.host, self.port, self.timeout)
        try:
            self._connection.request("POST", self.path, json.dumps(body).encode(), headers)
            response = self._connection.getresponse()
            response.read()
            return response.status
        except (OSError, http.client.HTTPException):
            self.close()  # connects again for the next event
            return 0

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
