"""Fan Prometheus' answers back out to the series that asked. No I/O."""

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from .drift import Histogram, from_cumulative, parse_le
from .plan import ModelKey, Plan, Request, SeriesKey, Slot
from .promql import TAGS, Sample, split
from .verdicts import Observation

Found = Sequence[Sample] | str  # the samples answering one role, or why there are none
NONE: tuple[Sample, ...] = ()  # no samples: shared, never changed


@dataclass(frozen=True)
class Answer:
    """What one request returned: the instant vector, or why there is none."""

    result: list[dict[str, Any]] | None = None
    error: str | None = None


@dataclass(frozen=True)
class DriftReading:
    current: Histogram | None
    reference: Histogram | None
    error: str | None = None


@dataclass
class Readings:
    """Everything observed about one Model in one cycle."""

    metrics: dict[SeriesKey, Observation] = field(default_factory=dict)
    drift: dict[SeriesKey, DriftReading] = field(default_factory=dict)


def read(plan: Plan, answers: Iterable[Answer]) -> dict[ModelKey, Readings]:
    """The i-th answer answers ``plan.requests[i]``. Each is read once, in turn, and
    taken: its label dicts become the samples' own (``split``), and nothing here holds
    on to the rest once its samples are picked. A series' roles are all answered by one
    request (its slot names their parts)."""
    readings: dict[ModelKey, Readings] = {}
    for request, answer in zip(plan.requests, answers, strict=True):
        for slot, roles in _slot_answers(request, answer):
            entry = readings.get(slot.model)
            if entry is None:  # not setdefault: one Readings per Model, not per series
                entry = readings[slot.model] = Readings()
            if slot.series.kind == "metric":
                entry.metrics[slot.series] = _observation(roles)
            else:
                entry.drift[slot.series] = _drift(roles)
    for problem in plan.problems:
        entry = readings.setdefault(problem.model, Readings())
        if problem.series.kind == "metric":
            entry.metrics[problem.series] = Observation(None, None, problem.reason)
        else:
            entry.drift[problem.series] = DriftReading(None, None, problem.reason)
    return readings


def _slot_answers(request: Request, answer: Answer) -> Iterator[tuple[Slot, dict[str, Found]]]:
    """Each slot of ``request`` with what the answer holds for each of its roles."""
    if answer.result is None:
        error = answer.error or "no answer"
        for slot in request.slots:
            yield slot, {role: error for role, _ in slot.parts}
        return
    parts = split(answer.result, TAGS)
    # A shared answer holds the series of many Models: index it once per label set,
    # so picking each slot's series costs a lookup, not a scan. This runs for every
    # series of every Model each cycle: the slot's selection is keyed as the index is.
    indexes: dict[tuple[str, tuple[str, ...]], dict[tuple[str, ...], list[Sample]]] = {}
    for slot in request.slots:
        select = slot.select
        roles: dict[str, Found] = {}
        for role, part in slot.parts:
            if select is None:
                roles[role] = parts.get((part,), NONE)
                continue
            index = indexes.get((part, select.labels))
            if index is None:
                index = indexes[(part, select.labels)] = _index(
                    parts.get((part,), NONE), select.labels
                )
            roles[role] = index.get(select.values, NONE)
        yield slot, roles


def _index(
    samples: Sequence[Sample], labels: tuple[str, ...]
) -> dict[tuple[str, ...], list[Sample]]:
    """The samples by their values of ``labels`` (sorted names); a sample without one of
    them matches no selection and is left out. The hottest loop of a cycle at thousands
    of Models: one C-level pick of the values per sample."""
    if not labels:
        return {(): list(samples)}
    index: defaultdict[tuple[str, ...], list[Sample]] = defaultdict(list)
    pick = itemgetter(*labels)
    one = len(labels) == 1  # itemgetter of one name gives the value, not a tuple
    for sample in samples:
        try:
            values = pick(sample.labels)
        except KeyError:
            continue
        index[(values,) if one else values].append(sample)
    return index


def _single(found: Found | None, what: str) -> tuple[float | None, str | None]:
    if found is None:
        return None, None
    if isinstance(found, str):
        return None, found
    if not found:
        return None, f"the {what} query returned no series"
    if len(found) > 1:
        return None, f"the {what} query returned {len(found)} series, expected one"
    return found[0].value, None


def _observation(roles: dict[str, Found]) -> Observation:
    # The coverage travels with every outcome: immature labels explain a missing value.
    coverage, _ = _single(roles.get("coverage"), "coverage")
    value, error = _single(roles.get("value"), "value")
    if error is not None:
        return Observation(None, None, error, coverage)
    samples, samples_error = _single(roles.get("samples"), "sample-count")
    if samples_error is not None and "samples" in roles:
        return Observation(value, None, samples_error, coverage)
    return Observation(value, samples, coverage=coverage)


def _histogram(found: Found | None) -> tuple[Histogram | None, str | None]:
    if found is None:
        return None, "not asked"
    if isinstance(found, str):
        return None, found
    buckets: dict[float, float] = {}
    for sample in found:
        le = sample.labels.get("le")
        if le is None:
            return None, "a bucket series without an le label"
        try:
            bound = parse_le(le)
        except ValueError:
            return None, f"a bucket series with the le label {le!r}"
        buckets[bound] = buckets.get(bound, 0.0) + sample.value
    return from_cumulative(buckets), None


def _drift(roles: dict[str, Found]) -> DriftReading:
    current, error = _histogram(roles.get("current"))
    reference, reference_error = _histogram(roles.get("reference"))
    return DriftReading(current, reference, error or reference_error)
