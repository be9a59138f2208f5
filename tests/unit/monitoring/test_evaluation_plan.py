"""Planning a cycle's requests and reading the answers back, without a Prometheus."""

from datetime import UTC, datetime
from typing import Any

import pytest

from modelloop.api.metrictemplate import MetricTemplateSpec
from modelloop.api.model import ModelSpec
from modelloop.api.modelversion import DataWindow
from modelloop.monitoring.plan import PlanMemo, Selection, SeriesKey, Slot, Target, plan_cycle
from modelloop.monitoring.readings import Answer, read
from modelloop.monitoring.verdicts import Observation

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SERVING = {"template": {"spec": {"containers": [{"name": "s", "image": "x"}]}}}


def spec(**fields: Any) -> ModelSpec:
    return ModelSpec.model_validate({"serving": SERVING, **fields})


def slices(n: int) -> list[dict[str, Any]]:
    return [{"name": f"s{i}", "matchLabels": {"region": f"r{i}"}} for i in range(n)]


INLINE = {
    "name": "precision",
    "query": 'sum(tp{version="$version", $slice}) / sum(all{version="$version", $slice})',
    "sampleQuery": 'sum(all{version="$version", $slice})',
    "minSamples": 10,
}
GROUPED = MetricTemplateSpec.model_validate(
    {
        "query": "sum by (model, version, region) (rate(ok[$window]))",
        "sampleQuery": "sum by (model, version, region) (rate(all[$window]))",
        "groupBy": ["model", "version", "region"],
    }
)


@pytest.mark.parametrize("count", [1, 10, 60])
def test_an_inline_metric_is_one_request_whatever_the_slices_and_versions(count: int) -> None:
    target = Target("ns", "fd", spec(slices=slices(count), metrics=[INLINE]), ("fd-v1", "fd-v2"))
    plan = plan_cycle([target], {}, NOW)
    [request] = plan.requests
    assert len(request.slots) == count * 2  # slices x versions
    assert {roles(slot) for slot in request.slots} == {("value", "samples")}
    assert request.query.count(" or ") == count * 2 * 2 - 1
    assert 'version="fd-v2", region="r0"' in request.query


def test_models_sharing_a_grouped_template_share_one_request() -> None:
    metric = {"name": "ok", "templateRef": {"name": "ok-rate"}}
    targets = [
        Target("ns", f"m{i}", spec(slices=slices(3), metrics=[metric]), (f"m{i}-v1",))
        for i in range(50)
    ]
    plan = plan_cycle(targets, {("ns", "ok-rate"): GROUPED}, NOW)
    [request] = plan.requests
    assert len(request.slots) == 50 * 3
    assert {roles(slot) for slot in request.slots} == {("value", "samples")}
    assert request.slots[0].select == Selection(
        ("model", "region", "version"), ("m0", "r0", "m0-v1")
    )


SERVED_ONLY = MetricTemplateSpec.model_validate(
    {
        "query": 'sum by (namespace, model, version, region) (rate(ok{model=~"$models", '
        'namespace=~"$namespaces"}[$window]))',
        "sampleQuery": 'sum by (namespace, model, version, region) (rate(all{model=~"$models"}'
        "[$window]))",
        "groupBy": ["namespace", "model", "version", "region"],
    }
)


def test_a_grouped_query_asks_only_for_the_models_it_serves() -> None:
    """$models and $namespaces: regexes of the names of the Models sharing the query (a
    shard's, not the fleet's), each once, a dot escaped for the regex and the string."""
    metric = {"name": "ok", "templateRef": {"name": "ok-rate"}}
    targets = [
        Target(namespace, name, spec(slices=slices(2), metrics=[metric]), (f"{name}-v1",))
        for namespace, name in [("b", "m1"), ("a", "m.2"), ("b", "m0"), ("a", "m1")]
    ]
    templates = {(t.namespace, "ok-rate"): SERVED_ONLY for t in targets}
    [request] = plan_cycle(targets, templates, NOW).requests
    assert 'ok{model=~"m\\\\.2|m0|m1", namespace=~"a|b"}[5m]' in request.query
    assert 'all{model=~"m\\\\.2|m0|m1"}[5m]' in request.query
    assert {slot.model for slot in request.slots} == {(t.namespace, t.name) for t in targets}


