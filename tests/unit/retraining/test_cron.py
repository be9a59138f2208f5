"""Cron schedules: the previous fire time, on a table of cases."""

from datetime import UTC, datetime

import pytest

from modelloop.retraining.cron import CronError, previous_fire

NOW = datetime(2026, 11, 25, 12, 34, 56, tzinfo=UTC)  # a Wednesday


def at(month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("* * * * *", at(11, 25, 12, 34)),
        ("*/15 * * * *", at(11, 25, 12, 30)),
        ("0 3 * * *", at(11, 25, 3, 0)),
        ("0 13 * * *", at(11, 24, 13, 0)),
        ("0 3 * * 1", at(11, 23, 3, 0)),  # last Monday
        ("0 3 * * 7", at(11, 22, 3, 0)),  # 7 is Sunday, like 0
        ("30 8 1 * *", at(11, 1, 8, 30)),
        ("0 0 1,15 * 3", at(11, 25, 0, 0)),  # day 1 or 15, or a Wednesday
        ("5-10/5 9-17 * 11 *", at(11, 25, 12, 10)),
        ("0 0 31 2 *", None),  # never
    ],
)
def test_previous_fire(expression: str, expected: datetime | None) -> None:
    assert previous_fire(expression, NOW) == expected


@pytest.mark.parametrize(
    "expression", ["* * * *", "60 * * * *", "* 24 * * *", "5-1 * * * *", "*/0 * * * *", "a * * * *"]
)
def test_invalid_schedules(expression: str) -> None:
    with pytest.raises(CronError):
        previous_fire(expression, NOW)
