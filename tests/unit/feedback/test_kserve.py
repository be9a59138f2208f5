"""KServe's logger events into predictions: shaped as kserve/kserve's pkg/logger sends them
(binary-mode CloudEvents; the sample of docs/samples/logger/basic), v1 and v2 bodies."""

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from modelloop.feedback.kserve import (
    REQUEST,
    RESPONSE,
    Drop,
    KServeConfig,
    KServePairer,
    Reject,
    Rejection,
    VersionFrom,
)
from modelloop.feedback.records import Prediction

ID = "0009174a-24a8-4603-b098-09c8799950e9"
TIME = "2021-04-10T00:23:26.0789529Z"
AT = datetime(2021, 4, 10, 0, 23, 26, 78952, tzinfo=UTC).timestamp()  # TIME, to the µs


def headers(kind: str, event_id: str = ID, **extra: str) -> dict[str, str]:
    """As the cloudevents Go SDK writes them (canonical header case)."""
    return {
        "Ce-Specversion": "1.0",
        "Ce-Type": kind,
        "Ce-Source": "http://localhost:9081/",
        "Ce-Id": event_id,
        "Ce-Time": TIME if kind == REQUEST else "2021-04-10T00:23:26.080736102Z",
        "Ce-Recordedtime": "2021-04-10T00:23:26.081Z",
        "Ce-Inferenceservicename": "sklearn-iris",
        "Ce-Namespace": "default",
        "Ce-Component": "predictor",
        "Ce-Endpoint": "",
        "Ce-Metadata": "{}",
        "Ce-Annotations": json.dumps({"modelloop.dev/version": "sklearn-iris-v2"}),
        "Content-Type": "application/json",
        "Traceparent": "00-90bdf848647d50283394155d2df58f19-84dacdfdf07cadfc-00",
        **extra,
    }


def body(payload: Any) -> bytes:
    return json.dumps(payload).encode()


