"""The operator as tests and the demo run it: ``python -m modelloop run`` in a
subprocess, talking to the cluster only through a kubeconfig file, so a test can
SIGKILL it at any point and start a fresh one."""

import os
import sys
from pathlib import Path

from localcluster.processes import Process

REPO = Path(__file__).parents[1]


def start_operator(
    kubeconfig: Path,
    logs: Path,
    namespaces: list[str],
    name: str = "operator",
    args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> Process:
    """The operator with its /metrics off unless ``args`` asks (tests run several at once)."""
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "PYTHONUNBUFFERED": "1", **(env or {})}
    argv = [sys.executable, "-m", "modelloop", "run", "--verbose", "--metrics-address=", *args]
    for namespace in namespaces:
        argv += ["--namespace", namespace]
    return Process(name, argv, logs, env=env, cwd=REPO)
