import time
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from bench.scale.measure import Fleet, Reading, by_request, counters, restarted
from bench.scale.report import (
    APISERVER_KINDS,
    CatchUpEdits,
    Window,
    bucket_quantile,
    burst,
    catch_up_edits,
    mean_answer_ms,
    restart,
    spread,
    stored_bytes,
    window,
)
from bench.scale.world import edit_patch

from modelloop.kube.delivery import written_at

BEFORE = {"0.1": 10.0, "1.0": 10.0, "10.0": 10.0, "+Inf": 10.0}


@pytest.mark.parametrize(
    ("after", "q", "bound"),
    [
        # 100 waits since: 98 within 0.1 s, 2 within 10 s: p99 is in the 10 s bucket.
        ({"0.1": 108.0, "1.0": 108.0, "10.0": 110.0, "+Inf": 110.0}, 0.99, 10.0),
        ({"0.1": 108.0, "1.0": 108.0, "10.0": 110.0, "+Inf": 110.0}, 0.5, 0.1),
        # one wait past the last bound: that bound (or more)
        ({"0.1": 10.0, "1.0": 10.0, "10.0": 10.0, "+Inf": 11.0}, 0.99, 10.0),
        # nothing observed in the window
        (BEFORE, 0.99, 0.0),
    ],
)
def test_the_quantile_of_a_window_is_the_bound_of_its_bucket(
    after: dict[str, float], q: float, bound: float
) -> None:
    assert bucket_quantile(BEFORE, after, q) == bound


def test_a_histogram_first_read_after_the_window_started_counts_from_zero() -> None:
    assert bucket_quantile({}, {"1.0": 3.0, "+Inf": 4.0}, 0.5) == 1.0


def test_a_write_time_is_the_managers_latest_stamp_in_the_middle_of_its_second() -> None:
    obj = {
        "metadata": {
            "managedFields": [
                {"manager": "modelloop", "time": "2026-12-02T10:00:01Z"},
                {"manager": "kube-controller-manager", "time": "2026-12-02T10:00:09Z"},
                {"manager": "modelloop", "time": "2026-12-02T10:00:05Z"},
            ]
        }
    }
    stamped = datetime(2026, 12, 2, 10, 0, 5, tzinfo=UTC).timestamp()
    assert written_at(obj, "modelloop") == stamped + 0.5
    assert written_at(obj, "someone-else") is None


def ready(name: str, is_ready: bool) -> dict[str, object]:
    condition = {"type": "Ready", "status": str(is_ready)}
    return {"metadata": {"name": name}, "status": {"conditions": [condition]}}


def test_a_models_ready_latency_runs_from_its_own_apply_and_counts_only_models_ready() -> None:
    fleet = Fleet(models=3)
    for name in ("a", "b", "c"):
        fleet.on_applied(name)
    applied = fleet.applied
    fleet.on_model("ADDED", ready("a", True), applied["a"] + 4.0)
    fleet.on_model("ADDED", ready("b", True), applied["b"] + 9.0)
    fleet.on_model("MODIFIED", ready("b", False), applied["b"] + 10.0)  # Ready no longer
    fleet.on_model("ADDED", ready("c", False), time.monotonic())
    assert fleet.ready_latencies() == [pytest.approx(4.0)]


APISERVER = """\
apiserver_request_duration_seconds_sum{component="apiserver",resource="services",verb="APPLY"} 70
apiserver_request_duration_seconds_sum{resource="models",subresource="status",verb="PATCH"} 9
apiserver_request_duration_seconds_sum{resource="models",subresource="",verb="PATCH"} 1
apiserver_request_duration_seconds_sum{resource="models",verb="WATCH"} 5000
apiserver_request_duration_seconds_count{component="apiserver",resource="services",verb="APPLY"} 10
apiserver_request_duration_seconds_count{resource="models",subresource="status",verb="PATCH"} 100
apiserver_request_duration_seconds_count{resource="models",subresource="",verb="PATCH"} 20
apiserver_request_duration_seconds_count{resource="models",verb="WATCH"} 3
"""


