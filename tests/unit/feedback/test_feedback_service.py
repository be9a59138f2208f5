"""The feedback service without HTTP: bad input refused whole with the fields named and
a counter by reason; records counted once whatever is sent again; the store's
capacity, the series limit and expiry counted; /metrics as Prometheus reads it."""

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from modelloop.feedback.config import Settings
from modelloop.feedback.service import MAX_ERRORS, Accepted, Feedback, Rejected
from modelloop.feedback.sqlite_store import SqliteStore
from modelloop.feedback.store import Pending

T0 = 1_700_000_000.0
DOCS = Path(__file__).parents[3] / "docs" / "feedback.md"
Make = Callable[..., Feedback]


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Make]:
    made: list[Feedback] = []

    def build(**settings: Any) -> Feedback:
        parsed = Settings.model_validate(
            {"attributes": [{"name": "region", "maxValues": 2}], **settings}
        )
        horizon = parsed.horizon.delta.total_seconds()
        store = SqliteStore(tmp_path / f"{len(made)}.db", horizon, parsed.capacity)
        made.append(Feedback(parsed, store))
        return made[-1]

    yield build
    for feedback in made:
        feedback.store.close()


def prediction(id_: str, **fields: Any) -> dict[str, Any]:
    record = {
        "id": id_,
        "model": "churn",
        "version": "v1",
        "time": T0,
        "attributes": {"region": "eu"},
        "predicted": "1",
        "score": 0.9,
    }
    return record | fields


def predictions(*records: dict[str, Any]) -> bytes:
    return json.dumps({"predictions": list(records)}).encode()


def labels(*records: tuple[str, Any] | dict[str, Any]) -> bytes:
    return json.dumps(
        {
            "labels": [
                r if isinstance(r, dict) else {"id": r[0], "label": r[1], "time": T0 + 60}
                for r in records
            ]
        }
    ).encode()


def samples(feedback: Feedback) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = feedback.metrics().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(feedback: Feedback, name: str, **labels: str) -> float:
    return samples(feedback)[name, frozenset(labels.items())]


def series(region: str = "eu", model: str = "churn", version: str = "v1") -> dict[str, str]:
    return {"model": model, "version": version, "region": region}


def one(**fields: Any) -> bytes:
    """A batch of one prediction with these fields changed."""
    return predictions(prediction("a", **fields))


def raw_time(text: str) -> bytes:
    return (
        b'{"predictions": [{"id": "a", "model": "m", "version": "v", "predicted": 1, "time": '
        + text.encode()
        + b"}]}"
    )


P0 = "predictions.0"
TPFN = ("tp", "fp", "tn", "fn")
EITHER = ".float", ".constrained-str"  # the union's members, each with its error


@pytest.mark.parametrize(
    ("body", "reason", "fields"),
    [
        (b"", "not_json", [""]),
        (b"predictions", "not_json", [""]),
        (b'{"predictions": [', "not_json", [""]),
        (b"[]", "invalid", [""]),
        (b"{}", "invalid", ["predictions"]),
        (b'{"predictions": {}}', "invalid", ["predictions"]),
        (b'{"predictions": [], "extra": 1}', "invalid", ["extra"]),
        (
            predictions({"id": "a"}),
            "invalid",
            [f"{P0}.{f}" for f in ("model", "version", "time", "predicted")],
        ),
        (
            predictions(prediction("a"), prediction("b", score=1.5)),
            "invalid",
            ["predictions.1.score"],
        ),
        (one(time=-1), "invalid", [f"{P0}.time"]),
        (one(model=""), "invalid", [f"{P0}.model"]),
        (one(id="x" * 257), "invalid", [f"{P0}.id"]),
        (one(attributes={"region": 3}), "invalid", [f"{P0}.attributes.region"]),
        (one(attributes={str(i): "x" for i in range(33)}), "invalid", [f"{P0}.attributes"]),
        (one(predicted=None), "invalid", [f"{P0}.predicted{e}" for e in EITHER]),
        (one(modelVersion="v2"), "invalid", [f"{P0}.modelVersion"]),
        (raw_time("NaN"), "invalid", [f"{P0}.time"]),
        (raw_time("1e999"), "invalid", [f"{P0}.time"]),
    ],
)
def test_bad_predictions_are_refused_whole_with_the_field_named(
    make: Make, body: bytes, reason: str, fields: list[str]
) -> None:
    feedback = make()
    result = feedback.add_predictions(body, T0)
    assert isinstance(result, Rejected)
    assert (result.reason, [e.field for e in result.errors]) == (reason, fields)
    assert feedback.store.pending() == Pending(predictions=0, labels=0)
    assert (
        value(feedback, "modelloop_feedback_bad_requests_total", kind="prediction", reason=reason)
        == 1
    )


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        (labels({"id": "a", "time": T0}), ["labels.0.label"]),
        (labels({"id": "a", "label": "", "time": T0}), [f"labels.0.label{e}" for e in EITHER]),
        (labels({"id": "a", "label": 1, "time": "yesterday"}), ["labels.0.time"]),
        (labels(("a", 1), {"id": "", "label": 1, "time": T0}), ["labels.1.id"]),
        (json.dumps({"predictions": []}).encode(), ["labels", "predictions"]),
    ],
)
def test_bad_labels_are_refused_whole(make: Make, body: bytes, fields: list[str]) -> None:
    feedback = make()
    feedback.add_predictions(predictions(prediction("a")), T0)
    result = feedback.add_labels(body, T0)
    assert isinstance(result, Rejected)
    assert (result.reason, [e.field for e in result.errors]) == ("invalid", fields)
    assert feedback.store.pending() == Pending(predictions=1, labels=0)
    assert value(feedback, "modelloop_feedback_labels_total", **series()) == 0
    assert (
        value(feedback, "modelloop_feedback_bad_requests_total", kind="label", reason="invalid")
        == 1
    )


