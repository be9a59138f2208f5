"""The join store's contract: predictions wait for their labels (and labels that come
first wait for their predictions) until the horizon; each pair is joined exactly once,
whatever the number of service replicas sharing the store, and survives a restart.

Implementations: ``sqlite`` (embedded, one replica) and ``redis`` (Redis/Valkey, shared
by stateless replicas).
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from .records import Joined, Label, Prediction


@dataclass
class Stored:
    """What one batch did to the store."""

    joined: list[Joined] = field(default_factory=list)  # pairs completed by this batch
    waiting: int = 0  # records stored to wait for their other half
    duplicates: int = 0  # ids already stored or already joined: ignored, counted
    refused: int = 0  # beyond the store's capacity: not stored, counted
    # add_predictions: the predictions among ``waiting`` (with those in ``joined``, the
    # batch's new predictions: the service counts them, and never a duplicate)
    waiting_predictions: list[Prediction] = field(default_factory=list)


@dataclass
class Expired:
    """Records dropped at the horizon without their other half, by one ``expire`` call."""

    predictions: list[Prediction] = field(default_factory=list)
    labels: int = 0
    more: bool = False  # records past the horizon remain beyond the call's limit: call again


@dataclass(frozen=True)
class Pending:
    predictions: int
    labels: int


class JoinStore(Protocol):
    def add_predictions(self, predictions: Sequence[Prediction], now: float) -> Stored: ...

    def add_labels(self, labels: Sequence[Label], now: float) -> Stored: ...

    def expire(self, now: float, limit: int) -> Expired:
        """Drop what waited longer than the horizon (by arrival time): at most ``limit``
        records of each kind, in no promised order, so that one call holds at most
        ``limit`` predictions in memory and the store no longer than it takes to drop
        them. The caller calls again while ``more`` says records past the horizon
        remain."""
        ...

    def pending(self) -> Pending: ...

    def close(self) -> None: ...
