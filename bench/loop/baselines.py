"""The baselines: a plain schedule, no ModelLoop decision. Every ``every`` days, at the
start of the day, the same trainer trains on the same data window a Job would get, and
its model serves at once — no trigger, no guard, no offline gate, no canary."""

import numpy as np

from .ledger import Ledger, Run, Training
from .streams import DAY, Stream
from .trainer import bootstrap, train

BASELINES: tuple[tuple[str, int | None], ...] = (
    ("never", None),
    ("every 30d", 30),
    ("every 7d", 7),
    ("every day", 1),
)


def run_baseline(
    stream: Stream, name: str, every: int | None, warmup: int, data_window: float, seed: int
) -> Run:
    """``data_window`` in seconds; days before ``warmup`` train the first version."""
    ledger = Ledger(stream, seed)
    weights = bootstrap(stream, warmup * DAY).weights
    trainings: list[Training] = []
    daily = []
    for day in range(warmup, stream.days):
        now, scored = day * DAY, day - warmup
        if every is not None and scored > 0 and scored % every == 0:
            trained = train(stream, now - data_window, now, weights)
            trainings.append(Training(scored, "failed" if trained is None else "deployed"))
            if trained is not None:
                weights = trained.weights
        ledger.serve(now, now + DAY, (0, weights))
        daily.append(ledger.day(day))
    accuracy, worst = (np.array(column) for column in zip(*daily, strict=True))
    return Run(name, True, accuracy, worst, tuple(trainings))