def test_the_field_errors_of_a_batch_are_capped(make: Make) -> None:
    result = make().add_predictions(predictions(*({"id": str(i)} for i in range(100))), T0)
    assert isinstance(result, Rejected)
    assert len(result.errors) == MAX_ERRORS


def test_a_batch_sent_again_counts_once(make: Make) -> None:
    feedback = make()
    batch = predictions(prediction("a"), prediction("b"), prediction("b"))
    assert feedback.add_predictions(batch, T0) == Accepted(3, 0, 2, {"duplicate": 1})
    assert feedback.add_predictions(batch, T0 + 1) == Accepted(3, 0, 0, {"duplicate": 3})
    late = labels(("a", "1"), ("b", "0"), ("c", "1"))
    assert feedback.add_labels(late, T0 + 2) == Accepted(3, 2, 1, {})
    assert feedback.add_labels(late, T0 + 3) == Accepted(3, 0, 0, {"duplicate": 3})
    assert feedback.add_predictions(predictions(prediction("c")), T0 + 4) == Accepted(1, 1, 0, {})
    got = samples(feedback)
    assert got["modelloop_feedback_predictions_total", frozenset(series().items())] == 3
    assert got["modelloop_feedback_labels_total", frozenset(series().items())] == 3
    assert got["modelloop_feedback_correct_total", frozenset(series().items())] == 2
    for kind, n in (("prediction", 4), ("label", 3)):
        key = frozenset({"kind": kind, "reason": "duplicate"}.items())
        assert got["modelloop_feedback_refused_total", key] == n


def test_a_full_store_refuses_new_waiting_records(make: Make) -> None:
    feedback = make(capacity=2)
    batch = predictions(prediction("a"), prediction("b"), prediction("c"))
    assert feedback.add_predictions(batch, T0) == Accepted(3, 0, 2, {"capacity": 1})
    assert feedback.add_labels(labels(("x", "1")), T0) == Accepted(1, 0, 0, {"capacity": 1})
    assert feedback.add_labels(labels(("a", "1")), T0) == Accepted(1, 1, 0, {})
    assert feedback.add_predictions(batch, T0) == Accepted(3, 0, 1, {"duplicate": 2})
    assert value(feedback, "modelloop_feedback_predictions_total", **series()) == 3
    assert value(feedback, "modelloop_feedback_refused_total", kind="label", reason="capacity") == 1
    assert value(feedback, "modelloop_feedback_pending", kind="prediction") == 2


def test_series_beyond_the_limit_are_refused(make: Make) -> None:
    feedback = make(maxSeries=2)
    batch = predictions(
        prediction("a"), prediction("b", version="v2"), prediction("c", version="v3")
    )
    assert feedback.add_predictions(batch, T0) == Accepted(3, 0, 2, {"series_limit": 1})
    refused = {"kind": "prediction", "reason": "series_limit"}
    assert value(feedback, "modelloop_feedback_refused_total", **refused) == 1
    assert not any(
        labels.get("version") == "v3"
        for _, labels in map(lambda k: (k[0], dict(k[1])), samples(feedback))
    )