@pytest.mark.parametrize(
    ("templates", "metric", "reason"),
    [
        ({}, {"templateRef": {"name": "ok-rate"}}, "MetricTemplate ok-rate not found"),
        (
            {
                ("ns", "ok-rate"): MetricTemplateSpec.model_validate(
                    {"query": 'x{version="$version"}', "groupBy": ["model", "version"]}
                )
            },
            {"templateRef": {"name": "ok-rate"}},
            "may not use $version",
        ),
        (
            {
                ("ns", "ok-rate"): MetricTemplateSpec.model_validate(
                    {"query": "x", "variables": [{"name": "q"}]}
                )
            },
            {"templateRef": {"name": "ok-rate"}},
            "needs a value for variable q",
        ),
        ({}, {"query": "x{$nope}"}, "unknown placeholder $nope"),
        (
            {},
            {"query": 'x{model=~"$models"}'},
            "$models is for MetricTemplates with groupBy (the Models one query serves)",
        ),
    ],
)
def test_a_metric_that_cannot_be_asked_for_is_a_problem_not_a_request(
    templates: dict[tuple[str, str], MetricTemplateSpec], metric: dict[str, Any], reason: str
) -> None:
    target = Target("ns", "fd", spec(metrics=[{"name": "m", **metric}]), ("fd-v1",))
    plan = plan_cycle([target], templates, NOW)
    assert plan.requests == []
    [problem] = plan.problems
    assert reason in problem.reason
    readings = read(plan, [])[("ns", "fd")]
    observation = readings.metrics[SeriesKey("metric", "m", "all", "fd-v1")]
    assert observation.error is not None
    assert reason in observation.error


def test_a_memo_gives_the_plan_it_would_work_out_and_follows_spec_versions_and_template() -> None:
    metric = {"name": "ok", "templateRef": {"name": "ok-rate"}}
    first = Target("ns", "m0", spec(slices=slices(3), metrics=[metric]), ("m0-v1",))
    canary = Target("ns", "m0", first.spec, ("m0-v1", "m0-v2"))
    edited = Target("ns", "m0", spec(slices=slices(2), metrics=[metric]), ("m0-v1",))
    other_template = MetricTemplateSpec.model_validate(
        {**GROUPED.model_dump(by_alias=True), "groupBy": ["model", "version"]}
    )
    memo = PlanMemo()
    for target, template in [
        (first, GROUPED),
        (first, GROUPED),  # from the memo
        (canary, GROUPED),  # a new live version
        (edited, GROUPED),  # a new generation: a new spec object
        (edited, other_template),  # slices no longer readable: problems
        (edited, other_template),  # the problems from the memo
    ]:
        templates = {("ns", "ok-rate"): template}
        assert plan_cycle([target], templates, NOW, memo) == plan_cycle([target], templates, NOW)
    memo.forget(("ns", "m0"))
    assert memo.recall(edited, ()) is None


PER_MODEL = MetricTemplateSpec.model_validate(
    {
        "query": 'sum(rate(ok{version="$version", $slice, code="$code"}[$window]))',
        "variables": [{"name": "code", "default": "200"}],
    }
)


