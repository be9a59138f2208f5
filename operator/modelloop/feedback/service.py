"""The feedback service without its HTTP: batches in (and the events of KServe's
inference logger, paired into predictions by ``kserve.KServePairer``), the store's joins
counted per series, /metrics out. One caller at a time (the server runs every call on
one thread, after the one before), so the counts and the pairer need no lock.

A batch is valid as a whole or refused as a whole (``Rejected``, nothing stored): a
client fixes it and sends it again. Sending an accepted batch again is harmless: its
records are duplicates, counted once.
"""

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import chain

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import ValidationError

from .config import Settings
from .kserve import Drop, KServePairer, Reject, Rejection
from .metrics import PREFIX, FeedbackCollector, ServiceCounts, registry, render
from .outcomes import Scoring, SeriesTotals, Slicer, Totals, Unscorable, score
from .records import Joined, Label, Prediction, Record
from .store import JoinStore, Stored

MAX_ERRORS = 20  # field errors reported per refused batch
EXPIRE_STEP = 1000  # records of each kind one step of the expiry drops


class PredictionBatch(Record):
    predictions: list[Prediction]


class LabelBatch(Record):
    labels: list[Label]


class Kind(StrEnum):
    PREDICTION = "prediction"
    LABEL = "label"


KSERVE = "kserve"  # the kind of a request of KServe's logger, in the service's counts


class Refusal(StrEnum):
    """Why a whole request is refused."""

    TOO_LARGE = "too_large"
    NOT_JSON = "not_json"
    INVALID = "invalid"


class Skipped(StrEnum):
    """Why a record of an accepted batch counts nowhere (besides Unscorable)."""

    DUPLICATE = "duplicate"
    CAPACITY = "capacity"  # the store is full: send it again later


# The reasons a record of each kind is refused.
_REFUSALS: dict[Kind, tuple[str, ...]] = {
    Kind.PREDICTION: (*Skipped, Unscorable.SERIES_LIMIT),
    Kind.LABEL: (*Skipped, *Unscorable),
}


@dataclass(frozen=True)
class FieldError:
    field: str  # e.g. predictions.3.score
    message: str
    type: str


@dataclass(frozen=True)
class Rejected:
    reason: Refusal
    errors: list[FieldError] = field(default_factory=list)


@dataclass(frozen=True)
class Accepted:
    received: int
    joined: int
    waiting: int
    # records not counted, by reason (Skipped, Unscorable)
    skipped: dict[str, int] = field(default_factory=dict)


def field_errors(error: ValidationError) -> list[FieldError]:
    return [
        FieldError(".".join(str(part) for part in e["loc"]), e["msg"], e["type"])
        for e in error.errors(include_url=False)[:MAX_ERRORS]
    ]


