"""The harness's data plane reads weights as Gateway API, Istio and a Service would apply
them, splits traffic in those proportions, and records only changes of the weights."""

import itertools
import math
import random
from collections import Counter

import pytest
from localcluster.traffic import (
    TrafficGenerator,
    WeightReader,
    choose,
    weights_of_deployments,
    weights_of_httproute,
    weights_of_virtualservice,
)
from localcluster.waiting import wait_for

# Each count may stray Z binomial standard deviations from its mean: a correct choice fails
# a check with probability 6e-5 whatever the seed, and with DRAWS draws the tolerance is
# within one percentage point, so a bias larger than that cannot pass.
Z = 4.0
DRAWS = 40_000


def backend(name: str, weight: int | None = None) -> dict[str, object]:
    return {"name": name, "port": 8080, **({} if weight is None else {"weight": weight})}


def test_httproute_weights_per_backend_over_all_rules() -> None:
    route = {
        "spec": {
            "rules": [
                {"backendRefs": [backend("fraud-v1", 90), backend("fraud-v2", 10)]},
                {
                    "matches": [{"headers": [{"name": "canary"}]}],
                    "backendRefs": [backend("fraud-v2")],
                },
            ]
        }
    }
    assert weights_of_httproute(route) == {"fraud-v1": 90, "fraud-v2": 11}


def test_httproute_keeps_zero_weights_and_a_missing_route_has_none() -> None:
    route = {"spec": {"rules": [{"backendRefs": [backend("a", 100), backend("b", 0)]}]}}
    assert weights_of_httproute(route) == {"a": 100, "b": 0}
    assert weights_of_httproute({}) == {}
    assert weights_of_httproute({"spec": {"rules": [{}]}}) == {}


@pytest.mark.parametrize("host", ["fraud-v2", "fraud-v2.ns", "fraud-v2.ns.svc.cluster.local"])
def test_virtualservice_weights_by_short_host_name(host: str) -> None:
    service = {
        "spec": {
            "http": [
                {
                    "route": [
                        {"destination": {"host": "fraud-v1.ns.svc.cluster.local"}, "weight": 75},
                        {"destination": {"host": host, "port": {"number": 80}}, "weight": 25},
                    ]
                }
            ]
        }
    }
    assert weights_of_virtualservice(service) == {"fraud-v1": 75, "fraud-v2": 25}


def test_virtualservice_missing_weight_is_all_for_a_sole_destination_else_none() -> None:
    sole = {"spec": {"http": [{"route": [{"destination": {"host": "a"}}]}]}}
    assert weights_of_virtualservice(sole) == {"a": 100}
    pair = {
        "spec": {
            "http": [{"route": [{"destination": {"host": "a"}}, {"destination": {"host": "b"}}]}]
        }
    }
    assert weights_of_virtualservice(pair) == {"a": 0, "b": 0}
    assert weights_of_virtualservice({}) == {}


def test_replica_weights_per_version_label() -> None:
    def deployment(version: str, replicas: int | None) -> dict[str, object]:
        spec = {} if replicas is None else {"replicas": replicas}
        labels = {"modelloop.dev/model": "fraud", "modelloop.dev/version": version}
        return {"metadata": {"labels": labels}, "spec": spec}

    deployments = [deployment("fraud-v1", 9), deployment("fraud-v2", None)]
    assert weights_of_deployments(deployments) == {"fraud-v1": 9, "fraud-v2": 1}
    assert weights_of_deployments([deployment("fraud-v1", 0)]) == {"fraud-v1": 0}


@pytest.mark.parametrize(
    "weights", [{"stable": 9, "canary": 1}, {"a": 1, "b": 2, "c": 7}, {"a": 50, "b": 50}]
)
def test_choice_follows_the_weights_within_binomial_noise(weights: dict[str, int]) -> None:
    counts = Counter(choose(weights, random.Random(7), DRAWS))
    total = sum(weights.values())
    for version, weight in weights.items():
        p = weight / total
        sd = math.sqrt(DRAWS * p * (1 - p))
        assert abs(counts[version] - DRAWS * p) <= Z * sd, (version, counts)


def test_choice_never_picks_a_version_without_weight() -> None:
    assert set(choose({"a": 0, "b": 3, "c": -1}, random.Random(7), 1000)) == {"b"}
    assert choose({"a": 0}, random.Random(7), 10) == []
    assert choose({}, random.Random(7), 10) == []


def scripted(*steps: dict[str, int] | Exception) -> WeightReader:
    """A reader that returns (or raises) each step in turn, then the last one forever."""
    script = itertools.chain(steps, itertools.repeat(steps[-1]))

    def read() -> dict[str, int]:
        step = next(script)
        if isinstance(step, Exception):
            raise step
        return dict(step)

    return read


def test_timeline_records_changes_only_and_failures_are_counted_not_raised() -> None:
    reader = scripted({}, {}, {}, {"a": 1}, RuntimeError("api down"), {"a": 1}, {"a": 3, "b": 1})
    generator = TrafficGenerator(reader, {}, {"mobile": 200.0}, refresh=0.01)
    generator.start()
    try:
        wait_for(lambda: generator.stats().failed.get("b", 0) > 0, 10, "requests to b")
    finally:
        generator.stop()
    stats = generator.stats()
    timeline = generator.timeline
    assert [o.weights for o in timeline] == [{}, {"a": 1}, {"a": 3, "b": 1}]
    assert [o.monotonic for o in timeline] == sorted(o.monotonic for o in timeline)
    assert stats.read_errors == 1
    assert stats.last_read_error == "RuntimeError('api down')"
    assert stats.unrouted > 0  # due while nothing had weight
    assert stats.delivered == {}  # no server for a or b: failures, not a crash
    assert stats.failed["a"] > 0
