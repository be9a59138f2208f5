"""A stream as a CSV file, so a user can replay their own history (docs/bench-loop.md).

One row per labelled example, with a header:

    time,slice,label,label_time,x1,x2
    2026-01-01T00:00:07Z,web,1,2026-01-02T00:00:07Z,0.1234,-1.5

- ``time``: when the prediction was made, ISO 8601 (a time without an offset is UTC);
- ``slice``: the slice's name (a DNS label: it becomes a slice of the Model);
- ``label``: the outcome, 0 or 1;
- ``label_time`` (optional): when the label arrived; without the column, labels arrive
  ``lag`` days after their prediction;
- every other column is a numeric feature, in the header's order.

Day 0 is the UTC date of the earliest ``time``; slices are ordered by name.
"""

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from .streams import DAY, Stream

REQUIRED = ("time", "slice", "label")
LABEL_TIME = "label_time"


class StreamFileError(ValueError):
    pass


def _iso(start: datetime, seconds: float) -> str:
    return (start + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def _instant(text: str, where: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise StreamFileError(f"{where}: {text!r} is not an ISO 8601 time") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def write_stream(stream: Stream, path: Path) -> None:
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow([*REQUIRED, LABEL_TIME, *stream.features])
        for i in range(len(stream.time)):
            writer.writerow(
                [
                    _iso(stream.start, float(stream.time[i])),
                    stream.slices[int(stream.slice[i])],
                    int(stream.y[i]),
                    _iso(stream.start, float(stream.label_time[i])),
                    *(repr(float(v)) for v in stream.x[i]),
                ]
            )


def read_stream(path: Path, lag: float) -> Stream:
    """The stream in ``path``; ``lag`` (days) gives the label times when it has none."""
    with path.open(newline="") as source:
        reader = csv.reader(source)
        header = next(reader, None)
        if header is None:
            raise StreamFileError(f"{path}: empty file")
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise StreamFileError(f"{path}: no column {', '.join(missing)}")
        column = {name: i for i, name in enumerate(header)}
        features = tuple(c for c in header if c not in (*REQUIRED, LABEL_TIME))
        if not features:
            raise StreamFileError(f"{path}: no feature column")
        times, label_times, names, labels, rows = [], [], [], [], []
        for line, row in enumerate(reader, start=2):
            where = f"{path}:{line}"
            times.append(_instant(row[column["time"]], where))
            if LABEL_TIME in column:
                label_times.append(_instant(row[column[LABEL_TIME]], where))
            names.append(row[column["slice"]])
            try:
                labels.append(float(row[column["label"]]))
                rows.append([float(row[column[f]]) for f in features])
            except ValueError as error:
                raise StreamFileError(f"{where}: {error}") from None
            if labels[-1] not in (0.0, 1.0):
                raise StreamFileError(f"{where}: label {row[column['label']]!r} is not 0 or 1")
    if not times:
        raise StreamFileError(f"{path}: no examples")
    first = min(times)
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)

    def seconds(moments: list[datetime]) -> np.ndarray:
        return np.array([(m - start).total_seconds() for m in moments], dtype=np.float64)

    time = seconds(times)
    order = np.argsort(time, kind="stable")
    slices = tuple(sorted(set(names)))
    index = {name: i for i, name in enumerate(slices)}
    label_time = seconds(label_times) if label_times else time + lag * DAY
    early = np.flatnonzero(label_time < time)
    if len(early):
        raise StreamFileError(f"{path}:{early[0] + 2}: the label arrives before the prediction")
    return Stream(
        name=path.stem,
        start=start,
        slices=slices,
        features=features,
        time=time[order],
        slice=np.array([index[n] for n in names], dtype=np.int64)[order],
        x=np.array(rows, dtype=np.float64)[order],
        y=np.array(labels, dtype=np.float64)[order],
        label_time=label_time[order],
        lag=None if label_times else lag,
    )
