from datetime import timedelta

import pytest

from modelloop.api.durations import Within, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("15m", timedelta(minutes=15)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
        ("1y", timedelta(days=365)),
        ("250ms", timedelta(milliseconds=250)),
        ("1m30s500ms", timedelta(minutes=1, seconds=30, milliseconds=500)),
    ],
)
def test_prometheus_durations_parse(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "5", "5 minutes", "1.5h", "30m1h", "-5m", "5M", "P1D"])
def test_other_syntaxes_are_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="Prometheus syntax"):
        parse_duration(text)


def test_a_duration_too_long_for_timedelta_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="too long"):
        parse_duration("99999999999999999999y")


@pytest.mark.parametrize(
    ("low", "high", "text", "inside"),
    [
        ("5s", "1h", "5s", True),
        ("5s", "1h", "4s999ms", False),
        ("5s", "1h", "59m60s", True),  # parts need not be normalised
        ("5s", "1h", "1h1ms", False),
        ("5s", "1h", "3600000ms", True),
        ("0s", "30d", "0s", True),
        ("0s", "30d", "4w2d", True),
        ("0s", "30d", "4w2d1ms", False),
        ("1m", "5y", "5y", True),
        ("1m", "5y", "260w", True),
        ("1m", "5y", "99999999999999999999999y", False),
    ],
)
def test_within_bounds(low: str, high: str, text: str, inside: bool) -> None:
    assert Within(low, high).check(text) is inside


@pytest.mark.parametrize(
    ("low", "high", "message"),
    [
        ("5s", "1h", "must be a duration from 5s to 1h"),
        ("0s", "7d", "must be a duration of at most 7d"),
    ],
)
def test_within_names_its_bounds(low: str, high: str, message: str) -> None:
    assert Within(low, high).message == message
