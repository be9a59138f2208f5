"""Where the upstream CRDs of the traffic providers (HTTPRoute, VirtualService) and of
KServe's InferenceService come from.

``hack/thirdparty-crds.sh`` fetches them from the Go module proxy on its first call
and prints the cached directory; a failure is an error, never a skip.
"""

import subprocess
from functools import cache
from pathlib import Path

REPO = Path(__file__).parents[1]
SCRIPT = REPO / "hack/thirdparty-crds.sh"


class MissingCrds(RuntimeError):
    pass


@cache
def traffic_crds_dir() -> Path:
    """The directory holding the HTTPRoute and VirtualService CRDs."""
    run = subprocess.run([str(SCRIPT)], capture_output=True, text=True, check=False)
    lines = run.stdout.strip().splitlines()
    if run.returncode != 0 or not lines or not Path(lines[-1]).is_dir():
        raise MissingCrds(f"{SCRIPT.name} failed:\n{run.stderr[-4000:]}")
    return Path(lines[-1])


def kserve_crds_dir() -> Path:
    """The directory holding KServe's InferenceService CRD (the fake KServe of
    localcluster/kserve.py serves what it declares)."""
    return traffic_crds_dir() / "kserve"


TRAINING_SCRIPT = REPO / "hack/training-crds.sh"


@cache
def training_crds_dir() -> Path:
    """The directory holding the training workloads' CRDs (TrainJob, PyTorchJob, RayJob),
    fetched by hack/training-crds.sh (its header names the versions)."""
    run = subprocess.run([str(TRAINING_SCRIPT)], capture_output=True, text=True, check=False)
    lines = run.stdout.strip().splitlines()
    if run.returncode != 0 or not lines or not Path(lines[-1]).is_dir():
        raise MissingCrds(f"{TRAINING_SCRIPT.name} failed:\n{run.stderr[-4000:]}")
    return Path(lines[-1])