def test_the_api_servers_answer_times_by_kind_of_request_leave_watches_out() -> None:
    seconds = by_request(counters(APISERVER, "apiserver_request_duration_seconds_sum"))
    answers = by_request(counters(APISERVER, "apiserver_request_duration_seconds_count"))
    assert answers == {"APPLY services": 10, "PATCH models/status": 100, "PATCH models": 20}
    most_first = dict(sorted(answers.items(), key=lambda kv: -kv[1]))
    assert mean_answer_ms(seconds, most_first) == {
        "PATCH models/status": 90.0,
        "PATCH models": 50.0,
        "APPLY services": 7000.0,
    }
    many = {f"GET kind{i}": float(100 - i) for i in range(APISERVER_KINDS + 3)}
    assert list(mean_answer_ms({}, many)) == list(many)[:APISERVER_KINDS]


def test_stored_bytes_are_the_mean_compact_sizes_of_the_whole_and_its_parts() -> None:
    managed = [{"manager": "modelloop", "fieldsV1": {"f:status": {}}}]
    objects: list[dict[str, Any]] = [
        {"metadata": {"name": "a", "managedFields": managed}, "status": {"phase": "Serving"}},
        {"metadata": {"name": "bb"}},
    ]
    # compact JSON: 123 and 26 bytes whole; managedFields 52 and none ([]: 2); status 19
    # and none ({}: 2)
    assert stored_bytes(objects) == {"object": 74.5, "managedFields": 27.0, "status": 10.5}


def deployment(model: str, available: str | None = None) -> dict[str, Any]:
    conditions = [] if available is None else [{"type": "Available", "status": available}]
    return {
        "metadata": {"name": f"{model}-v1", "labels": {"modelloop.dev/model": model}},
        "status": {"conditions": conditions},
    }


def test_a_models_time_to_ready_splits_into_the_operators_and_the_control_planes() -> None:
    fleet = Fleet(models=2)
    for name in ("a", "b"):
        fleet.on_applied(name)
    at = fleet.applied["a"]
    fleet.on_deployment("ADDED", deployment("a"), at + 1.0)  # the operator wrote it
    fleet.on_deployment("MODIFIED", deployment("a", "False"), at + 3.0)  # its pods start
    fleet.on_deployment("MODIFIED", deployment("a", "True"), at + 7.0)
    fleet.on_deployment("MODIFIED", deployment("a", "True"), at + 8.0)  # no news
    fleet.on_model("MODIFIED", ready("a", True), at + 7.5)
    fleet.on_deployment("ADDED", deployment("b"), at + 2.0)  # b is not Ready: left out
    stages = fleet.apply_stages()
    assert stages == {
        "to_deployment": [pytest.approx(1.0)],
        "to_available": [pytest.approx(6.0)],
        "to_ready": [pytest.approx(0.5)],
    }


def test_a_model_is_inconclusive_until_its_healthy_condition_says_true_or_false() -> None:
    fleet = Fleet(models=4)

    def healthy(name: str, status: str | None) -> dict[str, Any]:
        conditions = [] if status is None else [{"type": "Healthy", "status": status}]
        return {"metadata": {"name": name}, "status": {"conditions": conditions}}

    fleet.on_model("ADDED", healthy("a", "True"), 1.0)
    fleet.on_model("ADDED", healthy("b", "False"), 1.0)  # in breach: evaluated
    fleet.on_model("ADDED", healthy("c", "Unknown"), 1.0)  # MetricsUnavailable, say
    fleet.on_model("ADDED", healthy("d", "True"), 1.0)
    fleet.on_model("MODIFIED", healthy("d", None), 2.0)  # its condition gone
    assert fleet.inconclusive(["a", "b", "c", "d", "e"]) == ["c", "d", "e"]
    fleet.on_model("MODIFIED", healthy("c", "True"), 3.0)
    fleet.on_model("DELETED", healthy("a", "True"), 4.0)
    assert fleet.inconclusive(["a", "b", "c"]) == ["a"]


def test_an_edits_delivery_is_timed_to_the_first_model_event_that_carries_it() -> None:
    fleet = Fleet(models=2)
    fleet.expect_edit("t1")
    plain = {"metadata": {"name": "a"}, "spec": {}}
    fleet.on_model("MODIFIED", plain, 1.0)  # the operator's status write: not the edit
    fleet.on_model("MODIFIED", {**plain, "spec": edit_patch("t1")["spec"]}, 3.0)
    fleet.on_model("MODIFIED", {**plain, "spec": edit_patch("t1")["spec"]}, 4.0)  # again
    fleet.on_model("MODIFIED", {"metadata": {"name": "b"}, "spec": edit_patch("t0")["spec"]}, 2)
    assert fleet.edits_seen() == {"a": 3.0}
    fleet.expect_edit("t2")  # the next burst forgets the last one's
    assert fleet.edits_seen() == {}


