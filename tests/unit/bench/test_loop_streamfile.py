"""The stream file format (bench/loop/streamfile.py): what is written is read back as it
was, and a user's history without label times gets them from the lag."""

from pathlib import Path

import numpy as np
import pytest
from bench.loop.streamfile import StreamFileError, read_stream, write_stream
from bench.loop.streams import DAY, START, generate


def test_a_generated_stream_travels_through_its_file_unchanged(tmp_path: Path) -> None:
    stream = generate("mixed", 3, 5, 2, 40, 2)
    path = tmp_path / "mixed.csv"
    write_stream(stream, path)
    read = read_stream(path, lag=9)  # the file's label times win over the lag
    assert read.same(stream)
    assert (read.name, read.lag) == ("mixed", None)


def test_a_history_without_label_times_gets_them_from_the_lag(tmp_path: Path) -> None:
    path = tmp_path / "history.csv"
    path.write_text(
        "time,slice,label,tenure,spend\n"
        "2026-03-02T10:00:00+01:00,eu,1,0.5,12\n"
        "2026-03-01T23:30:00,us,0,1.5,3\n"
    )
    stream = read_stream(path, lag=3)
    assert stream.start == START.replace(month=3)
    assert (stream.slices, stream.features, stream.lag) == (("eu", "us"), ("tenure", "spend"), 3)
    assert stream.time.tolist() == [23.5 * 3600, DAY + 9 * 3600]  # in time order, in UTC
    assert stream.slice.tolist() == [1, 0]
    assert np.array_equal(stream.x, [[1.5, 3.0], [0.5, 12.0]])
    assert np.array_equal(stream.label_time, stream.time + 3 * DAY)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("time,label,x\n2026-01-01T00:00:00Z,1,0\n", "no column slice"),
        ("time,slice,label\n2026-01-01T00:00:00Z,a,1\n", "no feature column"),
        ("time,slice,label,x\nyesterday,a,1,0\n", "not an ISO 8601 time"),
        ("time,slice,label,x\n2026-01-01T00:00:00Z,a,2,0\n", "not 0 or 1"),
        (
            "time,slice,label,label_time,x\n2026-01-02T00:00:00Z,a,1,2026-01-01T00:00:00Z,0\n",
            "arrives before the prediction",
        ),
    ],
)
def test_a_malformed_file_says_where(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(StreamFileError, match=error):
        read_stream(path, lag=1)
