"""Cron schedules as the API accepts them: exactly what the operator's cron parser can fire.

Five fields (minute hour day-of-month month day-of-week, UTC), each ``*``, a
number, a range ``a-b``, a step ``*/n`` or ``a-b/n``, or a comma-separated
list of these. ``a/n`` is refused: cron implementations disagree on it (``5/10``
is ``5`` for some and ``5-59/10`` for others), and a schedule should mean one
thing. Each rule is a regex that CEL's ``matches`` and Python agree on, so the
API server and pydantic give one verdict with one message per rule.
"""

import re
from collections.abc import Callable
from typing import Annotated

from pydantic import StringConstraints

from .base import FieldRule

_FIELDS = (  # name, the numbers it takes as a regex, as words
    ("minute", "[0-5]?[0-9]", "0-59"),
    ("hour", "[01]?[0-9]|2[0-3]", "0-23"),
    ("day of month", "0?[1-9]|[12][0-9]|3[01]", "1-31"),
    ("month", "0?[1-9]|1[0-2]", "1-12"),
    ("day of week", "0?[0-7]", "0-7, 0 and 7 are Sunday"),
)
_STEP = "/[1-9][0-9]?"
_SHAPE = "^[^ ]+ [^ ]+ [^ ]+ [^ ]+ [^ ]+$"
_RANGE = "[0-9]+-[0-9]+"


def _field(number: str) -> str:
    item = f"([*]({_STEP})?|({number})(-({number})({_STEP})?)?)"
    return f"{item}(,{item})*"


def _matches(pattern: str) -> Callable[[str], bool]:
    """CEL's ``matches`` (RE2, unanchored) in Python: ``$`` only at the very end."""
    compiled = re.compile(pattern.replace("$", r"\Z"))
    return lambda text: compiled.search(text) is not None


def _ranges_ordered(text: str) -> bool:
    # A range longer than 5 characters ("59-59") has a number the field rules refuse.
    return all(
        len(r) > 5 or int(r.split("-")[0]) <= int(r.split("-")[1]) for r in re.findall(_RANGE, text)
    )


def _field_rule(index: int) -> FieldRule:
    name, number, words = _FIELDS[index]
    pattern = f"^([^ ]+ ){{{index}}}{_field(number)}( |$)"
    return FieldRule(
        f"self.matches('{pattern}')",
        f"{name} (field {index + 1}) must be *, a number {words}, a range a-b, "
        "a step */n or a-b/n, or a comma-separated list of these",
        _matches(pattern),
    )


SCHEDULE_RULES = (
    FieldRule(
        f"self.matches('{_SHAPE}')",
        "a schedule has 5 fields separated by single spaces: "
        "minute hour day-of-month month day-of-week",
        _matches(_SHAPE),
    ),
    *(_field_rule(index) for index in range(len(_FIELDS))),
    FieldRule(
        f"self.findAll('{_RANGE}')"
        ".all(r, size(r) > 5 || int(r.find('^[0-9]+')) <= int(r.find('[0-9]+$')))",
        "a range a-b in a schedule needs a <= b",
        _ranges_ordered,
    ),
)

Schedule = Annotated[str, StringConstraints(max_length=128), *SCHEDULE_RULES]
