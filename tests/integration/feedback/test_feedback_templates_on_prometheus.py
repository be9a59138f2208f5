"""The feedback MetricTemplates (examples/templates/feedback.yaml) on a real Prometheus, over
the series the feedback service exposes, against scikit-learn on the same events.

Two replicas of the service share one RedisStore on a real redis-server; predictions and
labels are spread over both, and every label batch is sent to both (a retried delivery):
each label counts once. Each replica's /metrics is backfilled into Prometheus (promtool)
as two scrapes of its own instance — every series at 0, then at its value a window later —
so ``increase`` over the window is exactly the counts, and each template's value and
sample count are compared per model, version and region."""

import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from localcluster.redisserver import RedisServer
from prometheus_api_client import PrometheusConnect
from sklearn.metrics import (
    accuracy_score,
    mean_absolute_error,
    mean_squared_error,
    precision_score,
    recall_score,
    roc_auc_score,
)
from tests.harness.feedback_prometheus import Key, backfilled, query

from modelloop.api.metrictemplate import MetricTemplateSpec
from modelloop.feedback.config import Settings
from modelloop.feedback.redis_store import RedisStore
from modelloop.feedback.service import Accepted, Feedback

REPO = Path(__file__).parents[3]
TEMPLATES = {
    doc["metadata"]["name"]: MetricTemplateSpec.model_validate(doc["spec"])
    for doc in yaml.safe_load_all((REPO / "examples/templates/feedback.yaml").read_text())
    if doc
}
# The estimates' templates are tested on their own: test_feedback_estimates_on_prometheus.py.
LABELLED = sorted(name for name in TEMPLATES if "estimate" not in name)


# The backfilled Prometheus, the time to query at, the truth per template, the expositions.
Answers = tuple[PrometheusConnect, int, dict[str, dict[Key, tuple[float, float]]], list[str]]


@dataclass
class Event:
    id: str
    model: str
    version: str
    region: str
    predicted: float | str
    score: float | None
    label: float | str | None  # None: never labelled


def events() -> list[Event]:
    rng = random.Random(13)
    made: list[Event] = []
    for version, lift in (("fraud-v1", 1.0), ("fraud-v2", 0.8)):
        for region in ("eu", "us"):
            for i in range(300):
                score = round(0.05 * rng.randint(1, 20), 2)  # the buckets' bounds: AUC exact
                positive = rng.random() < min(1.0, score * lift + (0.1 if region == "us" else 0))
                made.append(
                    Event(
                        f"{version}-{region}-{i}",
                        "fraud",
                        version,
                        region,
                        "1" if score >= 0.5 else "0",
                        score,
                        ("1" if positive else "0") if rng.random() < 0.8 else None,
                    )
                )
    for region, noise in (("eu", 5.0), ("us", 12.0)):
        for i in range(200):
            predicted = round(rng.uniform(0, 100), 3)
            actual = predicted + rng.gauss(0, noise) if rng.random() < 0.9 else None
            made.append(
                Event(f"eta-{region}-{i}", "eta", "eta-v1", region, predicted, None, actual)
            )
    rng.shuffle(made)
    return made


def expected(made: list[Event]) -> dict[str, dict[Key, tuple[float, float]]]:
    """Per template: (value, sample count) per series, from scikit-learn."""
    out: dict[str, dict[Key, tuple[float, float]]] = {name: {} for name in LABELLED}
    keys = sorted({(e.model, e.version, e.region) for e in made})
    for key in keys:
        mine = [e for e in made if (e.model, e.version, e.region) == key]
        labelled = [e for e in mine if e.label is not None]
        out["feedback-label-coverage"][key] = (len(labelled) / len(mine), len(mine))
        if key[0] == "eta":
            truth = [float(e.label) for e in labelled if e.label is not None]
            guess = [float(e.predicted) for e in labelled]
            out["feedback-mae"][key] = (mean_absolute_error(truth, guess), len(truth))
            rmse = math.sqrt(mean_squared_error(truth, guess))
            out["feedback-rmse"][key] = (rmse, len(truth))
            continue
        y = [e.label == "1" for e in labelled]
        scores = [e.score or 0.0 for e in labelled]
        flagged = [s >= 0.5 for s in scores]
        n = len(labelled)
        out["feedback-accuracy"][key] = (
            accuracy_score([str(e.label) for e in labelled], [str(e.predicted) for e in labelled]),
            n,
        )
        out["feedback-precision"][key] = (precision_score(y, flagged), sum(flagged))
        out["feedback-recall"][key] = (recall_score(y, flagged), sum(y))
        out["feedback-auc"][key] = (roc_auc_score(y, scores), n)
        calibration = abs(sum(scores) / n - sum(y) / n)
        out["feedback-calibration-error"][key] = (calibration, n)
    return out


