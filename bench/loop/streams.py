"""Drifting streams of labelled examples, three slices, one day at a time.

Modelled on the churn example (examples/trainer/churn.py): two features drawn from a
standard normal, a label drawn from a logistic truth ``sharpness * (cos a * x1 + sin a * x2)``
whose boundary angle ``a`` has a course of its own per slice. The drift kinds say how the
angles move:

- gradual: the boundaries of mobile and web turn slowly (0.02 and 0.008 rad a day);
- abrupt: web's boundary jumps by 2.5 rad a third of the way into the scored days;
- recurring: store alternates between two concepts 1.2 rad apart every 30 days (seasonal);
- mixed: mobile turns (0.01 rad a day), web jumps by 2.0 rad halfway, store alternates
  every 45 days (1.0 rad).

A slice a kind does not name keeps its boundary. Each day is drawn from a generator
seeded by (seed, day), so a stream is the same for a seed whatever its length, and the
kinds share their features and times. Labels arrive ``lag`` days after the prediction.
"""

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]

DAY = 86400.0  # seconds
START = datetime(2026, 1, 1, tzinfo=UTC)  # day 0 of a generated stream
SLICES = ("mobile", "store", "web")  # sorted: the order a stream file is read back in
FEATURES = ("x1", "x2")
SHARPNESS = 4.0  # the truth's logit scale: the best accuracy is about 0.87
BASE_ANGLES = {"mobile": 0.0, "store": -0.8, "web": 1.0}  # each slice its own boundary
KINDS = ("gradual", "abrupt", "recurring", "mixed")


@dataclass(frozen=True)
class Jump:
    """At ``day`` the boundary turns by ``angle`` radians, at once."""

    day: float
    angle: float


@dataclass(frozen=True)
class Season:
    """The boundary is ``angle`` radians off during every other ``period`` days."""

    period: float
    angle: float


@dataclass(frozen=True)
class SliceConcept:
    """The course of one slice's boundary angle (radians) over the days."""

    base: float = 0.0
    per_day: float = 0.0
    jumps: tuple[Jump, ...] = ()
    season: Season | None = None

    @property
    def drifts(self) -> bool:
        return self.per_day != 0 or bool(self.jumps) or self.season is not None

    def angle(self, day: Floats) -> Floats:
        """The boundary's angle at each (fractional) day since the stream's start."""
        angle = self.base + self.per_day * day
        for jump in self.jumps:
            angle = angle + np.where(day >= jump.day, jump.angle, 0.0)
        if self.season is not None:
            odd = np.floor_divide(day, self.season.period) % 2 == 1
            angle = angle + np.where(odd, self.season.angle, 0.0)
        return np.asarray(angle, dtype=np.float64)


@dataclass(frozen=True)
class Concept:
    """The truth of every slice, in the order of ``SLICES``."""

    slices: dict[str, SliceConcept]
    sharpness: float = SHARPNESS


def drift_concept(kind: str, days: int, warmup: int) -> Concept:
    """The concept of a drift kind over ``warmup`` unscored days then ``days`` scored ones."""

    def slices(**drifting: SliceConcept) -> Concept:
        return Concept(
            {
                name: replace(drifting.get(name, SliceConcept()), base=BASE_ANGLES[name])
                for name in SLICES
            }
        )

    if kind == "gradual":
        return slices(mobile=SliceConcept(per_day=0.02), web=SliceConcept(per_day=0.008))
    if kind == "abrupt":
        return slices(web=SliceConcept(jumps=(Jump(warmup + days // 3, 2.5),)))
    if kind == "recurring":
        return slices(store=SliceConcept(season=Season(30, 1.2)))
    if kind == "mixed":
        return slices(
            mobile=SliceConcept(per_day=0.01),
            web=SliceConcept(jumps=(Jump(warmup + days // 2, 2.0),)),
            store=SliceConcept(season=Season(45, 1.0)),
        )
    raise ValueError(f"unknown drift kind {kind!r}: one of {', '.join(KINDS)}")


@dataclass(frozen=True)
class Stream:
    """Labelled examples in time order. Times are seconds since ``start`` (a UTC midnight:
    day d is [d * DAY, (d + 1) * DAY)); ``label_time`` is when each label arrives."""

    name: str
    start: datetime
    slices: tuple[str, ...]
    features: tuple[str, ...]
    time: Floats
    slice: Ints  # index into slices
    x: Floats  # (examples, features)
    y: Floats  # 0 or 1
    label_time: Floats
    lag: float | None = None  # days between prediction and label; None: the data says
    concept: Concept | None = field(default=None, compare=False)  # a generated stream's truth

    @property
    def days(self) -> int:
        return int(self.time[-1] // DAY) + 1 if len(self.time) else 0

    def same(self, other: "Stream") -> bool:
        """The same examples, slices, features and label times."""
        arrays = ("time", "slice", "x", "y", "label_time")
        return (self.start, self.slices, self.features) == (
            other.start,
            other.slices,
            other.features,
        ) and all(np.array_equal(getattr(self, a), getattr(other, a)) for a in arrays)


def with_lag(stream: Stream, lag: float) -> Stream:
    """Labels that arrive ``lag`` days after their prediction."""
    return replace(stream, label_time=stream.time + lag * DAY, lag=lag)


def generate(
    kind: str, seed: int, days: int, warmup: int, volume: int, lag: float, name: str | None = None
) -> Stream:
    """``warmup + days`` days of ``volume`` examples per slice per day."""
    truth = drift_concept(kind, days, warmup)
    times, slices, xs, ys = [], [], [], []
    for day in range(warmup + days):
        rng = np.random.default_rng([seed, day])
        for index, name_ in enumerate(SLICES):
            t = day * DAY + rng.integers(0, int(DAY), volume).astype(np.float64)
            x = rng.normal(size=(volume, len(FEATURES)))
            angle = truth.slices[name_].angle(t / DAY)
            logit = truth.sharpness * (np.cos(angle) * x[:, 0] + np.sin(angle) * x[:, 1])
            y = (rng.uniform(size=volume) < 1 / (1 + np.exp(-logit))).astype(np.float64)
            times.append(t)
            slices.append(np.full(volume, index, dtype=np.int64))
            xs.append(x)
            ys.append(y)
    time = np.concatenate(times)
    order = np.argsort(time, kind="stable")
    stream = Stream(
        name=name or kind,
        start=START,
        slices=SLICES,
        features=FEATURES,
        time=time[order],
        slice=np.concatenate(slices)[order],
        x=np.concatenate(xs)[order],
        y=np.concatenate(ys)[order],
        label_time=time[order],
        concept=truth,
    )
    return with_lag(stream, lag)
