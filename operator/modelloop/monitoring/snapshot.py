"""What one evaluation cycle of a Model saw: the evaluator's output, read by the canary."""

from dataclasses import dataclass
from datetime import datetime

from .evaluate import Evaluated


@dataclass(frozen=True)
class Snapshot:
    """The live values of one evaluation cycle of a Model (kept in memory by the evaluator)."""

    time: datetime
    evaluated: tuple[Evaluated, ...]
