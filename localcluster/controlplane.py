"""A real, local Kubernetes control plane: etcd, kube-apiserver (RBAC on),
kube-controller-manager, kube-scheduler and kwok with one simulated node.

What plays a missing piece, openly: kwok stands in for kubelets and a container
runtime. Its Stages (localcluster/kwok/stages.yaml) make scheduled pods Running
and Ready, so the real Deployment controller marks Deployments Available, and
finish Job pods so the real Job controller completes Jobs — except pods labelled
``modelloop.dev/training``, whose result the harness writes as a kubelet would.

Every client (tests, the components) reaches the API server through a kubeconfig
file with its own client certificate, so RBAC and admission policies see real user
names; the operator speaks as the Helm chart's ServiceAccount (localcluster.chart).
"""

import os
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from localcluster import binaries
from localcluster.pki import CertificateAuthority, KeyPair, service_account_key
from localcluster.processes import Process, free_port, wait_healthy
from localcluster.waiting import wait_for
from modelloop.kube.rest import Kube, Resource

STAGES = Path(__file__).parent / "kwok" / "stages.yaml"
NODE_NAME = "kwok-node-0"
MASTERS = ("system:masters",)
NODES = Resource("", "v1", "nodes")
SERVICE_ACCOUNTS = Resource("", "v1", "serviceaccounts")


@dataclass(frozen=True)
class Identity:
    """Who a kubeconfig speaks as."""

    user: str
    kubeconfig: Path

    def kube(self) -> Kube:
        return Kube.from_kubeconfig(str(self.kubeconfig))


def write_kubeconfig(path: Path, server: str, ca: Path, client: KeyPair, user: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "local",
                        "cluster": {"server": server, "certificate-authority": str(ca)},
                    }
                ],
                "users": [
                    {
                        "name": user,
                        "user": {
                            "client-certificate": str(client.cert),
                            "client-key": str(client.key),
                        },
                    }
                ],
                "contexts": [{"name": "local", "context": {"cluster": "local", "user": user}}],
                "current-context": "local",
            }
        )
    )
    path.chmod(0o600)
    return path


# Writes (with the custom resources' request bodies) and reads, not watches: what
# ``python -m bench.scale.audit`` reads back. Stage RequestReceived is left out: each
# request is logged once, when answered.
AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Request
  verbs: [create, update, patch, delete]
  resources: [{group: modelloop.dev}]
- level: Metadata
  verbs: [create, update, patch, delete, get, list]