IRIS_REQUEST = {"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}
IRIS_RESPONSE = {"predictions": [1, 1]}


def pair(
    config: KServeConfig,
    request: Any,
    response: Any,
    request_headers: dict[str, str] | None = None,
    response_headers: dict[str, str] | None = None,
) -> list[Prediction] | Rejection:
    pairer = KServePairer(config)
    first = pairer.add(request_headers or headers(REQUEST), body(request), now=1.0)
    assert first == []
    return pairer.add(response_headers or headers(RESPONSE), body(response), now=1.1)


def test_the_sample_batch_of_two_is_two_predictions() -> None:
    config = KServeConfig(attributes={"petal_length": "[2]"})
    predictions = pair(config, IRIS_REQUEST, IRIS_RESPONSE)
    assert predictions == [
        Prediction(
            id=f"{ID}/{i}",
            model="sklearn-iris",
            version="sklearn-iris-v2",
            time=AT,
            attributes={"petal_length": length},
            predicted=1.0,
        )
        for i, length in enumerate(["4.8", "4.5"])
    ]


@pytest.mark.parametrize(
    ("config", "request_", "response", "expected"),
    [
        (  # one instance: the id is the event's
            KServeConfig(attributes={"region": "region"}),
            {"instances": [{"region": "eu", "amount": 12.5}]},
            {"predictions": [[0.2, 0.8]]},
            [(ID, {"region": "eu"}, 1.0, 0.8)],
        ),
        (  # probabilities of three classes: the argmax, no binary score
            KServeConfig(),
            {"instances": [[1], [2]]},
            {"predictions": [[0.2, 0.5, 0.3], [0.6, 0.3, 0.1]]},
            [(f"{ID}/0", {}, 1.0, None), (f"{ID}/1", {}, 0.0, None)],
        ),
        (  # object rows, the keys configured; a missing attribute is left out
            KServeConfig(
                attributes={"region": "region", "age": "age"},
                prediction_key="label",
                score_key="p",
            ),
            {"instances": [{"region": "us", "age": 31}, {"region": "eu"}]},
            {"predictions": [{"label": "fraud", "p": 0.9}, {"label": "ok"}]},
            [
                (f"{ID}/0", {"region": "us", "age": "31"}, "fraud", 0.9),
                (f"{ID}/1", {"region": "eu"}, "ok", None),
            ],
        ),
        (  # a column of a list-valued field; a regression value
            KServeConfig(attributes={"hour": "features[0]", "vip": "vip"}),
            {"instances": [{"features": [23, 4.5], "vip": True}]},
            {"predictions": [17.25]},
            [(ID, {"hour": "23", "vip": "true"}, 17.25, None)],
        ),
        (  # v2: attributes from a named input and a column; classes and scores separate
            KServeConfig(
                attributes={"region": "region", "amount": "input-0[1]"},
                version=VersionFrom("response"),
                score_output="probabilities",
            ),
            {
                "id": "r1",
                "inputs": [
                    {"name": "region", "shape": [2], "datatype": "BYTES", "data": ["eu", "us"]},
                    {
                        "name": "input-0",
                        "shape": [2, 3],
                        "datatype": "FP32",
                        "data": [1.0, 20.0, 3.0, 4.0, 50.0, 6.0],
                    },
                ],
            },
            {
                "model_name": "sklearn-iris",
                "model_version": "v3",
                "id": "r1",
                "outputs": [
                    {"name": "output-0", "shape": [2], "datatype": "INT64", "data": [1, 0]},
                    {
                        "name": "probabilities",
                        "shape": [2, 2],
                        "datatype": "FP64",
                        "data": [[0.1, 0.9], [0.7, 0.3]],
                    },
                ],
            },
            [
                (f"{ID}/0", {"region": "eu", "amount": "20.0"}, 1.0, 0.9),
                (f"{ID}/1", {"region": "us", "amount": "50.0"}, 0.0, 0.3),
            ],
        ),
        (  # v2: probabilities in the prediction output itself, flat, shape [n, 2]
            KServeConfig(prediction_output="proba"),
            {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}]},
            {
                "outputs": [
                    {"name": "label", "shape": [1], "datatype": "BYTES", "data": ["a"]},
                    {"name": "proba", "shape": [1, 2], "datatype": "FP32", "data": [0.6, 0.4]},
                ]
            },
            [(ID, {}, 0.0, 0.4)],
        ),
    ],
)
def test_instances_and_rows_become_predictions(
    config: KServeConfig,
    request_: Any,
    response: Any,
    expected: list[tuple[str, dict[str, str], float | str, float | None]],
) -> None:
    predictions = pair(config, request_, response)
    assert isinstance(predictions, list)
    found = [(p.id, p.attributes, p.predicted, p.score) for p in predictions]
    assert found == expected
    version = "v3" if config.version.source == "response" else "sklearn-iris-v2"
    assert {(p.model, p.version) for p in predictions} == {("sklearn-iris", version)}


def test_the_response_may_come_first() -> None:
    pairer = KServePairer(KServeConfig())
    assert pairer.add(headers(RESPONSE), body(IRIS_RESPONSE), now=1.0) == []
    assert pairer.pending == 1
    predictions = pairer.add(headers(REQUEST), body(IRIS_REQUEST), now=1.2)
    assert isinstance(predictions, list)
    assert [(p.id, p.time) for p in predictions] == [
        (f"{ID}/0", AT),
        (f"{ID}/1", AT),
    ]
    assert pairer.pending == 0


@pytest.mark.parametrize(
    ("source", "request_headers", "version"),
    [
        ("header:x-model-version", {"Ce-Metadata": '{"X-Model-Version": ["v7"]}'}, "v7"),
        ("endpoint", {"Ce-Endpoint": "canary"}, "canary"),
        ("annotation:team/version", {"Ce-Annotations": '{"team/version": "v9"}'}, "v9"),
    ],
)
def test_the_version_comes_from_the_configured_source(
    source: str, request_headers: dict[str, str], version: str
) -> None:
    config = KServeConfig(version=VersionFrom.parse(source))
    predictions = pair(config, IRIS_REQUEST, IRIS_RESPONSE, headers(REQUEST, **request_headers))
    assert isinstance(predictions, list)
    assert {p.version for p in predictions} == {version}


def without(kind: str, name: str) -> dict[str, str]:
    found = headers(kind)
    del found[name]
    return found