def test_a_models_own_requests_are_rendered_once_per_spec_versions_and_template() -> None:
    templated = {"name": "ok", "templateRef": {"name": "ok-rate"}}
    first = Target("ns", "m0", spec(slices=slices(3), metrics=[INLINE, templated]), ("m0-v1",))
    canary = Target("ns", "m0", first.spec, ("m0-v1", "m0-v2"))
    varied = {**templated, "templateRef": {"name": "ok-rate", "vars": {"code": "500"}}}
    edited = Target("ns", "m0", spec(slices=slices(2), metrics=[INLINE, varied]), ("m0-v1",))
    other_query = MetricTemplateSpec.model_validate(
        {**PER_MODEL.model_dump(by_alias=True), "query": 'sum(ok{version="$version", $slice})'}
    )
    undeclared = {**templated, "templateRef": {"name": "ok-rate", "vars": {"nope": "1"}}}
    broken = Target("ns", "m0", spec(slices=slices(2), metrics=[undeclared]), ("m0-v1",))
    memo = PlanMemo()
    planned = []
    for target, template in [
        (first, PER_MODEL),
        (first, PER_MODEL),  # from the memo
        (canary, PER_MODEL),  # a new live version
        (edited, PER_MODEL),  # a new generation, another variable value
        (edited, other_query),  # the template edited
        (broken, other_query),  # a problem
        (broken, other_query),  # the problem from the memo
    ]:
        templates = {("ns", "ok-rate"): template}
        plan = plan_cycle([target], templates, NOW, memo)
        assert plan == plan_cycle([target], templates, NOW)
        planned.append(plan)
    assert all(a is b for a, b in zip(planned[0].requests, planned[1].requests, strict=True))
    queries = [{r.query for r in plan.requests} for plan in planned]
    assert len({frozenset(q) for q in queries[1:5]}) == 4, "each change renders anew"
    assert 'code="500"' in planned[3].requests[1].query
    assert planned[6].problems == planned[5].problems != []


def test_grouped_templates_need_equality_slices_on_grouped_labels() -> None:
    metric = {"name": "ok", "templateRef": {"name": "ok-rate"}}
    regex = [{"name": "new", "matchers": [{"label": "age", "op": "=~", "value": "[0-9]"}]}]
    target = Target("ns", "fd", spec(slices=regex, metrics=[metric]), ("fd-v1",))
    plan = plan_cycle([target], {("ns", "ok-rate"): GROUPED}, NOW)
    [problem] = plan.problems
    assert "(age) in groupBy, compared with '='" in problem.reason


def test_drift_references_an_offset_or_the_training_window() -> None:
    drift = {"name": "amount", "histogram": "amount", "threshold": 0.2, "window": "1h"}
    offset = Target("ns", "fd", spec(drift=[drift]), ("fd-v1",))
    trained = Target(
        "ns",
        "fd",
        spec(drift=[drift | {"reference": {"trainingWindow": True}}]),
        ("fd-v1",),
        DataWindow(start=datetime(2026, 11, 1, tzinfo=UTC), end=datetime(2026, 11, 8, tzinfo=UTC)),
    )
    [by_offset] = plan_cycle([offset], {}, NOW).requests
    assert "increase(amount_bucket[1h] offset 7d)" in by_offset.query
    [by_training] = plan_cycle([trained], {}, NOW).requests
    end = datetime(2026, 11, 8, tzinfo=UTC).timestamp()
    assert f"increase(amount_bucket[604800s] @ {end:.3f})" in by_training.query
    untrained = Target("ns", "fd", trained.spec, ("fd-v1",))
    [problem] = plan_cycle([untrained], {}, NOW).problems
    assert problem.reason == "the stable version fd-v1 has no training window"


def roles(slot: Slot) -> tuple[str, ...]:
    return tuple(role for role, _ in slot.parts)


def vector(part: int, value: str, **labels: str) -> dict[str, Any]:
    return {"metric": {"modelloop_part": str(part), **labels}, "value": [0, value]}


@pytest.mark.parametrize(
    ("result", "observation"),
    [
        ([vector(0, "0.9"), vector(1, "120")], Observation(0.9, 120.0)),
        ([vector(1, "120")], Observation(None, None, "the value query returned no series")),
        (
            [vector(0, "0.9", pod="a"), vector(0, "0.8", pod="b"), vector(1, "5")],
            Observation(None, None, "the value query returned 2 series, expected one"),
        ),
        (
            [vector(0, "0.9")],
            Observation(0.9, None, "the sample-count query returned no series"),
        ),
    ],
)
def test_answers_fan_out_to_observations(
    result: list[dict[str, Any]], observation: Observation
) -> None:
    target = Target("ns", "fd", spec(metrics=[INLINE]), ("fd-v1",))
    plan = plan_cycle([target], {}, NOW)
    readings = read(plan, [Answer(result=result)])[("ns", "fd")]
    assert readings.metrics[SeriesKey("metric", "precision", "all", "fd-v1")] == observation


