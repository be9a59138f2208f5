"""The feedback service as a process, scraped by a real Prometheus: predictions of a
classifier and a regressor in three regions, labels late (some before their prediction,
some never, some for no prediction, some sent twice), the service killed mid-stream and
started again on its file. What Prometheus holds per model x version x region matches
scikit-learn on the same events: accuracy, confusion counts, AUC (from the score
buckets), MAE and RMSE, coverage and the label delays; nothing lost, nothing twice."""

import itertools
import json
import math
import time
import urllib.parse
import urllib.request
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from localcluster.feedback import FeedbackService
from localcluster.prometheus import PrometheusServer, scrape_config
from localcluster.waiting import wait_for
from prometheus_client.parser import text_string_to_metric_families
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    mean_absolute_error,
    roc_auc_score,
    root_mean_squared_error,
)

from modelloop.feedback.outcomes import DELAY_BOUNDS, SCORE_BOUNDS

T0 = 1_700_000_000.0
REGIONS = ("eu", "us", "ap")
DELAYS = (-3.0, 5.0, 45.0, 400.0, 5000.0, 90000.0, 700000.0)  # -3: the label's clock is behind
THRESHOLD = 0.5  # the service's; the classifier's own class cut-off is 0.6
SETTINGS = {
    "threshold": THRESHOLD,
    "models": {"price": {"task": "regression"}},
    "attributes": [{"name": "region", "maxValues": 10}],
}
Key = frozenset[tuple[str, str]]
Samples = dict[Key, float]


@dataclass(frozen=True)
class Event:
    prediction: dict[str, Any]
    label: dict[str, Any] | None  # None: never labelled

    @property
    def slice(self) -> tuple[str, str, str]:
        p = self.prediction
        return p["model"], p["version"], p["attributes"]["region"]


def events(seed: int = 13) -> list[Event]:
    rng = np.random.default_rng(seed)
    made = []
    for i in range(1200):
        model = "churn" if i % 4 else "price"
        version = "v2" if i % 3 == 0 else "v1"
        region = REGIONS[int(rng.integers(3))]
        at = T0 + i
        if model == "churn":
            p = float(rng.uniform())
            truth: float | str = "1" if rng.uniform() < p else "0"
            score = round(float(np.clip(p + rng.normal(0, 0.2), 0, 1)), 4)
            predicted: float | str = "1" if score >= 0.6 else "0"
        else:
            truth = round(float(rng.normal(100, 20)), 3)
            noise = 12.0 if region == "ap" else 4.0
            predicted, score = round(truth + float(rng.normal(0, noise)), 3), None
        prediction = {
            "id": f"{model}-{i}",
            "model": model,
            "version": version,
            "time": at,
            "attributes": {"region": region, "host": f"h{i % 7}"},  # host: not a label
            "predicted": predicted,
            "score": score,
        }
        labelled = rng.uniform() < 0.85
        delay = float(rng.choice(DELAYS))
        label = {"id": prediction["id"], "label": truth, "time": at + delay}
        made.append(Event(prediction, label if labelled else None))
    return made


def batches(records: Sequence[dict[str, Any]], size: int = 200) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(records), size):
        yield list(records[start : start + size])


def send(service: FeedbackService, kind: str, records: Sequence[dict[str, Any]]) -> Counter[str]:
    """Posts in batches; the replies' counts added up."""
    post = service.predictions if kind == "predictions" else service.labels
    total: Counter[str] = Counter()
    for batch in batches(records):
        status, reply = post(batch)
        assert status == 200, reply
        total.update({"joined": reply["joined"], "waiting": reply["waiting"], **reply["skipped"]})
    return total


def key(name: str, **labels: str) -> Key:
    return frozenset({"__name__": name, **labels}.items())


def service_samples(service: FeedbackService) -> Samples:
    return {
        key(s.name, **s.labels): s.value
        for family in text_string_to_metric_families(service.metrics())
        if family.name.startswith("modelloop_feedback_")
        for s in family.samples
    }


