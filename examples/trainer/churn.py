"""The churn example's data and model, shared by the example trainer and the demo.

The data is a synthetic stream: two features and a churn label per example, in two
slices (mobile, web). The true boundary turns slowly over time, by ``drift_per_day``
radians a day per slice, and, when the concept says so, abruptly for one slice at one
instant (the demo's concept drift). Examples are generated hour by hour from a generator
seeded by the hour, so any window of the stream can be read again by a trainer.

The model is a logistic regression with weights of its own per slice.

What to train on (``training_rows``, ``held_out``): the data window, except for a slice
whose world visibly changed in it — a slice that ModelLoop says fails
(MODELLOOP_FAILING_SINCE) on which the champion's accuracy fell, or any slice on which it
rose — there only the data since the change (``changed_at``).
"""

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

SLICES = ("mobile", "web")
EPOCH = datetime(2026, 1, 1).timestamp()
SHARPNESS = 3.0  # the true logit's scale: the best possible accuracy is about 0.84
HELD_OUT = 0.2  # each slice's last fifth of its training data is held out
MIN_RECENT = 500  # examples since a change, at least, to train a slice on them alone
MIN_CHANGE = 0.05  # a change: the champion's accuracy before and after differ this much
MIN_Z = 4.0  # a rise ModelLoop did not hint at: so many standard errors (the best of many splits)
Floats = NDArray[np.float64]
Ints = NDArray[np.int_]


@dataclass(frozen=True)
class Shift:
    """At ``at`` (Unix time) the boundary of ``slice`` turns by ``angle`` radians, at once."""

    slice: str
    at: float
    angle: float


@dataclass(frozen=True)
class Concept:
    """How the stream's truth moves; the default is the example trainer's slow drift."""

    drift_per_day: dict[str, float] = field(default_factory=lambda: {"mobile": 0.02, "web": 0.002})
    examples_per_hour: int = 40
    shift: Shift | None = None

    def angles(self, s: Ints, t: Floats) -> Floats:
        """The true boundary's angle for each example (slice index, Unix time)."""
        days = (t - EPOCH) / 86400
        angle = np.array([self.drift_per_day[SLICES[i]] for i in s]) * days
        if self.shift is not None:
            shifted = (s == SLICES.index(self.shift.slice)) & (t >= self.shift.at)
            angle = angle + np.where(shifted, self.shift.angle, 0.0)
        return np.asarray(angle, dtype=np.float64)

    def labels(self, rng: np.random.Generator, x: Floats, s: Ints, t: Floats) -> Floats:
        angle = self.angles(s, t)
        logit = SHARPNESS * (np.cos(angle) * x[:, 0] + np.sin(angle) * x[:, 1])
        return (rng.uniform(size=len(s)) < 1 / (1 + np.exp(-logit))).astype(np.float64)

    def to_json(self) -> str:
        """The CHURN_CONCEPT value that gives a trainer this concept."""
        value: dict[str, Any] = {
            "driftPerDay": self.drift_per_day,
            "examplesPerHour": self.examples_per_hour,
        }
        if self.shift is not None:
            shift = self.shift
            value["shift"] = {"slice": shift.slice, "at": shift.at, "angle": shift.angle}
        return json.dumps(value)

    @classmethod
    def from_json(cls, text: str | None) -> "Concept":
        """From CHURN_CONCEPT; the default concept when it is unset or empty."""
        if not text:
            return cls()
        value = json.loads(text)
        shift = value.get("shift")
        return cls(
            drift_per_day=value.get("driftPerDay", cls().drift_per_day),
            examples_per_hour=int(value.get("examplesPerHour", cls.examples_per_hour)),
            shift=Shift(shift["slice"], float(shift["at"]), float(shift["angle"]))
            if shift
            else None,
        )