def test_a_bursts_latency_tells_the_api_servers_delivery_of_the_edit_apart() -> None:
    edits = {"a": (10.0, 1000.0), "b": (11.0, 1001.0)}
    arrivals = {"a-v1": 14.0, "b-v1": 13.0}
    seen = {"a": 13.5, "b": 11.25}
    window = cast(Window, object())  # carried, not read
    result = burst({"a-v1": "a", "b-v1": "b"}, edits, arrivals, ({}, {}), seen, 1.0, window)
    assert result.to_seen[2] == pytest.approx(3.5)  # a's edit came back after 3.5 s
    assert result.latency_max == pytest.approx(4.0)


def _reading(at: float, cpu: float, requests: dict[str, float], reconciles: float) -> Reading:
    return Reading(
        at=at,
        cpu_seconds=cpu,
        harness_cpu_seconds=at / 10,
        apiserver_cpu_seconds=at / 2,
        control_plane_cpu_seconds=at,
        api_requests=requests,
        watch_events={"models": 2 * reconciles},
        prometheus_requests=reconciles,
        status_patches=reconciles,
        evaluation_seconds=1.0,
        evaluation_cycles=1.0,
        queue_waits={"urgent 1.0": reconciles, "urgent +Inf": reconciles},
        queue_wait_seconds={"urgent": reconciles},
        watch_delays={"models 1.0": reconciles, "models +Inf": reconciles},
        reconciles=reconciles,
        reconcile_seconds=reconciles / 100,
        apiserver_requests={"GET": 10 * at},
        apiserver_seconds={},
        apiserver_answers={},
        load_average=1.0,
    )


def test_a_restarted_operators_window_counts_its_work_from_nothing() -> None:
    """The killed process's counters are gone with it: the new one's window starts from
    zero at the kill, while the machine's (API server, harness) go on."""
    old = _reading(100.0, 50.0, {"list models": 40.0, "patch models": 900.0}, 3000.0)
    new = _reading(130.0, 6.0, {"list models": 4.0, "patch leases": 3.0}, 1000.0)
    win = window(restarted(old, at=100.0), new, models=1000)
    assert win.seconds == 30.0
    assert win.cpu_seconds == 6.0
    assert win.reconciles == 1000.0
    assert win.api_requests == 4.0  # the Lease's are the election's, not the fleet's
    assert win.apiserver_requests_per_second == 10.0  # the machine's counters go on


@pytest.mark.parametrize(
    ("requests", "writes"),
    [
        ({"list models": 5.0, "watch models": 5.0, "get leases": 9.0}, {}),
        (
            {"list models": 5.0, "patch models": 20.0, "apply deployments": 2.0},
            {"patch models": 2.0, "apply deployments": 0.2},
        ),
        ({"patch leases": 4.0, "create jobs": 1.0}, {"create jobs": 0.1}),
    ],
)
def test_a_restarts_writes_are_the_fleets_per_model_and_leave_the_lease_out(
    requests: dict[str, float], writes: dict[str, float]
) -> None:
    win = cast(Window, object())  # carried, not read
    edits = CatchUpEdits(models=1, deployments=1, sent_seconds=20.0, latency=(1.0, 1.0, 1.0))
    figures = restart(100.0, 117.04, 131.96, 0, requests, 10, 201.23, win, edits)
    assert (figures.lead_seconds, figures.caught_up_seconds) == (17.0, 32.0)
    assert figures.writes_per_model == writes
    assert figures.rss_mib == 201.2


def test_a_catch_up_edit_is_timed_to_the_last_of_its_models_deployments() -> None:
    expected = {"a-v1": "a", "a-v2": "a", "b-v1": "b"}
    edits = {"a": (120.0, 0.0), "b": (121.0, 0.0)}
    arrivals = {"a-v1": 121.5, "a-v2": 124.0, "b-v1": 122.0, "c-v1": 200.0}
    figures = catch_up_edits(100.0, expected, edits, arrivals)
    assert (figures.models, figures.deployments) == (2, 3)
    assert figures.sent_seconds == 21.0  # the kill -> the last edit sent
    # a: its last Deployment 4 s after its edit, b: 1 s; c was not edited
    assert figures.latency == spread([4.0, 1.0])