def prometheus_samples(prometheus: PrometheusServer, at: float | None = None) -> Samples:
    query = {"query": '{__name__=~"modelloop_feedback_.+"}'}
    if at is not None:
        query["time"] = f"{at:.3f}"
    url = f"{prometheus.url}/api/v1/query?{urllib.parse.urlencode(query)}"
    with urllib.request.urlopen(url, timeout=10) as response:
        data = json.loads(response.read())
    return {
        frozenset((k, v) for k, v in r["metric"].items() if k not in ("job", "instance")): float(
            r["value"][1]
        )
        for r in data["data"]["result"]
    }


def scraped(service: FeedbackService, prometheus: PrometheusServer) -> float:
    """Waits until Prometheus holds the service's current values; returns when."""

    def caught_up() -> float | None:
        expected = service_samples(service)
        now = time.time()
        held = prometheus_samples(prometheus, now)
        return now if all(held.get(k) == v for k, v in expected.items()) else None

    when = wait_for(caught_up, 30, "Prometheus to scrape the service's values")
    assert when is not None
    return when


def auc_from_buckets(positives: list[float], negatives: list[float]) -> float:
    """The ROC curve at each bucket bound (cumulative counts, score <= le), trapezoids."""
    p_total, n_total = positives[-1], negatives[-1]
    points = [(1.0, 1.0)] + [
        ((n_total - n) / n_total, (p_total - p) / p_total)
        for p, n in zip(positives, negatives, strict=True)
    ]
    return sum((x0 - x1) * (y0 + y1) / 2 for (x0, y0), (x1, y1) in itertools.pairwise(points))


@pytest.fixture
def service(tmp_path: Path) -> Iterator[FeedbackService]:
    started = FeedbackService(tmp_path / "feedback", SETTINGS)
    yield started
    started.stop()
    log = started.process.log_text()
    assert "Traceback" not in log, log


def test_joined_metrics_match_scikit_learn_across_a_restart(
    service: FeedbackService, prometheus: Callable[..., PrometheusServer]
) -> None:
    prom = prometheus(scrape_config({"feedback": service.address}))
    stream = events()
    cut = int(len(stream) * 0.6)
    first, second = stream[:cut], stream[cut:]
    labelled_first = [e.label for e in first if e.label]
    early = [e.label for e in second[::10] if e.label]  # sent before their predictions
    strays = [{"id": f"stray-{i}", "label": "1", "time": T0} for i in range(15)]

    # Before the restart: 60% of the predictions, half their labels, the early labels.
    assert send(service, "predictions", [e.prediction for e in first])["waiting"] == cut
    send(service, "labels", labelled_first[::2])
    send(service, "labels", early + strays)
    before = prometheus_samples(prom, scraped(service, prom))

    service.kill()  # SIGKILL: nothing gets flushed
    service.start()

    # After: the rest, every label, and what was sent before sent again.
    got = send(service, "predictions", [e.prediction for e in second])
    assert got["joined"] == len(early)
    rest = [e.label for e in second if e.label and e.label not in early]
    got = send(service, "labels", labelled_first[1::2] + rest)
    assert got["joined"] == len(labelled_first[1::2]) + len(rest)
    resent = send(service, "labels", labelled_first + early)
    assert resent == Counter({"duplicate": len(labelled_first) + len(early)})
    resent = send(service, "predictions", [e.prediction for e in first[:200]])
    assert resent == Counter({"duplicate": 200})
    after = prometheus_samples(prom, scraped(service, prom))

    def total(name: str, **labels: str) -> float:
        """The counter's whole count: what it reached before the restart, and after."""
        return before.get(key(name, **labels), 0.0) + after.get(key(name, **labels), 0.0)

    slices = sorted({e.slice for e in stream})
    assert len(slices) == 12
    for slice_ in slices:
        model, version, region = slice_
        labels = {"model": model, "version": version, "region": region}
        predicted = [e for e in stream if e.slice == slice_]
        joined = [e for e in predicted if e.label]
        assert total("modelloop_feedback_predictions_total", **labels) == len(predicted)
        assert total("modelloop_feedback_labels_total", **labels) == len(joined), slice_
        delays = [e.label["time"] - e.prediction["time"] for e in joined if e.label]
        assert total("modelloop_feedback_skewed_total", **labels) == sum(d < 0 for d in delays)
        per_bucket = Counter(bisect_left(DELAY_BOUNDS, max(d, 0.0)) for d in delays)
        for i, bound in enumerate(DELAY_BOUNDS):
            name = "modelloop_feedback_label_delay_seconds_bucket"
            cumulative = sum(per_bucket[j] for j in range(i + 1))
            assert total(name, le=str(bound), **labels) == cumulative, (slice_, bound)
        assert total("modelloop_feedback_label_delay_seconds_sum", **labels) == pytest.approx(
            sum(max(d, 0.0) for d in delays)
        )
        if model == "churn":
            check_classification(joined, labels, total)
        else:
            check_regression(joined, labels, total)
    # Waiting: the predictions never labelled, the labels of no prediction (a gauge).
    unlabelled = sum(1 for e in stream if e.label is None)
    assert after[key("modelloop_feedback_pending", kind="prediction")] == unlabelled
    assert after[key("modelloop_feedback_pending", kind="label")] == len(strays)
    duplicates = len(labelled_first) + len(early)
    assert total("modelloop_feedback_refused_total", kind="label", reason="duplicate") == duplicates
    assert total("modelloop_feedback_refused_total", kind="prediction", reason="duplicate") == 200


