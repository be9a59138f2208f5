"""The schedules the API accepts are exactly schedules the operator's cron parser fires."""

import itertools

import pytest

from modelloop.api.schedule import SCHEDULE_RULES
from modelloop.retraining import cron

# Every form a field can take, with numbers at and beyond each field's bounds.
FIELD_VALUES = [
    "*", "*/1", "*/15", "*/0", "*/100", "0", "1", "00", "07", "7", "8", "12", "13", "23", "24",
    "31", "32", "59", "60", "1-5", "5-1", "0-59", "1-5/2", "5/10", "1,2", "1,,2", ",1", "1-",
    "-1", "x", "MON", "+1", "1_0", "٣",
]  # fmt: skip


def accepted(expression: str) -> bool:
    return all(rule.check(expression) for rule in SCHEDULE_RULES)


def parses(expression: str) -> bool:
    try:
        cron.parse(expression)
    except cron.CronError:
        return False
    return True


@pytest.mark.parametrize("index", range(5))
def test_every_accepted_schedule_parses(index: int) -> None:
    base = ["0", "3", "1", "1", "0"]
    expressions = [" ".join([*base[:index], v, *base[index + 1 :]]) for v in FIELD_VALUES]
    passing = [e for e in expressions if accepted(e)]
    assert len(passing) >= 8  # *, */1, */15, 0-ish numbers, 1-5, 1-5/2, 1,2 ...
    assert [e for e in passing if not parses(e)] == []


@pytest.mark.parametrize(
    "expression",
    ["0 3 * * 1", "*/15 0-22/2 1,15,31 1-12 0,7", "59 23 31 12 7", "0 0 1 1 0"],
)
def test_common_schedules_are_accepted(expression: str) -> None:
    assert accepted(expression)
    assert parses(expression)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("0 3 * *", "a schedule has 5 fields"),
        ("0  3 * * *", "a schedule has 5 fields"),
        ("0 3 * * 1\n", "day of week (field 5)"),
        ("60 3 * * *", "minute (field 1)"),
        ("5/10 * * * *", "minute (field 1)"),  # 5 for some crons, 5-59/10 for others
        ("0 24 * * *", "hour (field 2)"),
        ("0 3 0 * *", "day of month (field 3)"),
        ("0 3 * 13 *", "month (field 4)"),
        ("0 3 * * 8", "day of week (field 5)"),
        ("0 3 * * 5-1", "a range a-b in a schedule needs a <= b"),
    ],
)
def test_refused_schedules_say_which_rule(expression: str, message: str) -> None:
    failed = [rule.message for rule in SCHEDULE_RULES if not rule.check(expression)]
    assert failed
    assert message in failed[0]


def test_pairs_of_fields_agree_with_the_parser() -> None:
    values = ["*", "*/7", "0", "7", "1-5", "5-1", "31", "59"]
    expressions = [f"{minute} 3 {day} 1 *" for minute, day in itertools.product(values, values)]
    passing = [e for e in expressions if accepted(e)]
    assert len(passing) >= 30
    assert [e for e in passing if not parses(e)] == []
