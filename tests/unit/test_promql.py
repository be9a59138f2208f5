"""PromQL rendering: quoting that cannot be escaped from, placeholders, combined queries."""

import math

import pytest

from modelloop.api.metrictemplate import MetricTemplateSpec
from modelloop.api.model import LabelMatcher, Slice, TemplateRef
from modelloop.monitoring.promql import (
    MATCH_ALL,
    MissingVariable,
    Part,
    Sample,
    UnknownPlaceholder,
    combine,
    expand,
    quote,
    render_matchers,
    slice_matchers,
    split,
    template_variables,
)

INJECTIONS = [
    ("eu", '"eu"'),
    ('eu"} or vector(1) or {"x', '"eu\\"} or vector(1) or {\\"x"'),
    ("back\\slash", '"back\\\\slash"'),
    ("new\nline", '"new\\nline"'),
    ("tab\tand\rcr", '"tab\\tand\\rcr"'),
    ("bell\x07", '"bell\\x07"'),
    ("{braces}", '"{braces}"'),
    ("ünïcode", '"ünïcode"'),
]


@pytest.mark.parametrize(("value", "quoted"), INJECTIONS)
def test_quote(value: str, quoted: str) -> None:
    assert quote(value) == quoted


def test_slice_matchers_put_match_labels_first_in_order() -> None:
    s = Slice(
        name="s",
        match_labels={"region": "eu", "channel": "web"},
        matchers=[LabelMatcher(label="age", op="=~", value="[0-9]")],
    )
    assert render_matchers(slice_matchers(s)) == 'channel="web", region="eu", age=~"[0-9]"'


def test_render_refuses_a_label_that_is_not_a_label_name() -> None:
    matcher = LabelMatcher.model_construct(label='x"} or', op="=", value="v")
    with pytest.raises(ValueError, match="not a Prometheus label name"):
        render_matchers([matcher])


def test_expand_every_placeholder() -> None:
    query = (
        'sum(rate(x{model="$model", ns="$namespace", version="$version", $slice}[$window])) * $k'
    )
    assert expand(
        query,
        version="fd-v2",
        matchers=[LabelMatcher(label="region", value='e"u')],
        window="5m",
        model="fd",
        namespace="prod",
        variables={"k": "2"},
    ) == ('sum(rate(x{model="fd", ns="prod", version="fd-v2", region="e\\"u"}[5m])) * 2')


def test_an_empty_slice_selects_everything() -> None:
    text = expand(
        'x{version="$version", $slice}',
        version="v",
        matchers=[],
        window="1m",
        model="m",
        namespace="n",
    )
    assert text == f'x{{version="v", {MATCH_ALL}}}'


@pytest.mark.parametrize("query", ["x[$windows]", "$versionx", "x{$region}"])
def test_unknown_placeholders_are_errors(query: str) -> None:
    with pytest.raises(UnknownPlaceholder):
        expand(query, version="v", matchers=[], window="1m", model="m", namespace="n")


def test_combine_tags_each_part_and_split_finds_them_again() -> None:
    query = combine([Part(("0",), "a"), Part(("1",), "b or c")], ["modelloop_part"])
    assert query == (
        'label_replace((a), "modelloop_part", "0", "", "")\n'
        ' or label_replace((b or c), "modelloop_part", "1", "", "")'
    )
    result = [
        {"metric": {"modelloop_part": "0"}, "value": [1.0, "0.5"]},
        {"metric": {"modelloop_part": "1", "le": "+Inf"}, "value": [1.0, "NaN"]},
        {"metric": {"modelloop_part": "1", "le": "1"}, "value": [1.0, "+Inf"]},
    ]
    parts = split(result, ["modelloop_part"])
    assert parts[("0",)] == [Sample({}, 0.5)]
    [nan, inf] = parts[("1",)]
    assert nan.labels == {"le": "+Inf"}
    assert math.isnan(nan.value)
    assert inf.value == math.inf


TEMPLATE = MetricTemplateSpec.model_validate(
    {"query": "x", "variables": [{"name": "quantile", "default": "0.99"}, {"name": "route"}]}
)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"route": "/score"}, {"quantile": "0.99", "route": "/score"}),
        ({"route": "/score", "quantile": "0.5"}, {"quantile": "0.5", "route": "/score"}),
    ],
)
def test_template_variables(given: dict[str, str], expected: dict[str, str]) -> None:
    assert template_variables(TEMPLATE, TemplateRef(name="t", vars=given)) == expected


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({}, "needs a value for variable route"),
        ({"route": "/", "typo": "1"}, "declares no variable typo"),
    ],
)
def test_template_variable_errors(given: dict[str, str], message: str) -> None:
    with pytest.raises(MissingVariable, match=message):
        template_variables(TEMPLATE, TemplateRef(name="t", vars=given))