class Feedback:
    def __init__(self, settings: Settings, store: JoinStore) -> None:
        self.store = store
        self.slicer = Slicer(settings.slice_attributes())
        self.totals = Totals(settings.max_series)
        self.counts = ServiceCounts()
        for kind, reasons in _REFUSALS.items():  # every series from the start, at 0
            self.counts.refused.update(dict.fromkeys(((kind, r) for r in reasons), 0))
            self.counts.bad_requests.update(dict.fromkeys(((kind, r) for r in Refusal), 0))
        self.counts.abandoned.update(dict.fromkeys((*Kind, KSERVE), 0))
        self._default = settings.scoring("")
        self._scorings = {model: settings.scoring(model) for model in settings.models}
        self.registry = registry(
            FeedbackCollector(self.slicer.names, self.totals, self.counts, store.pending)
        )
        self.pairer = KServePairer(settings.kserve.config())
        self.events_rejected: Counter[Reject] = Counter(dict.fromkeys(Reject, 0))
        self.registry.register(KServeCollector(self.pairer, self.events_rejected))
        self._max_body_bytes = settings.max_body_bytes

    def _scoring(self, model: str) -> Scoring:
        return self._scorings.get(model, self._default)

    def _rejected(self, kind: Kind, error: ValidationError) -> Rejected:
        errors = field_errors(error)
        reason = (
            Refusal.NOT_JSON if any(e.type == "json_invalid" for e in errors) else Refusal.INVALID
        )
        return self.refuse(kind, reason, errors)

    def refuse(
        self, kind: Kind, reason: Refusal, errors: list[FieldError] | None = None
    ) -> Rejected:
        self.counts.bad_requests[kind, reason] += 1
        return Rejected(reason, errors or [])

    def abandon(self, kind: str) -> None:
        """A request whose sender hung up before its body arrived (its timeout ran out
        while the request waited for its turn to be read): nothing in it is taken."""
        self.counts.abandoned[kind] += 1

    def add_predictions(self, body: bytes, now: float) -> Accepted | Rejected:
        try:
            batch = PredictionBatch.model_validate_json(body)
        except ValidationError as error:
            return self._rejected(Kind.PREDICTION, error)
        return self.take_predictions(batch.predictions, now)

    def take_predictions(self, predictions: Sequence[Prediction], now: float) -> Accepted:
        """Predictions valid already (another adapter's: KServe's events)."""
        skipped: Counter[str] = Counter()
        admitted: list[Prediction] = []
        series_of: dict[str, tuple[SeriesTotals, tuple[str, ...]]] = {}
        for prediction in predictions:
            values, overflowed = self.slicer.values(prediction.attributes)
            key = (prediction.model, prediction.version, *values)
            series = self.totals.get(key, self._scoring(prediction.model).task)
            if series is None:
                skipped[Unscorable.SERIES_LIMIT] += 1
                continue
            admitted.append(prediction)
            series_of.setdefault(prediction.id, (series, overflowed))
        stored = self.store.add_predictions(admitted, now)
        new = chain(stored.waiting_predictions, (pair.prediction for pair in stored.joined))
        for prediction in new:
            series, overflowed = series_of[prediction.id]
            series.predicted(prediction.score, self._scoring(prediction.model).threshold)
            for attribute in overflowed:
                self.counts.other_values[attribute] += 1
        skipped[Skipped.DUPLICATE] += stored.duplicates
        skipped[Skipped.CAPACITY] += stored.refused
        return self._accepted(Kind.PREDICTION, len(predictions), stored, skipped)

    def add_labels(self, body: bytes, now: float) -> Accepted | Rejected:
        try:
            batch = LabelBatch.model_validate_json(body)
        except ValidationError as error:
            return self._rejected(Kind.LABEL, error)
        stored = self.store.add_labels(batch.labels, now)
        skipped: Counter[str] = Counter(
            {Skipped.DUPLICATE: stored.duplicates, Skipped.CAPACITY: stored.refused}
        )
        return self._accepted(Kind.LABEL, len(batch.labels), stored, skipped)

    def _accepted(
        self, kind: Kind, received: int, stored: Stored, skipped: Counter[str]
    ) -> Accepted:
        """Counts the batch's skipped records and its pairs."""
        for reason, n in skipped.items():
            self.counts.refused[kind, reason] += n
        skipped.update(self._count(stored.joined))
        return Accepted(received, len(stored.joined), stored.waiting, dict(+skipped))

    def _count(self, pairs: Iterable[Joined]) -> Counter[str]:
        """Adds each pair's outcome to its series; the pairs counted nowhere are refused
        labels (their prediction is counted already), returned by reason."""
        unscored: Counter[str] = Counter()
        for pair in pairs:
            prediction = pair.prediction
            scoring = self._scoring(prediction.model)
            scored = score(pair, scoring)
            if isinstance(scored, Unscorable):
                unscored[scored] += 1
                continue
            values, _ = self.slicer.values(prediction.attributes)
            series = self.totals.get((prediction.model, prediction.version, *values), scoring.task)
            if series is None:
                unscored[Unscorable.SERIES_LIMIT] += 1
                continue
            series.add(scored)
        for reason, n in unscored.items():
            self.counts.refused[Kind.LABEL, reason] += n
        return unscored

    def add_event(
        self, headers: Mapping[str, str], body: bytes, now: float
    ) -> Accepted | Rejection:
        """One event of KServe's logger: the predictions it completes with the event of
        the same ``ce-id`` waiting in the pairer (none while its other half is missing),
        taken as a batch of predictions."""
        made = self.pairer.add(headers, body, now)
        if isinstance(made, Rejection):
            self.events_rejected[made.reason] += 1
            return made
        return self.take_predictions(made, now)

    def refuse_event(self, size: int | None) -> Rejection:
        """An event whose body is beyond ``maxBodyBytes`` (its size, when it said)."""
        self.events_rejected[Reject.TOO_LARGE] += 1
        return Rejection(Reject.TOO_LARGE, "content-length", self._max_body_bytes, size)

    def expire(self, now: float, limit: int = EXPIRE_STEP) -> bool:
        """One step of the expiry, at most ``limit`` records of each kind dropped (and
        held in memory): whether records past the horizon remain (call again)."""
        self.pairer.expire(now)
        expired = self.store.expire(now, limit)
        self.counts.expired[Kind.PREDICTION] += len(expired.predictions)
        self.counts.expired[Kind.LABEL] += expired.labels
        return expired.more

    def metrics(self) -> bytes:
        return render(self.registry)


class KServeCollector(Collector):
    """The KServe adapter's counts, beside the service's (metrics.FeedbackCollector)."""

    def __init__(self, pairer: KServePairer, rejected: Counter[Reject]) -> None:
        self.pairer = pairer
        self.rejected = rejected

    def collect(self) -> Iterator[Metric]:
        rejected = CounterMetricFamily(
            PREFIX + "kserve_rejected",
            "KServe logger events refused (HTTP 4xx), by reason.",
            labels=["reason"],
        )
        for reason in Reject:
            rejected.add_metric([reason.value], self.rejected[reason])
        dropped = CounterMetricFamily(
            PREFIX + "kserve_dropped",
            "KServe request or response events let go without their other half: Expired "
            "(after kserve.maxAge), Evicted (the oldest, to make room).",
            labels=["reason"],
        )
        for why in Drop:
            dropped.add_metric([why.value], self.pairer.dropped[why])
        pending = GaugeMetricFamily(
            PREFIX + "kserve_pending", "KServe events waiting for their other half."
        )
        pending.add_metric([], self.pairer.pending)
        yield from (rejected, dropped, pending)
