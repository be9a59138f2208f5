"""PromQL rendering: quoting that cannot be escaped from, placeholders, combined queries."""

import math
from typing import Any, cast

import pytest

from modelloop.api.metrictemplate import MetricTemplateSpec
from modelloop.api.model import LabelMatcher, Slice, TemplateRef
from modelloop.monitoring.promql import (
    MATCH_ALL,
    TAGS,
    MissingVariable,
    Part,
    Sample,
    UnknownPlaceholder,
    UnknownVariable,
    combine,
    expand,
    names_regex,
    quote,
    render_matchers,
    slice_matchers,
    split,
    template_variables,
)


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("eu", '"eu"'),
        ("", '""'),
        ('eu"} or vector(1) or {"x', '"eu\\"} or vector(1) or {\\"x"'),
        ('\\"} or vector(1) #', '"\\\\\\"} or vector(1) #"'),
        ("back\\slash", '"back\\\\slash"'),
        ("trailing\\", '"trailing\\\\"'),
        ("new\nline", '"new\\nline"'),
        ('x"}\n or vector(1)', '"x\\"}\\n or vector(1)"'),
        ("tab\tand\rcr", '"tab\\tand\\rcr"'),
        ("bell\x07nul\x00del\x7f", '"bell\\x07nul\\x00del\\x7f"'),
        ("c1\x85", '"c1\\u0085"'),
        ("line\u2028sep\u202eRTL", '"line\\u2028sep\\u202eRTL"'),
        ("\U000e0001tag", '"\\U000e0001tag"'),
        ("{braces} 'single' `back`", "\"{braces} 'single' `back`\""),
        ("ünïcode 😀 $version", '"ünïcode 😀 $version"'),
    ],
)
def test_quote(value: str, quoted: str) -> None:
    assert quote(value) == quoted


def test_quote_refuses_a_lone_surrogate() -> None:
    with pytest.raises(ValueError, match="surrogate"):
        quote("a\ud800")


@pytest.mark.parametrize(
    ("slice_", "rendered"),
    [
        (Slice(name="all"), ""),
        (Slice(name="s", match_labels={"region": "eu"}), 'region="eu"'),
        (
            Slice(
                name="s",
                match_labels={"region": "eu", "channel": "web"},
                matchers=[LabelMatcher(label="age", op="=~", value="[0-9]")],
            ),
            'channel="web", region="eu", age=~"[0-9]"',
        ),
        (
            Slice(
                name="s",
                matchers=[
                    LabelMatcher(label="a", op="!=", value='x"y'),
                    LabelMatcher(label="_b", op="!~", value="\\d+"),
                ],
            ),
            'a!="x\\"y", _b!~"\\\\d+"',
        ),
    ],
)
def test_slice_matchers_render(slice_: Slice, rendered: str) -> None:
    assert render_matchers(slice_matchers(slice_)) == rendered


@pytest.mark.parametrize(
    ("label", "op", "message"),
    [
        ('x"} or', "=", "not a Prometheus label name"),
        ("9lives", "=", "not a Prometheus label name"),
        ("", "=", "not a Prometheus label name"),
        ("region", "==", "not a PromQL label matcher operator"),
    ],
)
def test_render_refuses_what_the_api_would_have(label: str, op: str, message: str) -> None:
    # model_construct skips validation, as slice_matchers does.
    matcher = LabelMatcher.model_construct(label=label, op=cast(Any, op), value="v")
    with pytest.raises(ValueError, match=message):
        render_matchers([matcher])


def render(query: str, matchers: list[LabelMatcher] | None = None, **variables: str) -> str:
    return expand(
        query,
        version="fd-v2",
        matchers=matchers or [],
        window="5m",
        model="fd",
        namespace="prod",
        variables=variables,
    )


EU = [LabelMatcher(label="region", value='e"u')]


