"""``make demo``: the operator against a cluster, with an example Model applied.

With ``KUBECONFIG`` set, that cluster is used (the CRDs are applied to it). Without
it, a local control plane starts under ``.tmp/demo`` (etcd, kube-apiserver,
controllers and kwok's simulated node; see tests/harness/controlplane.py). The
operator runs as a subprocess; the demo applies examples/fraud-detector.yaml and
its first version, prints the Model as ``kubectl get models`` would, and keeps
running until Ctrl-C (``--once`` stops as soon as the Model is Ready).
"""

import argparse
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from tests.harness import binaries
from tests.harness.apply import apply, apply_files, install_crds, load
from tests.harness.controlplane import ExternalCluster, LocalControlPlane
from tests.harness.operator_process import start_operator
from tests.harness.waiting import wait_for

from modelloop.api.resources import GROUP, VERSION
from modelloop.kube.rest import Kube, KubeError, Resource

REPO = Path(__file__).parents[2]
WORKDIR = REPO / ".tmp" / "demo"
NAMESPACE = "modelloop-demo"
EXAMPLES = [REPO / "examples" / "fraud-detector.yaml", REPO / "examples" / "fraud-detector-v1.yaml"]
MODELS = Resource(GROUP, VERSION, "models")
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"


def table(kube: Kube, resource: Resource, namespace: str) -> str:
    """The resource as ``kubectl get`` prints it: the CRD's printer columns."""
    result: dict[str, Any] = kube.request("GET", resource.path(namespace), accept=TABLE)
    columns = [c["name"].upper() for c in result["columnDefinitions"] if c.get("priority", 0) == 0]
    rows = [
        ["" if c is None else str(c) for c in row["cells"][: len(columns)]]
        for row in result["rows"]
    ]
    widths = [max(len(x) for x in column) for column in zip(columns, *rows, strict=False)]
    return "\n".join(
        "   ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=False)).rstrip()
        for line in [columns, *rows]
    )


def ready(kube: Kube) -> bool:
    model = kube.get(MODELS, NAMESPACE, "fraud-detector") or {}
    conditions = (model.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--once", action="store_true", help="stop once the example Model is Ready")
    args = parser.parse_args(argv)

    if os.environ.get("KUBECONFIG"):
        cluster: LocalControlPlane | ExternalCluster = ExternalCluster(
            Path(os.environ["KUBECONFIG"])
        )
        print(f"using the cluster of KUBECONFIG={os.environ['KUBECONFIG']}")
    else:
        shutil.rmtree(WORKDIR, ignore_errors=True)
        WORKDIR.mkdir(parents=True)
        print(
            f"starting a local control plane in {WORKDIR} (etcd, kube-apiserver, controllers, kwok)"
        )
        cluster = LocalControlPlane(WORKDIR).start()
    operator = None
    try:
        kube = cluster.admin.kube()
        print("installing CRDs:", ", ".join(install_crds(kube)))
        apply(kube, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
        operator = start_operator(cluster.operator.kubeconfig, WORKDIR / "logs", [NAMESPACE])
        print(f"operator running (pid {operator.pid}), log: {operator.log}")
        apply_files(kube, EXAMPLES, NAMESPACE)
        applied = [f"{m['kind']}/{m['metadata']['name']}" for p in EXAMPLES for m in load(p)]
        print(f"applied {', '.join(applied)} in namespace {NAMESPACE}")
        running = operator

        def model_ready() -> bool:
            running.check_running()
            return ready(kube)

        wait_for(model_ready, 120, "the example Model Ready")
        print("\n" + table(kube, MODELS, NAMESPACE) + "\n")
        print(f"explore it: export KUBECONFIG={cluster.admin.kubeconfig}")
        built = binaries.control_plane_dir() / "kubectl"
        kubectl = built if built.exists() else "kubectl"
        print(f"            {kubectl} get models,modelversions,deployments,services -n {NAMESPACE}")
        if args.once:
            return 0
        print(
            "running; Ctrl-C stops the operator"
            + (" and the control plane" if isinstance(cluster, LocalControlPlane) else "")
        )
        while True:
            time.sleep(5)
            operator.check_running()
    except KeyboardInterrupt:
        return 0
    except (KubeError, AssertionError, RuntimeError) as error:
        print(f"demo failed: {error}", file=sys.stderr)
        if operator is not None:
            print(operator.log_tail(), file=sys.stderr)
        return 1
    finally:
        if operator is not None:
            operator.stop()
        cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
