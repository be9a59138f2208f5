"""Which watch events take the work queue's urgent lane: someone's change, and not the
fleet a list brings after a start."""

from typing import Any

import pytest

from modelloop.api.vocabulary import LABEL_SHARD
from modelloop.handlers.urgency import is_urgent


def obj(generation: int = 1, labels: dict[str, str] | None = None, **status: Any) -> Any:
    meta: dict[str, Any] = {"name": "churn", "generation": generation}
    if labels is not None:
        meta["labels"] = labels
    return {"metadata": meta, "status": status}


HELD = obj()


@pytest.mark.parametrize(
    ("type_", "held", "body", "expected"),
    [
        ("ADDED", None, HELD, True),  # created: someone applied it
        ("MODIFIED", HELD, obj(generation=2), True),  # spec edited
        ("MODIFIED", HELD, obj(labels={LABEL_SHARD: "b"}), True),  # relabelled
        ("MODIFIED", HELD, obj(phase="Serving"), False),  # status alone: an echo
        ("MODIFIED", None, HELD, True),  # not held (moved here): news
        ("DELETED", HELD, HELD, False),
        ("DELETED", None, HELD, False),
        # A list (kopf's type None): the fleet after a start waits in the normal lane,
        # an edit the broken watch missed does not.
        (None, None, HELD, False),
        (None, HELD, HELD, False),
        (None, HELD, obj(phase="Serving"), False),
        (None, HELD, obj(generation=2), True),
    ],
)
def test_an_event_is_urgent_when_it_brings_someones_change(
    type_: str | None, held: Any, body: Any, expected: bool
) -> None:
    assert is_urgent(type_, held, body) is expected
