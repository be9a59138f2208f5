"""The rollout worlds of the e2e tests (fixtures shared by every tier are in tests/conftest.py)."""

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from localcluster.feedback import FeedbackService
from localcluster.modelserver import ModelServer
from localcluster.processes import Process
from localcluster.prometheus import PrometheusServer
from localcluster.traffic import TrafficGenerator
from tests.harness.canary import CanaryFleet, CanaryWorld, RolloutParts

from modelloop.kube.rest import Kube

# Requests/s per slice: 60 labelled samples in the metric's 15s window at 10%.
RATES = {"mobile": 40.0, "web": 40.0}


@pytest.fixture
def rollout_parts(
    kube: Kube,
    namespace: str,
    tmp_path: Path,
    traffic_crds: Path,
    model_servers: Callable[..., ModelServer],
    prometheus: Callable[..., PrometheusServer],
    operator: Callable[..., Process],
    traffic_generator: Callable[..., TrafficGenerator],
) -> RolloutParts:
    return RolloutParts(
        kube, namespace, tmp_path, model_servers, prometheus, operator, traffic_generator
    )


@pytest.fixture
def canary_world(rollout_parts: RolloutParts) -> Callable[..., CanaryWorld]:
    """Makes a churn model's rollout world on the given traffic provider."""

    def make(
        traffic: str,
        stable: Mapping[str, float],
        candidate: Mapping[str, float],
        rates: Mapping[str, float] = RATES,
        **spec: Any,
    ) -> CanaryWorld:
        return CanaryWorld(rollout_parts, traffic, stable, candidate, rates, spec)

    return make


@pytest.fixture
def canary_fleet(rollout_parts: RolloutParts) -> Callable[..., CanaryFleet]:
    """Makes ``size`` Models whose candidates are as good as their stable versions."""

    def make(
        size: int, accuracy: Mapping[str, float], rates: Mapping[str, float], **spec: Any
    ) -> CanaryFleet:
        return CanaryFleet(rollout_parts, size, accuracy, rates, spec)

    return make


@pytest.fixture
def feedback_service(tmp_path: Path) -> Iterator[Callable[[dict[str, Any]], FeedbackService]]:
    """Starts ``modelloop feedback`` processes with the settings given; each checked for
    tracebacks in its log when stopped."""
    started: list[FeedbackService] = []

    def start(settings: dict[str, Any]) -> FeedbackService:
        name = f"feedback-{len(started)}"
        started.append(FeedbackService(tmp_path / name, settings, name))
        return started[-1]

    yield start
    for service in started:
        service.stop()
    for service in started:
        assert "Traceback" not in service.process.log_text(), service.process.log
