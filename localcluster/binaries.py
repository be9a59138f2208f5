"""Where the control-plane and Prometheus binaries come from.

In order: ``MODELLOOP_CONTROLPLANE_DIR`` (a directory with all five binaries),
``KUBEBUILDER_ASSETS`` when it holds all five, else the cache that
``hack/controlplane/build.sh`` fills from the Go module proxy (it builds on the
first call and prints the directory). ``MODELLOOP_KUBE_VERSION=1.31`` asks for an
older supported minor instead of the newest: ``build.sh 1.31`` builds it from
``hack/controlplane/k8s-1.31/`` into a cache of its own (``KUBEBUILDER_ASSETS`` is
then not used), and the kube-apiserver found must report that minor. Prometheus is
``MODELLOOP_PROMETHEUS`` or Debian's ``/usr/bin/prometheus``. A missing binary is
an error, never a skip.
"""

import os
import shutil
import subprocess
from functools import cache
from pathlib import Path

REPO = Path(__file__).parents[1]
CONTROL_PLANE = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")


class MissingBinary(RuntimeError):
    pass


def _complete(directory: str | None) -> Path | None:
    if not directory:
        return None
    path = Path(directory)
    return path if all(os.access(path / b, os.X_OK) for b in CONTROL_PLANE) else None


@cache
def control_plane_dir() -> Path:
    minor = os.environ.get("MODELLOOP_KUBE_VERSION", "")
    found = _find(minor)
    if minor:
        _check_minor(found, minor)
    return found


def _find(minor: str) -> Path:
    explicit = os.environ.get("MODELLOOP_CONTROLPLANE_DIR")
    if explicit:
        found = _complete(explicit)
        if not found:
            raise MissingBinary(
                f"MODELLOOP_CONTROLPLANE_DIR={explicit} lacks one of {CONTROL_PLANE}"
            )
        return found
    assets = None if minor else _complete(os.environ.get("KUBEBUILDER_ASSETS"))
    if assets:
        return assets
    command = [str(REPO / "hack/controlplane/build.sh"), *([minor] if minor else [])]
    build = subprocess.run(command, capture_output=True, text=True, check=False)
    built = _complete(build.stdout.strip().splitlines()[-1] if build.stdout.strip() else None)
    if build.returncode != 0 or not built:
        asked = f"hack/controlplane/build.sh {minor}".strip()
        raise MissingBinary(f"{asked} failed:\n{build.stderr[-4000:]}")
    return built


def _check_minor(directory: Path, minor: str) -> None:
    """The kube-apiserver in ``directory`` is the minor asked for (``Kubernetes v1.31.14``)."""
    said = subprocess.run(
        [str(directory / "kube-apiserver"), "--version"], capture_output=True, text=True
    ).stdout.strip()
    if not said.startswith(f"Kubernetes v{minor}."):
        raise MissingBinary(f"MODELLOOP_KUBE_VERSION={minor} but {directory} holds {said!r}")


def prometheus() -> Path:
    explicit = os.environ.get("MODELLOOP_PROMETHEUS") or shutil.which("prometheus")
    for candidate in (explicit, "/usr/bin/prometheus"):
        if candidate and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise MissingBinary("prometheus not found: run hack/install-system-deps.sh (Debian package)")
