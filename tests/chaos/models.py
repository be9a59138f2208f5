"""The chaos run's Models and their streams. Pure, except the stream's draws.

Each Model is a churn model (examples/trainer/churn.py) with a stream of its own: its own
slice drifts, by its own angle, each time the run turns it. The truth of a stream is one
concept at a time — the boundary of the drifting slice turned by ``angle`` — and the
trainer is given the same concept (``CHURN_CONCEPT`` in the Model's Job template, updated
before the stream turns), so a training labels its whole data window with the concept of
now: the stand-in for a trainer whose labels have caught up. Time constants are seconds,
within the API's bounds, so a loop closes in about a minute.
"""

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from examples.trainer.churn import SLICES, Concept, Shift

from modelloop.api.vocabulary import API_VERSION

TRAINER = "ghcr.io/modelloop-examples/trainer:0.1"  # localcluster/demo/pods.py runs it
TURNS = (1.4, 1.4, -1.3, -1.4, 1.3)  # radians per drift, by Model index
OBJECTIVE = 0.75
EXAMPLES_PER_HOUR = 150_000  # ~40/s: a 1m data window holds ~2500 examples
SCALE_DOWN = "10s"  # the old stable's pods are kept this long after a promotion


def model_name(index: int) -> str:
    return f"churn-{chr(ord('a') + index)}"


def drifting_slice(index: int) -> str:
    return SLICES[index % len(SLICES)]


def concept(index: int, drifts: int) -> Concept:
    """The truth of Model ``index``'s stream after ``drifts`` turns, at every instant."""
    angle = TURNS[index % len(TURNS)] * drifts
    return Concept(
        drift_per_day=dict.fromkeys(SLICES, 0.0),
        examples_per_hour=EXAMPLES_PER_HOUR,
        shift=Shift(drifting_slice(index), 0.0, angle),
    )


def job_env_patch(index: int, drifts: int) -> dict[str, Any]:
    """The merge patch that gives the Model's next trainings the concept after ``drifts``
    turns (a merge patch replaces the containers list: all of it is here)."""
    return {"spec": {"retraining": {"job": _job(concept(index, drifts))}}}


def _job(truth: Concept) -> dict[str, Any]:
    container = {
        "name": "trainer",
        "image": TRAINER,
        "env": [{"name": "CHURN_CONCEPT", "value": truth.to_json()}],
    }
    return {
        "spec": {
            "backoffLimit": 0,
            "template": {"spec": {"restartPolicy": "Never", "containers": [container]}},
        }
    }


def _counted(counter: str, model: str) -> str:
    """The counter's increase over the window, for one version and slice of the Model."""
    return f'sum(increase({counter}{{model="{model}", version="$version", $slice}}[$window]))'


def manifest(index: int, outputs: Path) -> dict[str, Any]:
    name = model_name(index)
    predictions = _counted("model_predictions_total", name)
    return {
        "apiVersion": API_VERSION,
        "kind": "Model",
        "metadata": {"name": name},
        "spec": {
            "automation": "promote",
            "metricsProvider": "default",
            "evaluationInterval": "5s",
            "serving": {
                "replicas": 1,
                "port": 8080,
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "server",
                                "image": "ghcr.io/modelloop-examples/churn-server:0.1",
                            }
                        ]
                    }
                },
            },
            "traffic": {
                "provider": "gatewayAPI",
                "gatewayAPI": {"parentRefs": [{"name": "public"}], "hostnames": [f"{name}.test"]},
            },
            "slices": [{"name": s, "matchLabels": {"slice": s}} for s in SLICES],
            "metrics": [
                {
                    "name": "accuracy",
                    "query": f"{_counted('model_correct_predictions_total', name)} / {predictions}",
                    "sampleQuery": predictions,
                    "minSamples": 30,
                    "window": "15s",
                    "objective": {"min": OBJECTIVE},
                    "breach": {"for": "15s"},
                    "canary": {"test": "proportion"},
                }
            ],
            "retraining": {
                "triggers": {"onBreach": ["accuracy"]},
                "cooldown": "30s",
                "maxPerDay": 1000,
                "dataWindow": "1m",
                "outputURI": f"file://{outputs / name}",
                "job": _job(concept(index, 0)),
            },
            "validation": {
                "gates": [{"metric": "accuracy", "min": 0.7, "notWorseThan": {"absolute": 0.05}}]
            },
            "rollout": {
                "steps": [
                    # 20%: enough of each slice's traffic for minSamples in the window.
                    {"weight": 20, "duration": "10s"},
                    {"weight": 50, "duration": "10s"},
                    {"weight": 100},
                ],
                "analysis": {
                    "interval": "5s",
                    "consecutiveSuccesses": 2,
                    "confidence": 0.99,
                    # Prometheus down for a minute is 12 inconclusive evaluations.
                    "maxInconclusive": 40,
                },
                "scaleDownDelay": SCALE_DOWN,
            },
        },
    }


def first_version(index: int, uri: str) -> dict[str, Any]:
    name = model_name(index)
    return {
        "apiVersion": API_VERSION,
        "kind": "ModelVersion",
        "metadata": {"name": f"{name}-v1"},
        "spec": {"model": name, "uri": uri},
    }


class Stream:
    """A Model's requests as they arrive: each example drawn from the concept of now."""

    def __init__(self, index: int, seed: int) -> None:
        self.index = index
        self.drifts = 0
        self.concept = concept(index, 0)
        self._rng = np.random.default_rng([seed, index])
        self._lock = threading.Lock()

    def turn(self) -> None:
        with self._lock:
            self.drifts += 1
            self.concept = concept(self.index, self.drifts)

    def example(self, slice_: str) -> dict[str, Any]:
        with self._lock:
            x = self._rng.normal(size=(1, 2))
            s = np.array([SLICES.index(slice_)])
            y = self.concept.labels(self._rng, x, s, np.array([time.time()]))
        return {"features": x[0].tolist(), "label": int(y[0])}