def test_regression_labels_that_are_no_numbers_are_refused(make: Make) -> None:
    feedback = make(models={"price": {"task": "regression"}})
    batch = predictions(
        prediction("a", model="price", predicted=10.0, score=None),
        prediction("b", model="price", predicted=4.0, score=None),
    )
    feedback.add_predictions(batch, T0)
    result = feedback.add_labels(labels(("a", 7.5), ("b", "unknown")), T0)
    assert result == Accepted(2, 2, 0, {"not_numeric": 1})
    price = series(model="price")
    assert value(feedback, "modelloop_feedback_labels_total", **price) == 1
    assert value(feedback, "modelloop_feedback_abs_error_sum", **price) == 2.5
    assert value(feedback, "modelloop_feedback_squared_error_sum", **price) == 6.25
    assert (
        value(feedback, "modelloop_feedback_refused_total", kind="label", reason="not_numeric") == 1
    )
    assert not any(
        name.startswith("modelloop_feedback_correct") and dict(ls).get("model") == "price"
        for name, ls in samples(feedback)
    )


def test_values_beyond_an_attributes_cap_are_counted_once(make: Make) -> None:
    feedback = make()
    batch = predictions(
        *(
            prediction(str(i), attributes={"region": r})
            for i, r in enumerate(["eu", "us", "ap", "sa"])
        )
    )
    feedback.add_predictions(batch, T0)
    feedback.add_predictions(batch, T0)  # duplicates: not counted again
    feedback.add_labels(labels(("2", "1"), ("3", "0")), T0)
    assert value(feedback, "modelloop_feedback_other_values_total", attribute="region") == 2
    assert value(feedback, "modelloop_feedback_predictions_total", **series("other")) == 2
    assert value(feedback, "modelloop_feedback_labels_total", **series("other")) == 2


def test_expiry_is_counted(make: Make) -> None:
    feedback = make(horizon="1h")
    feedback.add_predictions(predictions(prediction("a"), prediction("b")), T0)
    feedback.add_labels(labels(("x", "1")), T0)
    feedback.expire(T0 + 3601)
    assert value(feedback, "modelloop_feedback_expired_total", kind="prediction") == 2
    assert value(feedback, "modelloop_feedback_expired_total", kind="label") == 1
    assert value(feedback, "modelloop_feedback_pending", kind="prediction") == 0


def test_the_metrics_as_prometheus_reads_them(make: Make) -> None:
    feedback = make(models={"price": {"task": "regression"}})
    feedback.add_predictions(
        predictions(
            prediction("a", score=0.9),
            prediction("b", score=0.42, predicted="0"),
            prediction("c", score=0.07, predicted="0", attributes={"region": "us"}),
            prediction("r", model="price", predicted=3.0, score=None),
        ),
        T0,
    )
    late = [("a", "1", 30), ("b", "1", 7200), ("c", "0", -10), ("r", 1.0, 90000)]
    feedback.add_labels(labels(*({"id": i, "label": v, "time": T0 + d} for i, v, d in late)), T0)
    got = samples(feedback)

    def at(name: str, **labels: str) -> float:
        return got[name, frozenset(labels.items())]

    eu = series()
    assert at("modelloop_feedback_confusion_total", outcome="tp", **eu) == 1
    assert at("modelloop_feedback_confusion_total", outcome="fn", **eu) == 1
    assert at("modelloop_feedback_confusion_total", outcome="tn", **series("us")) == 1
    assert at("modelloop_feedback_correct_total", **eu) == 1
    # Cumulative score buckets per label value.
    positives = {
        b: at("modelloop_feedback_score_bucket", label="1", le=b, **eu)
        for b in ("0.4", "0.45", "0.9", "1.0", "+Inf")
    }
    assert positives == {"0.4": 0, "0.45": 1, "0.9": 2, "1.0": 2, "+Inf": 2}
    assert at("modelloop_feedback_score_count", label="1", **eu) == 2
    assert at("modelloop_feedback_score_sum", label="1", **eu) == pytest.approx(1.32)
    assert at("modelloop_feedback_score_count", label="0", **eu) == 0
    assert at("modelloop_feedback_label_delay_seconds_bucket", le="60.0", **eu) == 1
    assert at("modelloop_feedback_label_delay_seconds_bucket", le="7200.0", **eu) == 2
    assert at("modelloop_feedback_label_delay_seconds_sum", **eu) == 7230
    assert at("modelloop_feedback_skewed_total", **series("us")) == 1
    price = series(model="price")
    assert at("modelloop_feedback_abs_error_sum", **price) == 2
    assert at("modelloop_feedback_label_delay_seconds_bucket", le="86400.0", **price) == 0
    assert at("modelloop_feedback_label_delay_seconds_bucket", le="172800.0", **price) == 1
    assert ("modelloop_feedback_score_count", frozenset({**price, "label": "1"}.items())) not in got