def test_a_failed_request_makes_each_of_its_series_unreadable() -> None:
    target = Target("ns", "fd", spec(slices=slices(3), metrics=[INLINE]), ("fd-v1",))
    plan = plan_cycle([target], {}, NOW)
    readings = read(plan, [Answer(error="Prometheus test timed out after 2s")])[("ns", "fd")]
    assert len(readings.metrics) == 3
    assert {o.error for o in readings.metrics.values()} == {"Prometheus test timed out after 2s"}


# --------------------------------------------------------------------------- label coverage

COVERAGE = "sum(labels{$slice}[$window]) / sum(predictions{$slice}[$window] offset $labelDelay)"


def test_an_inline_metric_asks_for_its_label_coverage_with_the_delay() -> None:
    metric = INLINE | {"labels": {"delay": "2h", "minCoverage": 0.8, "coverageQuery": COVERAGE}}
    target = Target("ns", "fd", spec(metrics=[metric]), ("fd-v1",))
    [request] = plan_cycle([target], {}, NOW).requests
    assert [roles(slot) for slot in request.slots] == [("value", "samples", "coverage")]
    assert "[5m] offset 2h" in request.query
    answer = [vector(0, "0.9"), vector(1, "120"), vector(2, "0.42")]
    readings = read(plan_cycle([target], {}, NOW), [Answer(result=answer)])[("ns", "fd")]
    observed = readings.metrics[SeriesKey("metric", "precision", "all", "fd-v1")]
    assert observed == Observation(0.9, 120.0, coverage=0.42)


def test_a_grouped_template_shares_its_coverage_query_and_a_missing_one_is_a_problem() -> None:
    covered = GROUPED.model_copy(
        update={"coverage_query": "sum by (model, version, region) (c[$window] offset $labelDelay)"}
    )
    metric = {
        "name": "ok",
        "templateRef": {"name": "ok-rate"},
        "labels": {"delay": "20s", "minCoverage": 0.5},
    }
    target = Target("ns", "m", spec(slices=slices(2), metrics=[metric]), ("m-v1",))
    [request] = plan_cycle([target], {("ns", "ok-rate"): covered}, NOW).requests
    assert [dict(s.parts)["coverage"] for s in request.slots] == ["2", "2"]
    assert "offset 20s" in request.query
    plan = plan_cycle([target], {("ns", "ok-rate"): GROUPED}, NOW)
    assert plan.requests == []
    assert {p.reason for p in plan.problems} == {
        "labels.minCoverage is 0.5 but MetricTemplate ok-rate has no coverageQuery and "
        "labels.coverageQuery is not set"
    }


def test_a_delay_alone_asks_for_no_coverage() -> None:
    metric = INLINE | {"labels": {"delay": "1h"}}
    target = Target("ns", "fd", spec(metrics=[metric]), ("fd-v1",))
    [request] = plan_cycle([target], {}, NOW).requests
    assert [roles(slot) for slot in request.slots] == [("value", "samples")]


def test_a_drift_check_with_canary_compares_the_canary_with_stable_during_a_rollout() -> None:
    drift = {
        "name": "scores",
        "histogram": "prediction_score",
        "test": "js",
        "threshold": 0.1,
        "canary": {},
    }
    rolling = Target("ns", "fd", spec(slices=slices(1), drift=[drift]), ("fd-v1", "fd-v2"))
    [request] = plan_cycle([rolling], {}, NOW).requests
    shifts = [s for s in request.slots if s.series.kind == "shift"]
    assert [(s.series.version, roles(s)) for s in shifts] == [("fd-v2", ("current", "reference"))]
    assert 'prediction_score_bucket{region="r0", version="fd-v2"}[1h]' in request.query
    assert 'prediction_score_bucket{region="r0", version="fd-v1"}[1h]' in request.query
    alone = Target("ns", "fd", rolling.spec, ("fd-v1",))
    [request] = plan_cycle([alone], {}, NOW).requests
    assert all(s.series.kind == "drift" for s in request.slots)  # no canary, no comparison
