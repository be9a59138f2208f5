"""Shared fixtures for every tier; the cluster fixtures start only when a test asks.

Tiers are marked by directory (tests/unit, tests/integration, tests/e2e), so
``pytest -m integration`` runs one tier. Nothing here skips: a control plane or a
Prometheus that cannot start is an error.
"""

import gc
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from localcluster.apply import install_crds
from localcluster.chart import OPERATOR_NAMESPACE, install_operator_identity
from localcluster.controlplane import ControlPlane, provide
from localcluster.exporter import Exporter
from localcluster.modelserver import ModelServer
from localcluster.operator_process import start_operator
from localcluster.processes import Process
from localcluster.prometheus import PrometheusServer, scrape_config
from localcluster.thirdparty import kserve_crds_dir, traffic_crds_dir, training_crds_dir
from localcluster.traffic import TrafficGenerator, WeightReader

from modelloop.kube.rest import Kube, Resource
from tests.harness.world import World

NAMESPACES = Resource("", "v1", "namespaces")
TIERS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for tier in TIERS:
            if f"tests/{tier}/" in item.path.as_posix():
                item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(autouse=True)
def finalised_here(request: pytest.FixtureRequest) -> Iterator[None]:
    """A cluster test's garbage is collected as it ends, so that a socket it left open is
    reported (a ResourceWarning, an error) in that test, not in whichever later test the
    collector happens to run in: CI once saw one land in a KServe test's setup."""
    yield
    if request.node.get_closest_marker("unit") is None:
        gc.collect()


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    workdir = tmp_path_factory.mktemp("cluster")
    cluster = provide(workdir)
    try:
        with cluster.admin.kube() as admin:
            install_crds(admin)
        install_operator_identity(cluster, workdir)
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def kube(control_plane: ControlPlane) -> Iterator[Kube]:
    """The tests' own client, as a cluster admin."""
    with control_plane.admin.kube() as admin:
        yield admin


@pytest.fixture
def namespace(
    kube: Kube, control_plane: ControlPlane, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A fresh namespace per test, named after it."""
    control_plane.check_running()
    stem = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    # Parametrized tests share their first 40 characters: the suffix alone tells them
    # apart, so it is long enough that two never meet (5 hex digits once did).
    name = f"{stem}-{uuid.uuid4().hex[:8]}"
    kube.create(
        NAMESPACES, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    )
    yield name
    kube.delete(NAMESPACES, None, name)


@pytest.fixture
def operator(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> Iterator[Callable[..., Process]]:
    """Starts the operator, a subprocess watching the test's namespace; one more per call."""
    started: list[Process] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Process:
        process = start_operator(
            control_plane.operator.kubeconfig,
            tmp_path,
            [namespace],
            name=f"operator-{len(started)}",
            args=args,
            # As the chart's Deployment says: its Secrets live in the release namespace.
            env={"MODELLOOP_NAMESPACE": OPERATOR_NAMESPACE, **(env or {})},
        )
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
        print(f"--- {process.log} (last lines)\n{process.log_tail(60)}")


@pytest.fixture
def exporter(tmp_path: Path) -> Iterator[Callable[[str, dict[str, Any]], Exporter]]:
    """Starts an exporter process serving the counters and histograms the test sets."""
    started: list[Exporter] = []

    def start(name: str, state: dict[str, Any]) -> Exporter:
        started.append(Exporter(tmp_path, name, state))
        return started[-1]

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[..., PrometheusServer]]:
    """Starts a real Prometheus with the configuration (and basic auth) the test gives."""
    servers: list[PrometheusServer] = []

    def start(
        config: dict[str, Any], basic_auth: tuple[str, str] | None = None
    ) -> PrometheusServer:
        server = PrometheusServer(tmp_path / f"prometheus-{len(servers)}", config, basic_auth)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def world(
    kube: Kube,
    namespace: str,
    tmp_path: Path,
    exporter: Callable[[str, dict[str, Any]], Exporter],
    prometheus: Callable[[dict[str, Any]], PrometheusServer],
    operator: Callable[..., Process],
) -> Callable[..., World]:
    """Makes the fraud model's world: its exporter, a Prometheus and the operator."""

    def make(spec: dict[str, Any], state: dict[str, Any], **options: Any) -> World:
        """``options``: more settings of the operator (providers, operator_args)."""
        served = exporter("exporter-v1", state)
        prom = prometheus(scrape_config({"model-v1": served.address}))
        return World(kube, namespace, tmp_path, served, prom, operator, spec, **options)

    return make


@pytest.fixture
def model_servers(tmp_path: Path) -> Iterator[Callable[..., ModelServer]]:
    """Starts a model server process per version, as good per slice as the test says, or
    serving a trained churn model (``artifact``)."""
    started: list[ModelServer] = []

    def start(
        model: str,
        version: str,
        accuracy: Mapping[str, float] | None = None,
        default: float = 0.9,
        seed: int = 7,
        artifact: Path | None = None,
    ) -> ModelServer:
        started.append(
            ModelServer(tmp_path, model, version, accuracy, default, seed, artifact=artifact)
        )
        return started[-1]

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def traffic_generator() -> Iterator[Callable[..., TrafficGenerator]]:
    """Starts the data plane's stand-in: each slice's traffic split by the weights read."""
    started: list[TrafficGenerator] = []

    def start(
        reader: WeightReader,
        servers: Mapping[str, ModelServer],
        rates: Mapping[str, float],
        **options: Any,
    ) -> TrafficGenerator:
        """``options``: refresh, label_delay, workers, seed (see TrafficGenerator)."""
        started.append(TrafficGenerator(reader, servers, rates, **options))
        started[-1].start()
        return started[-1]

    yield start
    for generator in started:
        generator.stop()


@pytest.fixture(scope="session")
def traffic_crds(kube: Kube) -> Path:
    """The upstream HTTPRoute and VirtualService CRDs (hack/thirdparty-crds.sh), installed
    once and served; returns their directory."""
    directory = traffic_crds_dir()
    install_crds(kube, directory)
    return directory


@pytest.fixture(scope="session")
def training_crds(kube: Kube) -> list[str]:
    """Kubeflow Trainer's, the training operator's and KubeRay's CRDs
    (hack/training-crds.sh), installed once."""
    return install_crds(kube, training_crds_dir())


@pytest.fixture(scope="session")
def kserve_crd(kube: Kube) -> list[str]:
    """KServe's InferenceService CRD, as its Go module ships it, installed once. (Installed
    through the session's client: a client made for it and dropped left its sockets to the
    garbage collector, whose ResourceWarning then failed whichever test it landed in.)"""
    return install_crds(kube, kserve_crds_dir())