def test_every_metric_is_documented(make: Make) -> None:
    feedback = make(models={"price": {"task": "regression"}})
    feedback.add_predictions(
        predictions(prediction("a"), prediction("r", model="price", predicted=1.0)), T0
    )
    feedback.add_labels(labels(("a", "1"), ("r", 2.0)), T0)
    names = {
        family.name
        for family in text_string_to_metric_families(feedback.metrics().decode())
        if family.name.startswith("modelloop_feedback_")
    }
    documented = set(re.findall(r"`(modelloop_feedback_[a-z_]+)", DOCS.read_text()))
    assert len(names) == 23  # with the KServe adapter's three
    for name in names:
        assert {name + suffix for suffix in ("", "_total", "_sum", "_bucket")} & documented, name


def test_the_estimates_count_each_prediction_once_at_its_models_threshold(make: Make) -> None:
    feedback = make(models={"price": {"task": "regression"}, "fraud": {"threshold": 0.3}})
    feedback.add_labels(labels(("d", "1")), T0)  # a label before its prediction
    batch = predictions(
        prediction("a", score=0.9),
        prediction("b", score=0.42, predicted="0"),
        prediction("c", score=0.07, predicted="0", attributes={"region": "us"}),
        prediction("d", score=0.6),
        prediction("f", model="fraud", score=0.35),
        prediction("r", model="price", predicted=3.0, score=None),
    )
    feedback.add_predictions(batch, T0)
    feedback.add_predictions(batch, T0)  # duplicates: counted once
    feedback.add_labels(labels(("a", "0"), ("b", "1"), ("r", 2.0)), T0)
    got = samples(feedback)

    def expected(name: str, **labels: str) -> dict[str, float]:
        return {o: got[name, frozenset({**labels, "outcome": o}.items())] for o in TPFN}

    eu, us, fraud = series(), series("us"), series(model="fraud")
    # eu: a 0.9 and d 0.6 flagged, b 0.42 not; all three labelled (d before its prediction).
    eu_expected = {"tp": 1.5, "fp": 0.5, "tn": 0.58, "fn": 0.42}
    for name in (
        "modelloop_feedback_expected_confusion",
        "modelloop_feedback_expected_confusion_labelled",
    ):
        assert expected(name + "_total", **eu) == pytest.approx(eu_expected, abs=1e-12)
    for name in (
        "modelloop_feedback_expected_correct",
        "modelloop_feedback_expected_correct_labelled",
    ):
        assert got[name + "_total", frozenset(eu.items())] == pytest.approx(2.08, abs=1e-12)
    assert expected("modelloop_feedback_expected_confusion_total", **us) == pytest.approx(
        {"tp": 0, "fp": 0, "tn": 0.93, "fn": 0.07}, abs=1e-12
    )
    assert expected("modelloop_feedback_expected_confusion_labelled_total", **us) == dict.fromkeys(
        TPFN, 0
    )
    # fraud's threshold is 0.3: 0.35 is flagged.
    assert expected("modelloop_feedback_expected_confusion_total", **fraud) == pytest.approx(
        {"tp": 0.35, "fp": 0.65, "tn": 0, "fn": 0}, abs=1e-12
    )
    histogram = "modelloop_feedback_prediction_score"
    assert got[histogram + "_count", frozenset(eu.items())] == 3
    assert got[histogram + "_sum", frozenset(eu.items())] == pytest.approx(1.92)
    cumulative = {
        le: got[histogram + "_bucket", frozenset({**eu, "le": le}.items())]
        for le in ("0.4", "0.45", "0.6", "0.9", "+Inf")
    }
    assert cumulative == {"0.4": 0, "0.45": 1, "0.6": 2, "0.9": 3, "+Inf": 3}
    price = frozenset(series(model="price").items())
    assert ("modelloop_feedback_expected_correct_total", price) not in got
    assert (histogram + "_count", price) not in got
    assert got["modelloop_feedback_predictions_total", price] == 1
