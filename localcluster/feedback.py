"""``modelloop feedback`` as a child process, with a settings file the caller writes; and
a small client that posts its batches."""

import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from localcluster.processes import Process, free_port, wait_healthy


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
