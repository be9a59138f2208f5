"""An example ModelLoop trainer: churn prediction on a synthetic stream whose concept
drifts over time, differently per slice (the mobile channel drifts faster).

It does what the contract asks: trains only on the data window it is given
(MODELLOOP_DATA_START..END), keeps the window's last 20% as held-out data, writes
the artifact below MODELLOOP_OUTPUT_URI (a local path here; a volume in a pod),
and reports AUC per slice for itself and for the champion (the base version's
artifact, MODELLOOP_BASE_URI) recomputed on the same held-out data.

    python examples/trainer/train.py --result-path /tmp/result.json
"""

import argparse
import json
import os
from datetime import datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from modelloop.sdk import TERMINATION_LOG, report

SLICES = ("mobile", "web")
DRIFT_PER_DAY = {"mobile": 0.02, "web": 0.002}  # radians the true boundary turns per day
EXAMPLES_PER_HOUR = 40
EPOCH = datetime(2026, 1, 1).timestamp()
Floats = NDArray[np.float64]


def stream(
    start: float, end: float, seed: int = 7
) -> tuple[Floats, Floats, NDArray[np.int_], Floats]:
    """(features, labels, slice index, timestamps) between two instants, reproducibly:
    each hour's examples come from a generator seeded by the hour."""
    xs, ys, ss, ts = [], [], [], []
    for hour in range(int(start // 3600), int(end // 3600) + 1):
        rng = np.random.default_rng([seed, hour])
        t = hour * 3600 + rng.uniform(0, 3600, EXAMPLES_PER_HOUR)
        s = rng.integers(0, len(SLICES), EXAMPLES_PER_HOUR)
        x = rng.normal(size=(EXAMPLES_PER_HOUR, 2))
        days = (t - EPOCH) / 86400
        angle = np.array([DRIFT_PER_DAY[SLICES[i]] for i in s]) * days
        logit = 3 * (np.cos(angle) * x[:, 0] + np.sin(angle) * x[:, 1])
        y = (rng.uniform(size=EXAMPLES_PER_HOUR) < 1 / (1 + np.exp(-logit))).astype(float)
        keep = (t >= start) & (t <= end)
        xs.append(x[keep]), ys.append(y[keep]), ss.append(s[keep]), ts.append(t[keep])
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(ss), np.concatenate(ts)


def design(x: Floats, s: NDArray[np.int_]) -> Floats:
    """Per-slice weights: each slice's features in its own columns, plus a bias each."""
    columns = []
    for i in range(len(SLICES)):
        mask = (s == i).astype(float)[:, None]
        columns += [x * mask, mask]
    return np.hstack(columns)


def fit(x: Floats, y: Floats, steps: int = 500, rate: float = 0.5) -> Floats:
    w = np.zeros(x.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-x @ w))
        w -= rate * x.T @ (p - y) / len(y)
    return w


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


def evaluate(w: Floats, x: Floats, y: Floats, s: NDArray[np.int_]) -> dict[tuple[str, str], float]:
    score = design(x, s) @ w
    return {("auc", name): auc(y[s == i], score[s == i]) for i, name in enumerate(SLICES)}


def instant(name: str) -> float:
    return datetime.fromisoformat(os.environ[name]).timestamp()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--result-path", default=TERMINATION_LOG)
    args = parser.parse_args()
    start, end = instant("MODELLOOP_DATA_START"), instant("MODELLOOP_DATA_END")
    x, y, s, t = stream(start, end)
    split = np.quantile(t, 0.8)
    train, held = t < split, t >= split
    w = fit(design(x[train], s[train]), y[train])

    output = Path(os.environ["MODELLOOP_OUTPUT_URI"].removeprefix("file://"))
    output.mkdir(parents=True, exist_ok=True)
    np.savez(output / "model.npz", weights=w)
    np.savez(output / "heldout.npz", x=x[held], y=y[held], s=s[held])
    candidate = evaluate(w, x[held], y[held], s[held])
    champion = None
    base = os.environ.get("MODELLOOP_BASE_URI", "").removeprefix("file://")
    if base:
        champion = evaluate(np.load(Path(base) / "model.npz")["weights"], x[held], y[held], s[held])
    report(
        f"file://{output}",
        candidate,
        champion,
        path=args.result_path,
        samples={("auc", name): int((s[held] == i).sum()) for i, name in enumerate(SLICES)},
    )
    print(
        json.dumps(
            {
                "candidate": {k[1]: v for k, v in candidate.items()},
                "champion": {k[1]: v for k, v in (champion or {}).items()},
            }
        )
    )


if __name__ == "__main__":
    main()