@pytest.mark.parametrize(
    ("query", "matchers", "variables", "expanded"),
    [
        ("$version", [], {}, "fd-v2"),
        ("$model/$namespace", [], {}, "fd/prod"),
        ("x[$window]", [], {}, "x[5m]"),
        ("x{$slice}", EU, {}, 'x{region="e\\"u"}'),
        (
            'sum(rate(x{model="$model", ns="$namespace", version="$version", $slice}[$window]))'
            " * $k",
            EU,
            {"k": "2"},
            'sum(rate(x{model="fd", ns="prod", version="fd-v2", region="e\\"u"}[5m])) * 2',
        ),
        ("histogram_quantile($q, x)", [], {"q": "0.99"}, "histogram_quantile(0.99, x)"),
        ("$version-canary $version.", [], {}, "fd-v2-canary fd-v2."),
        ("$k", [], {"k": 'a{b="c"} or vector(1)'}, 'a{b="c"} or vector(1)'),  # verbatim
        ("$k", [], {"k": "$version"}, "$version"),  # one pass: values are not expanded
        ('label_replace(x, "d", "$1-${g}", "s", "(.*)")', [], {}, None),  # not placeholders
        ('x{path=~"/api/.*$"} $', [], {}, None),
    ],
)
def test_expand(
    query: str, matchers: list[LabelMatcher], variables: dict[str, str], expanded: str | None
) -> None:
    assert render(query, matchers, **variables) == (query if expanded is None else expanded)


@pytest.mark.parametrize(
    ("query", "unknown"),
    [
        ("x[$windows]", "$windows"),
        ("$versionx", "$versionx"),
        ("$version_2", "$version_2"),
        ("x{$region}", "$region"),
        ("$Version", "$Version"),
        ("x * $k", "$k"),  # a variable that was not given
    ],
)
def test_unknown_placeholders_are_errors(query: str, unknown: str) -> None:
    with pytest.raises(UnknownPlaceholder, match=f"\\{unknown} "):
        render(query)


def test_a_variable_may_not_shadow_a_builtin() -> None:
    with pytest.raises(ValueError, match=r"\$window would shadow"):
        render("x[$window]", window="1h")


@pytest.mark.parametrize(
    ("query", "expanded"),
    [
        ('x{version="$version", $slice}', f'x{{version="fd-v2", {MATCH_ALL}}}'),
        ("x{$slice}", f"x{{{MATCH_ALL}}}"),
        ('x{$slice, version="$version"}', f'x{{{MATCH_ALL}, version="fd-v2"}}'),
    ],
)
def test_an_empty_slice_is_a_matcher_every_series_passes(query: str, expanded: str) -> None:
    assert render(query) == expanded


def test_combine_tags_each_part() -> None:
    query = combine([Part(("0",), "a"), Part(("1",), "b or c # note")])
    assert query == (
        'label_replace((a\n), "modelloop_part", "0", "", "")\n'
        ' or label_replace((b or c # note\n), "modelloop_part", "1", "", "")'
    )


def test_combine_nests_one_label_replace_per_tag_and_quotes_values() -> None:
    query = combine([Part(('e"u', "v$1"), "a")], ["slice", "version"])
    assert query == (
        'label_replace(label_replace((a\n), "slice", "e\\"u", "", ""), "version", "v$$1", "", "")'
    )


