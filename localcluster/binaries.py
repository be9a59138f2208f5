"""Where the control-plane and Prometheus binaries come from.

In order: ``MODELLOOP_CONTROLPLANE_DIR`` (a directory with all five binaries),
``KUBEBUILDER_ASSETS`` when it holds all five, else the cache that
``hack/controlplane/build.sh`` fills from the Go module proxy (it builds on the
first call and prints the directory). Prometheus is ``MODELLOOP_PROMETHEUS`` or
Debian's ``/usr/bin/prometheus``. A missing binary is an error, never a skip.
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
    explicit = os.environ.get("MODELLOOP_CONTROLPLANE_DIR")
    if explicit:
        found = _complete(explicit)
        if not found:
            raise MissingBinary(
                f"MODELLOOP_CONTROLPLANE_DIR={explicit} lacks one of {CONTROL_PLANE}"
            )
        return found
    assets = _complete(os.environ.get("KUBEBUILDER_ASSETS"))
    if assets:
        return assets
    build = subprocess.run(
        [str(REPO / "hack/controlplane/build.sh")], capture_output=True, text=True, check=False
    )
    built = _complete(build.stdout.strip().splitlines()[-1] if build.stdout.strip() else None)
    if build.returncode != 0 or not built:
        raise MissingBinary(f"hack/controlplane/build.sh failed:\n{build.stderr[-4000:]}")
    return built


def prometheus() -> Path:
    explicit = os.environ.get("MODELLOOP_PROMETHEUS") or shutil.which("prometheus")
    for candidate in (explicit, "/usr/bin/prometheus"):
        if candidate and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise MissingBinary("prometheus not found: run hack/install-system-deps.sh (Debian package)")
