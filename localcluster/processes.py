"""Child processes with a log file each, and the small things the harness waits on."""

import signal
import socket
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from localcluster.waiting import wait_for


def free_port() -> int:
    """A loopback port nobody listens on right now (the caller binds it soon after)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Process:
    """A long-running child whose output goes to ``<logs>/<name>.log``."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        logs: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        logs.mkdir(parents=True, exist_ok=True)
        self.log = logs / f"{name}.log"
        with self.log.open("ab") as out:
            self._popen = subprocess.Popen(
                list(argv),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def running(self) -> bool:
        return self._popen.poll() is None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def check_running(self) -> None:
        if not self.running:
            raise RuntimeError(
                f"{self.name} exited with {self._popen.returncode}; last lines of {self.log}:\n"
                + self.log_tail()
            )

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to finish anything."""
        if self.running:
            self._popen.send_signal(signal.SIGKILL)
        self._popen.wait()

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds."""
        if self.running:
            self._popen.send_signal(signal.SIGTERM)
            try:
                self._popen.wait(grace)
            except subprocess.TimeoutExpired:
                self.kill()


def http_ok(
    url: str,
    context: ssl.SSLContext | None = None,
    expect: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> bool:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=2, context=context) as response:
            body: bytes = response.read()
            return response.status == 200 and (expect is None or expect in body)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def wait_healthy(
    process: Process,
    url: str,
    timeout: float,
    context: ssl.SSLContext | None = None,
    expect: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> None:
    def healthy() -> bool:
        process.check_running()
        return http_ok(url, context, expect, headers)

    wait_for(healthy, timeout, f"{process.name} healthy at {url}")