"""


class LocalControlPlane:
    """Starts the whole control plane in ``workdir``; ``stop()`` ends every process.
    ``audit``: the API server writes an audit log of every request but watches to
    ``workdir/audit.log`` (``audit_log``)."""

    def __init__(self, workdir: Path, bin_dir: Path | None = None, audit: bool = False) -> None:
        self.workdir = workdir
        self.audit_log = workdir / "audit.log" if audit else None
        self.bin = bin_dir or binaries.control_plane_dir()
        self.logs = workdir / "logs"
        self.processes: list[Process] = []
        self.server = ""
        self.admin: Identity
        self.operator: Identity  # the chart's ServiceAccount: localcluster.chart

    def _start(self, name: str, *args: str) -> Process:
        process = Process(name, [str(self.bin / name), *args], self.logs)
        self.processes.append(process)
        return process

    def start(self) -> "LocalControlPlane":
        try:
            self._start_all()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_all(self) -> None:
        pki = self.workdir / "pki"
        ca = CertificateAuthority(pki)
        serving = ca.serving("apiserver", ["127.0.0.1", "localhost", "kubernetes.default.svc"])
        sa = service_account_key(pki)

        etcd_port, etcd_peer = free_port(), free_port()
        etcd = self._start(
            "etcd",
            f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
            f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
            f"--listen-peer-urls=http://127.0.0.1:{etcd_peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}",
            f"--initial-cluster=default=http://127.0.0.1:{etcd_peer}",
            "--unsafe-no-fsync=true",
            # The default 2 GiB would fill at about 10 000 Models (make bench-scale): every
            # object's history until the API server compacts it, every 5 minutes.
            "--quota-backend-bytes=8589934592",
            "--log-level=warn",
        )
        wait_healthy(etcd, f"http://127.0.0.1:{etcd_port}/health", 60, expect=b'"true"')

        port = free_port()
        self.server = f"https://127.0.0.1:{port}"
        self._apiserver_args = (
            f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            "--endpoint-reconciler-type=none",  # loopback may not be an Endpoints address
            f"--secure-port={port}",
            f"--tls-cert-file={serving.cert}",
            f"--tls-private-key-file={serving.key}",
            f"--client-ca-file={ca.cert}",
            "--authorization-mode=RBAC",
            "--service-cluster-ip-range=10.0.0.0/16",  # thousands of Services (bench-scale)
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={sa.cert}",
            f"--service-account-signing-key-file={sa.key}",
            "--allow-privileged=true",
            "--profiling=true",  # admin-only; bench-scale --apiserver-profile
            "--v=1",
            *self._audit_args(),
        )
        apiserver = self._start("kube-apiserver", *self._apiserver_args)
        admin_cert = ca.client("admin", "admin", MASTERS)
        tls = ssl.create_default_context(cafile=str(ca.cert))
        tls.load_cert_chain(str(admin_cert.cert), str(admin_cert.key))
        self._admin_tls = tls
        wait_healthy(apiserver, f"{self.server}/readyz", 120, context=tls)

        def kubeconfig(stem: str, user: str, groups: tuple[str, ...]) -> Path:
            cert = admin_cert if stem == "admin" else ca.client(stem, user, groups)
            return write_kubeconfig(
                self.workdir / f"{stem}.kubeconfig", self.server, ca.cert, cert, user
            )

        self.admin = Identity("admin", kubeconfig("admin", "admin", MASTERS))
        controller_manager = kubeconfig("controller-manager", "system:kube-controller-manager", ())
        scheduler = kubeconfig("scheduler", "system:kube-scheduler", ())
        kwok = kubeconfig("kwok", "kwok-controller", MASTERS)

        self._start(
            "kube-controller-manager",
            f"--kubeconfig={controller_manager}",
            "--leader-elect=false",
            "--secure-port=0",
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={sa.key}",
            f"--root-ca-file={ca.cert}",
            f"--cluster-signing-cert-file={ca.cert}",
            f"--cluster-signing-key-file={ca.key}",
            # Defaults 20/30: thousands of Deployments (make bench-scale) would wait on the
            # controllers' own client limit, not on the operator.
            "--kube-api-qps=200",
            "--kube-api-burst=400",
            "--v=1",
        )
        self._start(
            "kube-scheduler",
            f"--kubeconfig={scheduler}",
            "--leader-elect=false",
            "--secure-port=0",
            "--kube-api-qps=200",
            "--kube-api-burst=400",
            "--v=1",
        )
        self._start(
            "kwok",
            f"--kubeconfig={kwok}",
            f"--config={STAGES}",
            "--manage-all-nodes=true",
            # The node's Lease is its heartbeat (the Stages post status every ~10 min);
            # without it the node controller finds the node stale after 50 s and marks
            # every pod NotReady for good, stalling any Deployment waiting to be Available.
            "--node-lease-duration-seconds=40",
            f"--server-address=127.0.0.1:{free_port()}",
        )
        self._add_node()

    def _audit_args(self) -> tuple[str, ...]:
        if self.audit_log is None:
            return ()
        policy = self.workdir / "audit-policy.yaml"
        policy.write_text(AUDIT_POLICY)
        return (f"--audit-policy-file={policy}", f"--audit-log-path={self.audit_log}")

    def _add_node(self) -> None:
        with self.admin.kube() as kube:
            kube.create(
                NODES,
                None,
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {
                        "name": NODE_NAME,
                        "annotations": {
                            "kwok.x-k8s.io/node": "fake",
                            "node.alpha.kubernetes.io/ttl": "0",
                        },
                        "labels": {
                            "kubernetes.io/hostname": NODE_NAME,
                            "kubernetes.io/os": "linux",
                            "kubernetes.io/arch": "amd64",
                            "type": "kwok",
                        },
                    },
                },
            )

            def node_ready() -> bool:
                self.check_running()
                node = kube.get(NODES, None, NODE_NAME) or {}
                conditions = (node.get("status") or {}).get("conditions") or []
                return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

            wait_for(node_ready, 60, f"node {NODE_NAME} Ready (kwok)")

            # The service-account controller runs: pods can be admitted in new namespaces.
            def default_service_account() -> bool:
                self.check_running()
                return kube.get(SERVICE_ACCOUNTS, "default", "default") is not None

            wait_for(
                default_service_account, 60, "the default ServiceAccount (kube-controller-manager)"
            )

    def check_running(self) -> None:
        for process in self.processes:
            process.check_running()

    def restart_apiserver(self, down: float = 0.0) -> None:
        """An API server crash as its clients see it: SIGKILL kube-apiserver, wait ``down``
        seconds, start it again with the same flags (address, certificates, etcd), and
        return once it is ready. The other components and every client reconnect."""
        [index] = [i for i, p in enumerate(self.processes) if p.name == "kube-apiserver"]
        self.processes[index].kill()
        time.sleep(down)
        self.processes[index] = Process(
            "kube-apiserver",
            [str(self.bin / "kube-apiserver"), *self._apiserver_args],
            self.logs,
        )
        wait_healthy(self.processes[index], f"{self.server}/readyz", 120, context=self._admin_tls)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()


class ExternalCluster:
    """Any cluster given by ``MODELLOOP_TEST_KUBECONFIG`` (the tests' identity there)."""

    def __init__(self, kubeconfig: Path) -> None:
        self.admin = Identity(_whoami(kubeconfig), kubeconfig)
        self.operator: Identity  # the chart's ServiceAccount: localcluster.chart
        self.server = ""

    def start(self) -> "ExternalCluster":
        return self

    def check_running(self) -> None:
        pass

    def stop(self) -> None:
        pass


def _whoami(kubeconfig: Path) -> str:
    with Kube.from_kubeconfig(str(kubeconfig)) as kube:
        review = kube.request(
            "POST",
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        )
    return str(review["status"]["userInfo"]["username"])


ControlPlane = LocalControlPlane | ExternalCluster


def provide(workdir: Path) -> ControlPlane:
    """The cluster the tests run against: an external one when configured, else a local one."""
    external = os.environ.get("MODELLOOP_TEST_KUBECONFIG")
    if external:
        return ExternalCluster(Path(external)).start()
    return LocalControlPlane(workdir).start()


def main() -> None:
    """``python -m localcluster.controlplane WORKDIR``: a local control plane for other
    programs (e.g. the suites through ``MODELLOOP_TEST_KUBECONFIG``); prints the admin
    kubeconfig's path and runs until SIGTERM or Ctrl-C."""
    import signal
    import sys

    cluster = LocalControlPlane(Path(sys.argv[1]).resolve()).start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        print(cluster.admin.kubeconfig, flush=True)
        while True:
            signal.pause()
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