@pytest.mark.parametrize(
    ("event_headers", "payload", "rejection"),
    [
        (without(REQUEST, "Ce-Id"), IRIS_REQUEST, Rejection(Reject.MISSING_HEADER, "ce-id")),
        (without(REQUEST, "Ce-Type"), IRIS_REQUEST, Rejection(Reject.MISSING_HEADER, "ce-type")),
        (
            without(REQUEST, "Ce-Specversion"),
            IRIS_REQUEST,
            Rejection(Reject.MISSING_HEADER, "ce-specversion"),
        ),
        (
            without(REQUEST, "Ce-Inferenceservicename"),
            IRIS_REQUEST,
            Rejection(Reject.MISSING_HEADER, "ce-inferenceservicename"),
        ),
        (
            headers(REQUEST, **{"Ce-Specversion": "0.3"}),
            IRIS_REQUEST,
            Rejection(Reject.UNSUPPORTED, "ce-specversion"),
        ),
        (
            headers("dev.knative.sources.ping"),
            IRIS_REQUEST,
            Rejection(Reject.UNSUPPORTED, "ce-type"),
        ),
        (
            headers(REQUEST, **{"Ce-Time": "yesterday"}),
            IRIS_REQUEST,
            Rejection(Reject.UNSUPPORTED, "ce-time"),
        ),
        (headers(REQUEST), b"\xff{", Rejection(Reject.NOT_JSON, "body")),
        (headers(REQUEST), [1, 2], Rejection(Reject.UNKNOWN_BODY, "body")),
        (headers(REQUEST), {"rows": []}, Rejection(Reject.UNKNOWN_BODY, "body.instances")),
        (
            headers(RESPONSE),
            {"result": [1]},
            Rejection(Reject.UNKNOWN_BODY, "body.predictions"),
        ),
        (
            headers(REQUEST, **{"Ce-Annotations": "{not json"}),
            IRIS_REQUEST,
            Rejection(Reject.NOT_JSON, "ce-annotations"),
        ),
        (
            headers(REQUEST),
            {"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3]}]},
            Rejection(Reject.BAD_TENSOR, "inputs[0].data", expected=4, got=3),
        ),
        (
            headers(REQUEST),
            {"inputs": [{"name": "x", "shape": [1, 2, 2], "datatype": "FP32", "data": [1] * 4}]},
            Rejection(Reject.BAD_TENSOR, "inputs[0].shape"),
        ),
        (
            headers(RESPONSE),
            {"predictions": [1, {"class": 2}]},
            Rejection(Reject.BAD_ROW, "predictions[1]"),
        ),
        (
            headers(RESPONSE),
            {"predictions": [{"predicted": [1, 2]}]},
            Rejection(Reject.BAD_ROW, "predictions[0].predicted"),
        ),
        (
            headers(RESPONSE),
            {"outputs": [{"name": "y", "shape": [1], "datatype": "FP32", "data": [None]}]},
            Rejection(Reject.BAD_ROW, "outputs[0].data[0]"),
        ),
    ],
)
def test_an_event_refused_names_the_field(
    event_headers: dict[str, str], payload: Any, rejection: Rejection
) -> None:
    pairer = KServePairer(KServeConfig())
    data = payload if isinstance(payload, bytes) else body(payload)
    assert pairer.add(event_headers, data, now=1.0) == rejection
    assert pairer.pending == 0


@pytest.mark.parametrize(
    ("config", "request_", "response", "rejection"),
    [
        (
            KServeConfig(),
            IRIS_REQUEST,
            {"predictions": [1]},
            Rejection(Reject.BATCH_MISMATCH, "predictions", expected=2, got=1),
        ),
        (
            KServeConfig(version=VersionFrom("annotation", "other/version")),
            IRIS_REQUEST,
            IRIS_RESPONSE,
            Rejection(Reject.MISSING_VERSION, "ce-annotations.other/version"),
        ),
        (
            KServeConfig(version=VersionFrom("response")),
            IRIS_REQUEST,
            IRIS_RESPONSE,  # v1 answers carry no model_version
            Rejection(Reject.MISSING_VERSION, "model_version"),
        ),
        (
            KServeConfig(),
            IRIS_REQUEST,
            {"predictions": [{"predicted": 1, "score": 1.5}, {"predicted": 0}]},
            Rejection(Reject.INVALID, "score"),
        ),
        (
            KServeConfig(attributes={"note": "note"}),
            {"instances": [{"note": "x" * 300}]},
            {"predictions": [1]},
            Rejection(Reject.INVALID, "attributes.note"),
        ),
        (
            KServeConfig(score_output="p"),
            {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}]},
            {"outputs": [{"name": "y", "shape": [1], "datatype": "FP32", "data": [1]}]},
            Rejection(Reject.BAD_TENSOR, "outputs.p"),
        ),
    ],
)
def test_a_pair_refused_names_the_field(
    config: KServeConfig, request_: Any, response: Any, rejection: Rejection
) -> None:
    assert pair(config, request_, response) == rejection


