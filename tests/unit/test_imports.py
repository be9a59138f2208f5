import subprocess
import sys


def test_importing_the_handlers_touches_no_cluster() -> None:
    """Importing must not read a kubeconfig or open a connection."""
    code = "import modelloop.handlers, modelloop.__main__; print('ok')"
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={"KUBECONFIG": "/nonexistent/kubeconfig", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
