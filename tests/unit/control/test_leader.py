"""Leader election's decision: who may write the Lease, on a table of cases."""

from datetime import UTC, datetime, timedelta

import pytest

from modelloop.control.leader import Lease, claim

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
DURATION = timedelta(seconds=15)
AGO = {s: NOW - timedelta(seconds=s) for s in (5, 14, 15, 60)}


@pytest.mark.parametrize(
    ("current", "expected"),
    [
        (None, Lease("me", NOW, NOW, 0)),  # nobody ever led: take it
        (Lease("me", AGO[5], AGO[60], 2), Lease("me", NOW, AGO[60], 2)),  # renew, same term
        (Lease("other", AGO[5], AGO[60], 2), None),  # the other leads
        (Lease("other", AGO[14], AGO[60], 2), None),  # ... until the very end of its term
        (Lease("other", AGO[15], AGO[60], 2), Lease("me", NOW, NOW, 3)),  # expired: take over
        (Lease(None, AGO[5], None, 4), Lease("me", NOW, NOW, 5)),  # released
        (Lease("other", None, None, 0), Lease("me", NOW, NOW, 1)),  # never renewed
    ],
)
def test_claim(current: Lease | None, expected: Lease | None) -> None:
    assert claim(current, "me", NOW, DURATION) == expected