def test_a_half_sent_twice_is_a_duplicate() -> None:
    pairer = KServePairer(KServeConfig())
    assert pairer.add(headers(REQUEST), body(IRIS_REQUEST), now=1.0) == []
    assert pairer.add(headers(REQUEST), body(IRIS_REQUEST), now=1.1) == Rejection(
        Reject.DUPLICATE, "ce-id"
    )
    predictions = pairer.add(headers(RESPONSE), body(IRIS_RESPONSE), now=1.2)
    assert isinstance(predictions, list)
    assert len(predictions) == 2


def test_the_buffer_is_bounded_in_count_and_age() -> None:
    pairer = KServePairer(KServeConfig(max_pending=2, max_age=60.0))
    for i, now in enumerate([0.0, 10.0, 20.0]):
        assert pairer.add(headers(REQUEST, f"r{i}"), body(IRIS_REQUEST), now=now) == []
    assert (pairer.pending, pairer.dropped) == (2, {Drop.EVICTED: 1})
    # r0 was evicted: its response waits in turn; r1's pairs.
    assert pairer.add(headers(RESPONSE, "r0"), body(IRIS_RESPONSE), now=21.0) == []
    assert pairer.dropped[Drop.EVICTED] == 2  # r1, the oldest, made room for it
    # At 81 s, r2 (20 s) has waited 61 s: expired; r0's response (21 s) not yet.
    assert pairer.add(headers(RESPONSE, "r2"), body(IRIS_RESPONSE), now=81.0) == []
    assert pairer.dropped[Drop.EXPIRED] == 1
    assert pairer.pending == 2
    pairer.expire(now=200.0)
    assert (pairer.pending, pairer.dropped[Drop.EXPIRED]) == (0, 3)


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("annotation:modelloop.dev/version", VersionFrom("annotation", "modelloop.dev/version")),
        ("header:X-Version", VersionFrom("header", "X-Version")),
        ("response", VersionFrom("response")),
        ("endpoint", VersionFrom("endpoint")),
        ("annotation:", None),
        ("response:x", None),
        ("label:v", None),
    ],
)
def test_version_sources_parse(text: str, parsed: VersionFrom | None) -> None:
    if parsed is None:
        with pytest.raises(ValueError, match="version source"):
            VersionFrom.parse(text)
    else:
        assert VersionFrom.parse(text) == parsed


@pytest.mark.parametrize("path", ["", "a[", "[x]", "a]b"])
def test_an_attribute_field_must_be_a_key_or_a_column(path: str) -> None:
    with pytest.raises(ValueError, match="field"):
        KServeConfig(attributes={"a": path})


def test_the_buffer_is_bounded_in_rows() -> None:
    """Halves of large batches evict the oldest by the instances they hold; a single
    batch beyond the bound is refused whole."""
    pairer = KServePairer(KServeConfig(max_rows=5))
    three = body({"instances": [[1], [2], [3]]})
    assert pairer.add(headers(REQUEST, "a"), three, now=0.0) == []
    assert pairer.add(headers(REQUEST, "b"), body(IRIS_REQUEST), now=1.0) == []
    assert (pairer.pending, pairer.dropped[Drop.EVICTED]) == (2, 0)  # 3 + 2 rows
    assert pairer.add(headers(REQUEST, "c"), body(IRIS_REQUEST), now=2.0) == []
    assert (pairer.pending, pairer.dropped[Drop.EVICTED]) == (2, 1)  # a made room
    # Pairing needs no room: b's response completes it.
    predictions = pairer.add(headers(RESPONSE, "b"), body(IRIS_RESPONSE), now=3.0)
    assert isinstance(predictions, list)
    assert len(predictions) == 2
    six = body({"instances": [[i] for i in range(6)]})
    assert pairer.add(headers(REQUEST, "d"), six, now=4.0) == Rejection(
        Reject.TOO_LARGE, "body", expected=5, got=6
    )
    assert (pairer.pending, pairer.dropped[Drop.EVICTED]) == (1, 1)