@pytest.mark.parametrize(
    ("parts", "tags", "message"),
    [
        ([], TAGS, "no parts"),
        ([Part(("0",), "a"), Part(("0",), "b")], TAGS, "share a key"),
        ([Part(("0",), "a")], ["bad-tag"], "not a Prometheus label name"),
        ([Part(("0", "1"), "a")], TAGS, "zip"),
    ],
)
def test_combine_refuses(parts: list[Part], tags: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        combine(parts, tags)


def series(value: str, **labels: str) -> dict[str, Any]:
    return {"metric": labels, "value": [1700000000.123, value]}


TWO_TAGS = ("modelloop_part", "modelloop_slice")


@pytest.mark.parametrize(
    ("result", "tags", "expected"),
    [
        ([], TAGS, {}),
        ([series("0.5", modelloop_part="0")], TAGS, {("0",): [Sample({}, 0.5)]}),
        (
            [
                series("1", modelloop_part="0", __name__="x", job="j"),
                series("2e+03", modelloop_part="1", le="+Inf"),
                series("-3", modelloop_part="1", le="1"),
            ],
            TAGS,
            {
                ("0",): [Sample({"__name__": "x", "job": "j"}, 1.0)],
                ("1",): [Sample({"le": "+Inf"}, 2000.0), Sample({"le": "1"}, -3.0)],
            },
        ),
        (
            [
                series("1", modelloop_part="0", modelloop_slice="eu"),
                series("2", modelloop_part="0", modelloop_slice="us"),
                series("3", modelloop_part="1"),  # an empty tag value is no label
            ],
            TWO_TAGS,
            {
                ("0", "eu"): [Sample({}, 1.0)],
                ("0", "us"): [Sample({}, 2.0)],
                ("1", ""): [Sample({}, 3.0)],
            },
        ),
    ],
)
def test_split(
    result: list[dict[str, Any]],
    tags: tuple[str, ...],
    expected: dict[tuple[str, ...], list[Sample]],
) -> None:
    assert split(result, tags) == expected


@pytest.mark.parametrize(
    ("text", "check"),
    [
        ("NaN", math.isnan),
        ("+Inf", lambda v: v == math.inf),
        ("-Inf", lambda v: v == -math.inf),
        ("1e-09", lambda v: v == 1e-9),
    ],
)
def test_split_reads_prometheus_floats(text: str, check: Any) -> None:
    [sample] = split([series(text, modelloop_part="0")])[("0",)]
    assert check(sample.value)


def test_combine_and_split_round_trip() -> None:
    keys = [("0", "eu"), ("1", 'e"u'), ("2", "")]
    query = combine([Part(k, f"q{i}") for i, k in enumerate(keys)], TWO_TAGS)
    assert query.count("label_replace(") == 2 * len(keys)
    # What Prometheus answers: each part's series carrying its tags (an empty one absent).
    result = [
        series(str(i), job="j", **{t: v for t, v in zip(TWO_TAGS, k, strict=True) if v})
        for i, k in enumerate(keys)
    ]
    assert split(result, TWO_TAGS) == {k: [Sample({"job": "j"}, i)] for i, k in enumerate(keys)}


TEMPLATE = MetricTemplateSpec.model_validate(
    {"query": "x", "variables": [{"name": "quantile", "default": "0.99"}, {"name": "route"}]}
)


@pytest.mark.parametrize(
    ("spec", "given", "expected"),
    [
        (TEMPLATE, {"route": "/score"}, {"quantile": "0.99", "route": "/score"}),
        (TEMPLATE, {"route": "/score", "quantile": "0.5"}, {"quantile": "0.5", "route": "/score"}),
        (TEMPLATE, {"route": ""}, {"quantile": "0.99", "route": ""}),  # empty is a value
        (MetricTemplateSpec(query="x"), None, {}),
    ],
)
def test_template_variables(
    spec: MetricTemplateSpec, given: dict[str, str] | None, expected: dict[str, str]
) -> None:
    assert template_variables(spec, TemplateRef(name="t", vars=given)) == expected


@pytest.mark.parametrize(
    ("given", "error", "message"),
    [
        (None, MissingVariable, "t needs a value for variable route"),
        ({"quantile": "0.5"}, MissingVariable, "needs a value for variable route"),
        ({"route": "/", "typo": "1"}, UnknownVariable, "t declares no variable typo"),
    ],
)
def test_template_variable_errors(
    given: dict[str, str] | None, error: type[ValueError], message: str
) -> None:
    with pytest.raises(error, match=message):
        template_variables(TEMPLATE, TemplateRef(name="t", vars=given))


@pytest.mark.parametrize(
    ("names", "regex"),
    [
        (["b", "a", "b"], "a|b"),
        (["churn-v1.eu"], "churn-v1\\\\.eu"),  # as it goes inside a PromQL string
        ([], ""),
    ],
)
def test_names_regex_matches_exactly_the_names(names: list[str], regex: str) -> None:
    assert names_regex(names) == regex


@pytest.mark.parametrize("name", ["A", "a|b", 'a"', "a\\b", "", "-a"])
def test_names_regex_refuses_what_is_no_kubernetes_name(name: str) -> None:
    with pytest.raises(ValueError, match="not a Kubernetes name"):
        names_regex([name])