def check_classification(
    joined: list[Event], labels: dict[str, str], total: Callable[..., float]
) -> None:
    truth = [e.label["label"] == "1" for e in joined if e.label]
    classes = [e.prediction["predicted"] == "1" for e in joined]
    scores = [e.prediction["score"] for e in joined]
    n = len(joined)
    accuracy = total("modelloop_feedback_correct_total", **labels) / n
    assert accuracy == pytest.approx(accuracy_score(truth, classes), abs=1e-12)
    tn, fp, fn, tp = confusion_matrix(
        truth, [s >= THRESHOLD for s in scores], labels=[False, True]
    ).ravel()
    counted = {
        o: total("modelloop_feedback_confusion_total", outcome=o, **labels)
        for o in ("tp", "fp", "tn", "fn")
    }
    assert counted == {"tp": tp, "fp": fp, "tn": tn, "fn": fn}, labels
    buckets = {
        value: [
            total("modelloop_feedback_score_bucket", label=value, le=str(bound), **labels)
            for bound in SCORE_BOUNDS
        ]
        for value in ("0", "1")
    }
    auc = auc_from_buckets(buckets["1"], buckets["0"])
    bucketed = [bisect_left(SCORE_BOUNDS, s) for s in scores]
    # Exactly the AUC of the scores as the buckets see them (ties within a bucket count
    # half), and close to the AUC of the exact scores.
    assert auc == pytest.approx(roc_auc_score(truth, bucketed), abs=1e-12)
    assert auc == pytest.approx(roc_auc_score(truth, scores), abs=0.02)
    assert total("modelloop_feedback_score_sum", label="1", **labels) == pytest.approx(
        sum(s for s, t in zip(scores, truth, strict=True) if t)
    )


def check_regression(
    joined: list[Event], labels: dict[str, str], total: Callable[..., float]
) -> None:
    truth = [e.label["label"] for e in joined if e.label]
    predicted = [e.prediction["predicted"] for e in joined]
    n = total("modelloop_feedback_abs_error_count", **labels)
    assert n == len(joined)
    mae = total("modelloop_feedback_abs_error_sum", **labels) / n
    rmse = math.sqrt(total("modelloop_feedback_squared_error_sum", **labels) / n)
    assert mae == pytest.approx(mean_absolute_error(truth, predicted), rel=1e-9)
    assert rmse == pytest.approx(root_mean_squared_error(truth, predicted), rel=1e-9)
