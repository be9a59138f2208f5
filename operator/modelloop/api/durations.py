"""Durations in Prometheus syntax (``30s``, ``15m``, ``1h30m``, ``7d``), with bounds.

One regex serves pydantic and the CRD schema alike: CEL's ``duration()`` only
knows Go syntax (no ``d``, ``w`` or ``y``), and users write these values next
to PromQL, where Prometheus syntax is what they already know.

Every duration field also has bounds that fit what it times (``Within``): one
Model's absurd value must not stall the work all Models share. Pydantic checks
them on the parsed value; the API server checks them with a CEL rule that adds
up the parts in milliseconds (``cel_milliseconds``).
"""

import re
from datetime import timedelta
from typing import Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

from .base import FieldRule

DURATION_PATTERN = r"^([0-9]+y)?([0-9]+w)?([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?([0-9]+ms)?$"
_UNIT_MILLISECONDS = {
    "y": 365 * 24 * 3600 * 1000,
    "w": 7 * 24 * 3600 * 1000,
    "d": 24 * 3600 * 1000,
    "h": 3600 * 1000,
    "m": 60 * 1000,
    "s": 1000,
    "ms": 1,
}
_PART = re.compile(r"([0-9]+)(ms|y|w|d|h|m|s)")
_LONGEST = timedelta.max // timedelta(milliseconds=1)


def milliseconds(text: str) -> int:
    """A Prometheus duration in milliseconds; raises ValueError on anything else."""
    if len(text) < 2 or not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"not a duration in Prometheus syntax (e.g. 30s, 15m, 7d): {text!r}")
    return sum(int(n) * _UNIT_MILLISECONDS[unit] for n, unit in _PART.findall(text))


def parse_duration(text: str) -> timedelta:
    """Parse a Prometheus duration; raises ValueError on anything else."""
    total = milliseconds(text)
    if total > _LONGEST:
        raise ValueError(f"duration too long: {text!r}")
    return timedelta(milliseconds=total)


class Duration(str):
    """A duration as the user wrote it (``15m``, kept on the wire) and parsed (``delta``).

    Parsed once, when the spec is: the code that times something reads ``.delta``
    and never parses text again.
    """

    __slots__ = ("delta",)
    delta: timedelta

    def __new__(cls, text: str) -> "Duration":
        duration = super().__new__(cls, text)
        # Clamped: a field's bounds (Within) reject what is too long, with its own message.
        duration.delta = timedelta(milliseconds=min(milliseconds(text), _LONGEST))
        return duration

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(
            cls,
            core_schema.str_schema(pattern=DURATION_PATTERN, min_length=2, max_length=32),
            serialization=core_schema.plain_serializer_function_ser_schema(str),
        )


def cel_milliseconds(expression: str) -> str:
    """CEL for the milliseconds of a duration string ``expression`` that matches the pattern.

    Each part (``1h``, ``30m``, ...) is a number times its unit; doubles, so that
    no value a user writes overflows (sums up to 2^53 ms, ~285,000 years, are exact).
    """
    units = ", ".join(f"'{unit}': {ms}.0" for unit, ms in _UNIT_MILLISECONDS.items())
    return (
        f"{expression}.findAll('[0-9]+[a-z]+')"
        f".map(p, double(p.find('^[0-9]+')) * {{{units}}}[p.find('[a-z]+$')]).sum()"
    )


class Within(FieldRule):
    """The bounds of a duration field, for ``Annotated[Duration, Within("5s", "1h")]``."""

    def __init__(self, low: str, high: str) -> None:
        self.lowest, self.highest = milliseconds(low), milliseconds(high)
        if self.lowest == 0:
            message = f"must be a duration of at most {high}"
            test = f"ms <= {self.highest}.0"
        else:
            message = f"must be a duration from {low} to {high}"
            test = f"ms >= {self.lowest}.0 && ms <= {self.highest}.0"
        super().__init__(
            # A value that is no duration at all fails the pattern; this rule stays quiet.
            # [x].all(ms, ...) names the sum once (the API server's CEL has no cel.bind).
            f"!self.matches('{DURATION_PATTERN}') || [{cel_milliseconds('self')}].all(ms, {test})",
            message,
            lambda text: self.lowest <= milliseconds(text) <= self.highest,
        )


def spoken(delta: timedelta) -> str:
    """A timedelta in the API's own duration words, to the second: ``90s`` is ``1m30s``."""
    seconds = max(0, int(delta.total_seconds()))
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    if seconds or not parts:
        parts.append(f"{seconds}s")
    return "".join(parts)