def stream(
    start: float, end: float, concept: Concept, seed: int = 7
) -> tuple[Floats, Floats, Ints, Floats]:
    """(features, labels, slice index, timestamps) of the examples between two instants."""
    n = concept.examples_per_hour
    xs, ys, ss, ts = [], [], [], []
    for hour in range(int(start // 3600), int(end // 3600) + 1):
        rng = np.random.default_rng([seed, hour])
        t = hour * 3600 + rng.uniform(0, 3600, n)
        s = rng.integers(0, len(SLICES), n)
        x = rng.normal(size=(n, 2))
        y = concept.labels(rng, x, s, t)
        keep = (t >= start) & (t <= end)
        xs.append(x[keep])
        ys.append(y[keep])
        ss.append(s[keep])
        ts.append(t[keep])
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(ss), np.concatenate(ts)


def design(x: Floats, s: Ints) -> Floats:
    """Per-slice weights: each slice's features in its own columns, plus a bias each."""
    columns = []
    for i in range(len(SLICES)):
        mask = (s == i).astype(float)[:, None]
        columns += [x * mask, mask]
    return np.hstack(columns)


def fit(x: Floats, y: Floats, steps: int = 500, rate: float = 0.5) -> Floats:
    """Logistic regression by gradient descent on the mean log-loss."""
    w = np.zeros(x.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-x @ w))
        w -= rate * x.T @ (p - y) / len(y)
    return w


def scores(w: Floats, x: Floats, s: Ints) -> Floats:
    """The model's churn probabilities."""
    return np.asarray(1 / (1 + np.exp(-design(x, s) @ w)), dtype=np.float64)


def auc(y: Floats, score: Floats) -> float:
    """Area under the ROC curve by the Mann-Whitney rank statistic (ties averaged)."""
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(len(score))
    sorted_scores = score[order]
    i = 0
    while i < len(score):
        j = i
        while j + 1 < len(score) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    positives = y == 1
    n_pos, n_neg = positives.sum(), (~positives).sum()
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def hits(w: Floats, x: Floats, y: Floats, s: Ints) -> NDArray[np.bool_]:
    """Whether the model predicts each example right (at the 0.5 threshold)."""
    return np.asarray((scores(w, x, s) >= 0.5) == (y == 1), dtype=np.bool_)


def evaluate(w: Floats, x: Floats, y: Floats, s: Ints) -> dict[tuple[str, str], float]:
    """AUC and accuracy (at the 0.5 threshold) per slice."""
    score, right = scores(w, x, s), hits(w, x, y, s)
    result: dict[tuple[str, str], float] = {}
    for i, name in enumerate(SLICES):
        mine = s == i
        result[("auc", name)] = auc(y[mine], score[mine])
        result[("accuracy", name)] = float(right[mine].mean())
    return result


def changed_at(
    t: Floats,
    right: NDArray[np.bool_],
    fell: bool,
    until: float | None = None,
    minimum: int = MIN_RECENT,
    margin: float = MIN_CHANGE,
    z_min: float = 0.0,
) -> float | None:
    """When a slice's world changed, from the champion's hits on its examples (times
    ``t``, whether the champion predicts each right), or None: no visible change.

    The change is the split of the examples (the later part starting before ``until``)
    where the champion's accuracy falls the most (``fell``) or rises the most, by the z of
    the two proportions before and after, with at least ``minimum`` examples on each
    side; it counts only when the accuracies differ by at least ``margin``, and by ``z_min``
    standard errors."""
    order = np.argsort(t, kind="stable")
    times, hit = t[order], right[order].astype(np.float64)
    n = len(times)
    split = np.arange(minimum, n - minimum + 1)  # examples before the split
    if until is not None:
        split = split[times[split] < until]
    if len(split) == 0:
        return None
    hits_before = np.cumsum(hit)[split - 1]
    p1, p2 = hits_before / split, (hit.sum() - hits_before) / (n - split)
    pooled = hit.sum() / n
    spread = np.sqrt(max(pooled * (1 - pooled), 1e-12) * (1 / split + 1 / (n - split)))
    gain = p1 - p2 if fell else p2 - p1
    z = gain / spread
    best = int(np.argmax(z))
    return float(times[split[best]]) if gain[best] >= margin and z[best] >= z_min else None


def training_rows(
    t: Floats,
    s: Ints,
    right: NDArray[np.bool_],
    failing_since: dict[int, float],
) -> NDArray[np.bool_]:
    """The examples to train and evaluate on: the window, but only the data since its
    slice's world changed, where the champion (``right``: whether it predicts each example
    right) shows the change:

    - a failing slice (index -> ModelLoop's onset): the champion's accuracy fell. The
      onset is when an evaluation first found the slice failing; the outcomes it judged
      were labelled within the metric's window before it and predicted a label delay
      earlier still, so the change lies before the onset, by an amount the trainer cannot
      read from it: the fall is searched among the splits before the onset;
    - any slice: the champion's accuracy rose, by ``MIN_Z`` standard errors (nothing
      hinted at it: no noise among the many splits). The champion was trained for the
      world since then (after an earlier change), and the window's older part is the old
      one.
    """
    keep = np.ones(len(t), dtype=np.bool_)
    for i in np.unique(s):
        mine = s == i
        onset = failing_since.get(int(i))
        change = None if onset is None else changed_at(t[mine], right[mine], True, onset)
        if change is None:
            change = changed_at(t[mine], right[mine], False, z_min=MIN_Z)
        if change is not None:
            keep &= ~mine | (t >= change)
    return keep


def held_out(
    t: Floats, s: Ints, keep: NDArray[np.bool_], share: float = HELD_OUT
) -> NDArray[np.bool_]:
    """Of the kept examples, each slice's latest ``share``: the held-out data."""
    held = np.zeros(len(t), dtype=np.bool_)
    for i in np.unique(s[keep]):
        mine = keep & (s == i)
        held |= mine & (t >= np.quantile(t[mine], 1 - share))
    return held


def failing_since(text: str | None, slices: tuple[str, ...]) -> dict[int, float]:
    """MODELLOOP_FAILING_SINCE ({slice: RFC 3339}) as slice index -> Unix time; slices the
    trainer does not know are ignored."""
    since = json.loads(text) if text else {}
    return {
        slices.index(name): datetime.fromisoformat(when).timestamp()
        for name, when in since.items()
        if name in slices
    }
