"""What served each example and whether it was right, and the figures of a run.

The ledger plays the feedback service and Prometheus: a labelled outcome is counted,
per version and slice, when its label arrives, so a metric's window reads the labels
that arrived in it — predictions ``lag`` days older.
"""

from dataclasses import dataclass
from typing import Literal

import numpy as np

from .streams import DAY, Floats, Ints, Stream
from .trainer import correct

Outcome = Literal["deployed", "promoted", "rejected", "rolledBack", "failed", "pending"]


@dataclass
class Training:
    day: int  # the scored day it started on (0: the first scored day)
    outcome: Outcome


@dataclass(frozen=True)
class Run:
    """One policy or baseline over one stream: per scored day, the accuracy of what
    served (all slices, and the worst slice), and its trainings."""

    policy: str
    baseline: bool
    accuracy: Floats
    worst: Floats
    trainings: tuple[Training, ...]

    def count(self, *outcomes: Outcome) -> int:
        return sum(1 for t in self.trainings if t.outcome in outcomes)

    def figures(self) -> dict[str, float | int | str | bool]:
        return {
            "policy": self.policy,
            "baseline": self.baseline,
            "accuracy": float(self.accuracy.mean()),
            "worstSlice": float(self.worst.mean()),
            "trainings": len(self.trainings),
            "rejected": self.count("rejected"),
            "rolledBack": self.count("rolledBack"),
            "promoted": self.count("promoted"),
            "failed": self.count("failed"),
        }


class Ledger:
    def __init__(self, stream: Stream, seed: int) -> None:
        self.stream = stream
        self.version = np.full(len(stream.time), -1, dtype=np.int64)
        self.correct = np.zeros(len(stream.time), dtype=np.bool_)
        # Which examples a canary at a given weight serves: those drawn below it.
        self.draw = np.random.default_rng([seed, 1]).uniform(size=len(stream.time))
        self.by_arrival = np.argsort(stream.label_time, kind="stable")
        self.arrivals = stream.label_time[self.by_arrival]

    def serve(
        self,
        start: float,
        end: float,
        stable: tuple[int, Floats],
        canary: tuple[int, Floats] | None = None,
        weight: int = 0,
    ) -> None:
        """The predictions made in [start, end): the canary's share at ``weight`` percent."""
        s = self.stream
        lo, hi = (int(i) for i in np.searchsorted(s.time, [start, end]))
        to_canary = self.draw[lo:hi] < weight / 100
        for served, mine in ((stable, ~to_canary), (canary, to_canary)):
            if served is None or not mine.any():
                continue
            rows = np.arange(lo, hi)[mine]
            self.version[rows] = served[0]
            self.correct[rows] = correct(served[1], s.x[rows], s.slice[rows], s.y[rows])

    def outcomes(self, since: float, until: float, versions: int) -> tuple[Ints, Ints]:
        """(correct, total) per version and slice of the labels that arrived in [since, until)."""
        lo, hi = np.searchsorted(self.arrivals, [since, until])
        rows = self.by_arrival[lo:hi]
        rows = rows[self.version[rows] >= 0]
        cell = self.version[rows] * len(self.stream.slices) + self.stream.slice[rows]
        shape = (versions, len(self.stream.slices))
        size = versions * len(self.stream.slices)
        right = np.bincount(cell, weights=self.correct[rows], minlength=size)
        total = np.bincount(cell, minlength=size)
        return right.astype(np.int64).reshape(shape), total.astype(np.int64).reshape(shape)

    def day(self, day: int) -> tuple[float, float]:
        """The accuracy of what served on ``day``: all slices, and the worst slice."""
        lo, hi = np.searchsorted(self.stream.time, [day * DAY, (day + 1) * DAY])
        right, s = self.correct[lo:hi], self.stream.slice[lo:hi]
        per_slice = [right[s == i].mean() for i in range(len(self.stream.slices)) if (s == i).any()]
        return float(right.mean()), float(min(per_slice))