def wire(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "model": event.model,
        "version": event.version,
        "time": 1_700_000_000.0,
        "attributes": {"region": event.region},
        "predicted": event.predicted,
        "score": event.score,
    }


def body(kind: str, records: list[dict[str, Any]]) -> bytes:
    return json.dumps({kind: records}).encode()


def run_replicas(redis_url: str, made: list[Event], tmp_path: Path) -> list[str]:
    """Both replicas' /metrics after every event went through one or the other."""
    settings = Settings.model_validate(
        {
            "attributes": [{"name": "region"}],
            "models": {"eta": {"task": "regression"}},
            "store": {"path": str(tmp_path / "unused.db")},
        }
    )
    replicas = [Feedback(settings, RedisStore(redis_url, 86400, 100_000)) for _ in range(2)]
    try:
        batches = [made[i : i + 100] for i in range(0, len(made), 100)]
        for i, batch in enumerate(batches):
            answer = replicas[i % 2].add_predictions(
                body("predictions", [wire(e) for e in batch]), now=1.0
            )
            assert isinstance(answer, Accepted)
            assert answer.received == len(batch)
        labelled = [e for e in made if e.label is not None]
        joined = 0
        for i in range(0, len(labelled), 100):
            labels = [
                {"id": e.id, "label": e.label, "time": 1_700_000_100.0}
                for e in labelled[i : i + 100]
            ]
            for replica in replicas:  # each label batch reaches both replicas
                answer = replica.add_labels(body("labels", labels), now=2.0)
                assert isinstance(answer, Accepted)
                joined += answer.joined
        assert joined == len(labelled)
        return [replica.metrics().decode() for replica in replicas]
    finally:
        for replica in replicas:
            replica.store.close()


@pytest.fixture(scope="module")
def answers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, ...]]:
    tmp = tmp_path_factory.mktemp("templates")
    redis = RedisServer(tmp / "redis")
    try:
        made = events()
        expositions = run_replicas(redis.url, made, tmp)
    finally:
        redis.stop()
    with backfilled(expositions, tmp) as (client, at):
        yield client, at, expected(made), expositions


@pytest.mark.parametrize("name", LABELLED)
def test_a_template_equals_scikit_learn_on_the_same_events(name: str, answers: Answers) -> None:
    client, at, truth, _ = answers
    template = TEMPLATES[name]
    values = query(client, template.query, at)
    assert template.sample_query is not None
    samples = query(client, template.sample_query, at)
    want = truth[name]
    assert set(values) == set(want), name
    for key, (value, count) in want.items():
        assert values[key] == pytest.approx(value, abs=1e-9), (name, key)
        assert samples[key] == pytest.approx(count), (name, key)


LATE = 600  # seconds: the labels' scrapes come this much after the predictions'


def test_the_coverage_query_reads_the_predictions_a_label_delay_earlier(
    answers: Answers, tmp_path: Path
) -> None:
    """Every label-based template's coverageQuery, with $labelDelay, on series whose
    labels arrive 10 minutes after their predictions: at that later time, the share of
    the predictions labelled; without the offset, nothing matches (the labels' window
    holds no predictions)."""
    _, _, truth, expositions = answers
    want = truth["feedback-label-coverage"]
    covered = sorted(name for name, t in TEMPLATES.items() if t.coverage_query)
    assert covered == [name for name in LABELLED if name != "feedback-label-coverage"]
    with backfilled(expositions, tmp_path, {"modelloop_feedback_labels": LATE}) as (client, at):
        for name in covered:
            text = TEMPLATES[name].coverage_query
            assert text is not None
            coverage = query(client, text, at + LATE, label_delay=f"{LATE}s")
            assert set(coverage) == set(want), name
            for key, (share, _) in want.items():
                assert coverage[key] == pytest.approx(share, abs=1e-9), (name, key)
            assert query(client, text, at + LATE, label_delay="1s") == {}
