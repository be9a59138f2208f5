"""A real Prometheus server (Debian's package) with a configuration the test writes."""

import base64
import urllib.request
from pathlib import Path
from typing import Any

import bcrypt
import yaml

from localcluster import binaries
from localcluster.processes import Process, free_port, wait_healthy


class PrometheusServer:
    """One ``prometheus`` process with its own TSDB under ``workdir``."""

    def __init__(
        self, workdir: Path, config: dict[str, Any], basic_auth: tuple[str, str] | None = None
    ) -> None:
        """``basic_auth``: (user, password) that the server then demands on every request."""
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.web_args: list[str] = []
        self.headers: dict[str, str] = {}
        if basic_auth is not None:
            user, password = basic_auth
            hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
            web = workdir / "web.yml"
            web.write_text(yaml.safe_dump({"basic_auth_users": {user: hashed}}))
            self.web_args = [f"--web.config.file={web}"]
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            self.headers = {"Authorization": f"Basic {token}"}
        self.config_file = workdir / "prometheus.yml"
        self.config_file.write_text(yaml.safe_dump(config))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = self._start()

    def _start(self) -> Process:
        process = Process(
            "prometheus",
            [
                str(binaries.prometheus()),
                f"--config.file={self.config_file}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-lifecycle",
                "--web.enable-admin-api",
                "--log.level=warn",
                *self.web_args,
            ],
            self.workdir,
        )
        try:
            wait_healthy(process, f"{self.url}/-/ready", 60, headers=self.headers)
        except BaseException:
            process.stop()
            raise
        return process

    def start_again(self) -> None:
        """After ``stop()``: the same address and data, as after an outage."""
        self.process = self._start()

    def reload(self, config: dict[str, Any]) -> None:
        self.config_file.write_text(yaml.safe_dump(config))
        request = urllib.request.Request(
            f"{self.url}/-/reload", method="POST", headers=self.headers
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200

    def stop(self) -> None:
        self.process.stop()


def scrape_config(targets: dict[str, str], interval: str = "1s") -> dict[str, Any]:
    """A config that scrapes each ``job name -> host:port`` target every ``interval``."""
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [target]}]}
            for job, target in targets.items()
        ],
    }
