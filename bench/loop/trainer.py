"""The example trainer's model, and what its training Job does, for the benchmark.

The model is the churn example's (examples/trainer/churn.py): a logistic regression
with weights of its own per slice, fitted by ``churn.fit``. ``churn.design`` lays out two
slices; here each slice's block (its features and a bias) is fitted on its own, which
has the same minimum (the mean log-loss is a sum over slices) for a fraction of the cost
of one fit over a design that is mostly zeros. ``STEPS`` gradient steps instead of the
example's 500, on at most ``FIT_AT_MOST`` examples per slice: accuracy reads only the
boundary's direction, which settles within 50 steps (the weights' scale keeps growing,
slowly), and 3000 examples pin three weights down to well under a point of accuracy.

The Job does what the example trainer does, with the same functions: it reads its data
window — only the examples whose labels have arrived when it starts — and, for a slice
in MODELLOOP_FAILING_SINCE whose champion's accuracy visibly fell in the window, keeps
only its examples since the fall (``churn.training_rows``); it holds out each slice's
latest 20%, fits on the rest, and reports accuracy per slice for the candidate and for
the champion on the same held-out data, with the held-out counts and the paired counts
(the examples only one of the two predicts right).
"""

from dataclasses import dataclass

import numpy as np
from examples.trainer.churn import fit, held_out, training_rows
from numpy.typing import NDArray

from modelloop.api.modelversion import OfflineMetric, OfflineMetrics, PairedCounts

from .streams import Floats, Ints, Stream

METRIC = "accuracy"
STEPS = 100
FIT_AT_MOST = 3000  # examples per slice a fit reads, evenly spread over its window
Bools = NDArray[np.bool_]
# Weights: (slices, features + 1), each slice's feature weights and then its bias.


def correct(weights: Floats, x: Floats, s: Ints, y: Floats) -> Bools:
    """Whether each prediction (churn when the probability is at least 0.5) is right."""
    logit = np.einsum("ij,ij->i", x, weights[s, :-1]) + weights[s, -1]
    return np.asarray((logit >= 0) == (y == 1))


def fit_slices(x: Floats, s: Ints, y: Floats, slices: int, fallback: Floats | None) -> Floats:
    """Per-slice weights; a slice without examples keeps ``fallback``'s (or none)."""
    weights = np.zeros((slices, x.shape[1] + 1)) if fallback is None else fallback.copy()
    for i in range(slices):
        mine = np.flatnonzero(s == i)
        if len(mine) > FIT_AT_MOST:
            mine = mine[np.linspace(0, len(mine) - 1, FIT_AT_MOST).astype(np.int64)]
        if len(mine):
            design = np.hstack([x[mine], np.ones((len(mine), 1))])
            weights[i] = fit(design, y[mine], steps=STEPS)
    return weights


@dataclass(frozen=True)
class Trained:
    weights: Floats
    metrics: OfflineMetrics
    examples: int  # labelled examples in the window


def window(stream: Stream, start: float, end: float) -> Ints:
    """The examples a Job started at ``end`` reads: made in [start, end), labelled by ``end``."""
    lo, hi = np.searchsorted(stream.time, [start, end])
    inside = np.arange(lo, hi)
    return inside[stream.label_time[inside] < end]


def bootstrap(stream: Stream, end: float) -> Trained:
    """The first version: a training on every example before ``end``, labels and all, as
    its Job would have reported it (no champion)."""
    trained = fit_rows(stream, np.arange(int(np.searchsorted(stream.time, end))), None, None)
    assert trained is not None, "no example before the first scored day"
    return trained


def train(
    stream: Stream,
    start: float,
    end: float,
    champion: Floats | None,
    failing_since: dict[int, float] | None = None,
) -> Trained | None:
    """One training Job on the data window [start, end); ``failing_since``: the failing
    slices' onsets (slice index -> seconds), as MODELLOOP_FAILING_SINCE gives them, or None:
    every slice on the whole window (the example trainer's ``--whole-window``). None when
    the window holds no labelled example (the Job fails)."""
    return fit_rows(stream, window(stream, start, end), champion, failing_since)


def fit_rows(
    stream: Stream, rows: Ints, champion: Floats | None, failing_since: dict[int, float] | None
) -> Trained | None:
    """What the example trainer does with the labelled examples it read: which to train
    on (``churn.training_rows``: a slice whose world changed, only since the change; all
    of them when ``failing_since`` is None) and to hold out (``churn.held_out``: each
    slice's latest fifth), the fit, and the report."""
    if len(rows) == 0:
        return None
    t, x, s, y = stream.time[rows], stream.x[rows], stream.slice[rows], stream.y[rows]
    right = correct(champion, x, s, y) if champion is not None else None
    keep = np.ones(len(rows), dtype=np.bool_)
    if right is not None and failing_since is not None:
        keep = training_rows(t, s, right, failing_since)
    held = held_out(t, s, keep)
    learn = keep & ~held
    weights = fit_slices(x[learn], s[learn], y[learn], len(stream.slices), champion)
    candidate, reference = [], []
    for i, name in enumerate(stream.slices):
        mine = held & (s == i)
        samples = int(mine.sum())
        if samples == 0:
            continue
        ours = correct(weights, x[mine], s[mine], y[mine])
        row = OfflineMetric(metric=METRIC, slice=name, value=float(ours.mean()), samples=samples)
        if right is not None:
            theirs = right[mine]
            reference.append(row.model_copy(update={"value": float(theirs.mean())}))
            pairs = PairedCounts(
                candidate_only=int((ours & ~theirs).sum()),
                champion_only=int((theirs & ~ours).sum()),
            )
            row = row.model_copy(update={"pairs": pairs})
        candidate.append(row)
    return Trained(weights, OfflineMetrics(candidate=candidate, champion=reference), len(rows))
