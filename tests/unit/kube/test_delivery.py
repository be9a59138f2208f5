from datetime import UTC, datetime
from typing import Any

import pytest

from modelloop.kube.delivery import write_delay

NOW = datetime(2026, 12, 5, 10, 0, 10, tzinfo=UTC).timestamp()


def stamped(*times: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "managedFields": [{"manager": f"m{i}", "time": t} for i, t in enumerate(times)]
        }
    }


@pytest.mark.parametrize(
    ("body", "delay"),
    [
        # The newest stamp is the write that made the event, in the middle of its second.
        (stamped("2026-12-05T09:59:00Z", "2026-12-05T10:00:04Z"), 5.5),
        (stamped("2026-12-05T10:00:04Z", "2026-12-05T09:59:00Z"), 5.5),
        # Written within this second: a delay under one second reads as none.
        (stamped("2026-12-05T10:00:10Z"), 0.0),
        # A clock behind the API server's: never less than none.
        (stamped("2026-12-05T10:00:30Z"), 0.0),
        # Nothing to read: no delay is made up.
        ({"metadata": {}}, None),
        ({}, None),
        (stamped(None, 12), None),
        (stamped("yesterday"), None),
        ({"metadata": {"managedFields": ["not an entry"]}}, None),
    ],
)
def test_a_watch_events_delay_runs_from_its_newest_stamped_write(
    body: dict[str, Any], delay: float | None
) -> None:
    assert write_delay(body, NOW) == delay
