"""The rollout's metrics follow the canary: series appear with a rollout and go with it."""

from modelloop.api.model import CanaryStatus
from modelloop.monitoring.series import BoundedRegistry
from modelloop.rollout.telemetry import RolloutTelemetry

LABELS = {"namespace": "ns", "model": "m"}


def value(registry: BoundedRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, {**LABELS, **labels})


def test_weight_phase_and_analyses_follow_the_rollout() -> None:
    registry = BoundedRegistry()
    telemetry = RolloutTelemetry(registry)
    canary = CanaryStatus(version="m-v2", weight=10, phase="Progressing")
    telemetry.record("ns", "m", canary, "pass")
    telemetry.record("ns", "m", canary.model_copy(update={"weight": 50}), "pass")
    assert value(registry, "modelloop_rollout_canary_weight", version="m-v2") == 50
    assert value(registry, "modelloop_rollout_phase", phase="Progressing") == 1
    assert value(registry, "modelloop_rollout_phase", phase="Paused") == 0
    assert value(registry, "modelloop_canary_analyses_total", outcome="pass") == 2

    telemetry.record("ns", "m", None, "fail")  # the analysis that rolled it back
    assert value(registry, "modelloop_canary_analyses_total", outcome="fail") == 1
    assert value(registry, "modelloop_rollout_canary_weight", version="m-v2") is None
    assert value(registry, "modelloop_rollout_phase", phase="Progressing") is None


def test_a_new_canary_replaces_the_previous_weight_series() -> None:
    registry = BoundedRegistry()
    telemetry = RolloutTelemetry(registry)
    telemetry.record("ns", "m", CanaryStatus(version="m-v2", weight=10), None)
    telemetry.record("ns", "m", CanaryStatus(version="m-v3", weight=0), None)
    assert value(registry, "modelloop_rollout_canary_weight", version="m-v2") is None
    assert value(registry, "modelloop_rollout_canary_weight", version="m-v3") == 0
    telemetry.forget("ns", "m")
    assert value(registry, "modelloop_rollout_canary_weight", version="m-v3") is None
