"""Five-field cron schedules (minute hour day-of-month month day-of-week, UTC). Pure.

Supports ``*``, numbers, ranges ``a-b``, steps ``*/n`` and ``a-b/n``, and lists.
As in cron, when both day fields are restricted a day matches either of them.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))  # weekday 7 is Sunday too
SEARCH_DAYS = 400  # a schedule that never fires within this many days never fires


class CronError(ValueError):
    pass


def _field(text: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if body == "*":
            start, end = low, high
        elif "-" in body:
            a, b = body.split("-", 1)
            start, end = int(a), int(b)
        else:
            start = end = int(body)
        if step < 1 or start < low or end > high or start > end:
            raise CronError(f"{part!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class Schedule:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool
    any_weekday: bool

    def day_matches(self, day: datetime) -> bool:
        if day.month not in self.months:
            return False
        dom = day.day in self.days
        dow = (day.weekday() + 1) % 7 in self.weekdays
        if self.any_day or self.any_weekday:
            return dom and dow
        return dom or dow


def parse(expression: str) -> Schedule:
    fields = expression.split()
    if len(fields) != 5:
        raise CronError(f"a schedule has 5 fields, {expression!r} has {len(fields)}")
    try:
        parsed = [_field(f, low, high) for f, (low, high) in zip(fields, _RANGES, strict=True)]
    except ValueError as error:
        raise CronError(f"{expression!r}: {error}") from None
    minutes, hours, days, months, weekdays = parsed
    return Schedule(
        minutes,
        hours,
        days,
        months,
        frozenset(d % 7 for d in weekdays),
        any_day=fields[2] == "*",
        any_weekday=fields[4] == "*",
    )


def previous_fire(expression: str, now: datetime) -> datetime | None:
    """The latest time at or before ``now`` the schedule fired (minute precision)."""
    schedule = parse(expression)
    now = now.replace(second=0, microsecond=0)
    for offset in range(SEARCH_DAYS):
        day = (now - timedelta(days=offset)).replace(hour=0, minute=0)
        if not schedule.day_matches(day):
            continue
        for hour in sorted(schedule.hours, reverse=True):
            for minute in sorted(schedule.minutes, reverse=True):
                candidate = day.replace(hour=hour, minute=minute)
                if candidate <= now:
                    return candidate
    return None
