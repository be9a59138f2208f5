"""Durations in Prometheus syntax (``30s``, ``15m``, ``1h30m``, ``7d``).

One regex serves pydantic and the CRD schema alike: CEL's ``duration()`` only
knows Go syntax (no ``d``, ``w`` or ``y``), and users write these values next
to PromQL, where Prometheus syntax is what they already know.
"""

import re
from datetime import timedelta
from typing import Annotated

from pydantic import StringConstraints

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

Duration = Annotated[
    str,
    StringConstraints(pattern=DURATION_PATTERN, min_length=2, max_length=32),
]


def parse_duration(text: str) -> timedelta:
    """Parse a Prometheus duration; raises ValueError on anything else."""
    if len(text) < 2 or not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"not a duration in Prometheus syntax (e.g. 30s, 15m, 7d): {text!r}")
    milliseconds = sum(int(n) * _UNIT_MILLISECONDS[unit] for n, unit in _PART.findall(text))
    return timedelta(milliseconds=milliseconds)
