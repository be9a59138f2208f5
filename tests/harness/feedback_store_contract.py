"""The join store's contract (``modelloop.feedback.store.JoinStore``) as checks any
implementation must pass: each ``check_*`` takes a factory of stores and asserts.

``make_store(horizon_seconds, capacity)`` opens a store on the test's own backing data
(a file, a Redis key prefix): fresh for each test, and the same for every call within
it, so a second call is the service restarted, or a second replica. Time is only what
the checks pass as ``now``; nothing sleeps.

    @pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
    def test_contract(check: Check, make_store: StoreFactory) -> None:
        check(make_store)
"""

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import pytest

from modelloop.feedback.records import Joined, Label, Prediction
from modelloop.feedback.store import Expired, JoinStore, Pending, Stored

T0 = 1_700_000_000.0
HORIZON = 3600.0
CAPACITY = 100
LIMIT = 1000  # records of each kind an expire call drops, unless a check says


class StoreFactory(Protocol):
    def __call__(self, horizon_seconds: float, capacity: int, /) -> JoinStore: ...


Check = Callable[[StoreFactory], None]


def prediction(id_: str, **fields: Any) -> Prediction:
    values: dict[str, Any] = {
        "id": id_,
        "model": "churn",
        "version": "v1",
        "time": T0,
        "attributes": {"region": "eu"},
        "predicted": "1",
        "score": 0.8,
    }
    return Prediction.model_validate(values | fields)


def label(id_: str, value: float | str = "1", time: float = T0 + 60) -> Label:
    return Label(id=id_, label=value, time=time)


def _counts(stored: Stored) -> tuple[int, int, int, int]:
    return len(stored.joined), stored.waiting, stored.duplicates, stored.refused


def _pairs(joined: Sequence[Joined]) -> set[str]:
    return {pair.prediction.id for pair in joined}


def _expired(expired: Expired) -> tuple[int, int, bool]:
    return len(expired.predictions), expired.labels, expired.more


def check_a_label_joins_its_waiting_prediction(make_store: StoreFactory) -> None:
    store = make_store(HORIZON, CAPACITY)
    first = store.add_predictions([prediction("a"), prediction("b")], T0)
    assert _counts(first) == (0, 2, 0, 0)
    assert [p.id for p in first.waiting_predictions] == ["a", "b"]
    assert store.pending() == Pending(predictions=2, labels=0)
    stored = store.add_labels([label("a", "0")], T0 + 10)
    assert _counts(stored) == (1, 0, 0, 0)
    assert stored.waiting_predictions == []
    assert stored.joined == [Joined(prediction("a"), label("a", "0"))]
    assert store.pending() == Pending(predictions=1, labels=0)
    store.close()


def check_a_prediction_joins_its_waiting_label(make_store: StoreFactory) -> None:
    store = make_store(HORIZON, CAPACITY)
    assert _counts(store.add_labels([label("a"), label("b")], T0)) == (0, 2, 0, 0)
    assert store.pending() == Pending(predictions=0, labels=2)
    stored = store.add_predictions([prediction("a"), prediction("c")], T0 + 5)
    assert _counts(stored) == (1, 1, 0, 0)
    assert stored.joined == [Joined(prediction("a"), label("a"))]
    assert [p.id for p in stored.waiting_predictions] == ["c"]
    assert store.pending() == Pending(predictions=1, labels=1)
    store.close()


def check_records_come_back_unchanged(make_store: StoreFactory) -> None:
    """Types survive the store: a float class stays a float, a text class text, a
    missing score missing, the attributes and times as sent."""
    store = make_store(HORIZON, CAPACITY)
    sent = [
        prediction("r", predicted=3.25, score=None, attributes={}, time=T0 - 0.5),
        prediction("c", predicted="1", score=0.0, attributes={"a": "x", "b": ""}),
        prediction("k", predicted="yes", score=1.0),
    ]
    store.add_predictions(sent, T0)
    labels = [label("r", 2.0, T0 + 1.25), label("c", "1"), label("k", "no", T0 - 30)]
    joined = store.add_labels(labels, T0 + 1).joined
    assert joined == [Joined(p, lab) for p, lab in zip(sent, labels, strict=True)]
    assert isinstance(joined[0].prediction.predicted, float)
    assert isinstance(joined[0].label.label, float)
    assert isinstance(joined[1].prediction.predicted, str)
    store.close()


def check_an_id_sent_twice_in_a_batch_counts_once(make_store: StoreFactory) -> None:
    store = make_store(HORIZON, CAPACITY)
    stored = store.add_predictions([prediction("a"), prediction("a", version="v2")], T0)
    assert _counts(stored) == (0, 1, 1, 0)
    assert stored.waiting_predictions == [prediction("a")]
    stored = store.add_labels([label("a"), label("a", "0"), label("b"), label("b")], T0)
    assert _counts(stored) == (1, 1, 2, 0)
    assert stored.joined == [Joined(prediction("a"), label("a"))]
    assert store.pending() == Pending(predictions=0, labels=1)
    store.close()


def check_a_waiting_record_sent_again_is_a_duplicate(make_store: StoreFactory) -> None:
    """The first one stays: a second label for a waiting id does not replace it."""
    store = make_store(HORIZON, CAPACITY)
    store.add_predictions([prediction("p")], T0)
    store.add_labels([label("l", "1")], T0)
    assert _counts(store.add_predictions([prediction("p", version="v9")], T0 + 1)) == (
        0,
        0,
        1,
        0,
    )
    assert _counts(store.add_labels([label("l", "0")], T0 + 1)) == (0, 0, 1, 0)
    assert store.pending() == Pending(predictions=1, labels=1)
    assert store.add_predictions([prediction("l")], T0 + 2).joined == [
        Joined(prediction("l"), label("l", "1"))
    ]
    assert store.add_labels([label("p", "0")], T0 + 2).joined == [
        Joined(prediction("p"), label("p", "0"))
    ]
    store.close()


def check_a_joined_id_sent_again_is_a_duplicate(make_store: StoreFactory) -> None:
    """Neither the label nor the prediction of a joined pair waits again: sent again
    (a client's retry), each is a duplicate, and the pair is never joined twice."""
    store = make_store(HORIZON, CAPACITY)
    store.add_predictions([prediction("a")], T0)
    assert len(store.add_labels([label("a")], T0 + 1).joined) == 1
    assert _counts(store.add_labels([label("a")], T0 + 2)) == (0, 0, 1, 0)
    assert _counts(store.add_predictions([prediction("a")], T0 + 3)) == (0, 0, 1, 0)
    assert _counts(store.add_labels([label("a")], T0 + 4)) == (0, 0, 1, 0)
    assert store.pending() == Pending(predictions=0, labels=0)
    store.close()


def check_capacity_bounds_waiting_records(make_store: StoreFactory) -> None:
    """Predictions and labels waiting count together; beyond capacity a new waiting
    record is refused, a record completing a pair is still taken and frees room."""
    store = make_store(HORIZON, 3)
    stored = store.add_predictions([prediction(i) for i in "abcd"], T0)
    assert _counts(stored) == (0, 3, 0, 1)
    assert [p.id for p in stored.waiting_predictions] == ["a", "b", "c"]
    assert _counts(store.add_labels([label("x")], T0)) == (0, 0, 0, 1)
    assert _counts(store.add_labels([label("a"), label("x"), label("y")], T0)) == (1, 1, 0, 1)
    assert store.pending() == Pending(predictions=2, labels=1)
    assert _counts(store.add_predictions([prediction("x"), prediction("d")], T0)) == (
        1,
        1,
        0,
        0,
    )
    assert store.pending() == Pending(predictions=3, labels=0)
    store.close()


def check_expiry_drops_what_waited_past_the_horizon(make_store: StoreFactory) -> None:
    """By arrival (the ``now`` of the batch), not by the records' own times; a record
    that waited exactly the horizon stays."""
    store = make_store(HORIZON, CAPACITY)
    old = prediction("old", time=T0 + 10 * HORIZON)  # its own clock runs ahead: no matter
    store.add_predictions([old], T0)
    store.add_labels([label("early")], T0)
    store.add_predictions([prediction("new")], T0 + 100)
    store.add_labels([label("late")], T0 + 100)
    assert store.expire(T0 + HORIZON, LIMIT) == Expired()
    assert store.expire(T0 + HORIZON + 1, LIMIT) == Expired([old], labels=1)
    assert store.pending() == Pending(predictions=1, labels=1)
    # The expired records are gone: their other half now waits in turn.
    assert _counts(store.add_labels([label("old")], T0 + HORIZON + 2)) == (0, 1, 0, 0)
    assert _counts(store.add_predictions([prediction("early")], T0 + HORIZON + 2)) == (
        0,
        1,
        0,
        0,
    )
    assert store.add_labels([label("new")], T0 + HORIZON + 2).joined[0].prediction.id == "new"
    expired = store.expire(T0 + 3 * HORIZON, LIMIT)
    assert ({p.id for p in expired.predictions}, expired.labels) == ({"early"}, 2)
    assert store.pending() == Pending(predictions=0, labels=0)
    store.close()


def check_a_restart_loses_nothing_and_joins_nothing_twice(make_store: StoreFactory) -> None:
    store = make_store(HORIZON, CAPACITY)
    store.add_predictions([prediction(f"p{i}") for i in range(10)], T0)
    store.add_labels([label(f"p{i}") for i in range(5)], T0 + 1)
    store.add_labels([label("early")], T0 + 1)
    store.close()

    again = make_store(HORIZON, CAPACITY)
    assert again.pending() == Pending(predictions=5, labels=1)
    retried = again.add_labels([label(f"p{i}") for i in range(10)], T0 + 2)  # all re-sent
    assert _counts(retried) == (5, 0, 5, 0)
    assert _pairs(retried.joined) == {f"p{i}" for i in range(5, 10)}
    assert _counts(again.add_predictions([prediction("p0"), prediction("early")], T0 + 3)) == (
        1,
        0,
        1,
        0,
    )
    assert again.pending() == Pending(predictions=0, labels=0)
    again.close()


def check_two_stores_on_the_same_data_join_each_pair_once(make_store: StoreFactory) -> None:
    """Two replicas (or an old and a new process) on one store, taking turns."""
    one, two = make_store(HORIZON, CAPACITY), make_store(HORIZON, CAPACITY)
    one.add_predictions([prediction(f"p{i}") for i in range(6)], T0)
    two.add_labels([label("early")], T0)
    joined = [
        *one.add_labels([label("p0"), label("p1")], T0 + 1).joined,
        *two.add_labels([label("p1"), label("p2")], T0 + 1).joined,
        *one.add_predictions([prediction("early"), prediction("p3")], T0 + 2).joined,
        *two.add_labels([label(f"p{i}") for i in range(6)], T0 + 3).joined,
    ]
    assert sorted(pair.prediction.id for pair in joined) == sorted(
        ["p0", "p1", "p2", "early", "p3", "p4", "p5"]
    )
    assert one.pending() == two.pending() == Pending(predictions=0, labels=0)
    one.close()
    two.close()


def check_empty_batches_change_nothing(make_store: StoreFactory) -> None:
    store = make_store(HORIZON, CAPACITY)
    assert _counts(store.add_predictions([], T0)) == (0, 0, 0, 0)
    assert _counts(store.add_labels([], T0)) == (0, 0, 0, 0)
    assert store.expire(T0, LIMIT) == Expired()
    assert store.pending() == Pending(predictions=0, labels=0)
    with pytest.raises(ValueError, match="limit"):
        store.expire(T0, 0)
    store.close()


def check_expiry_in_steps_drops_each_record_once(make_store: StoreFactory) -> None:
    """After an outage, more past the horizon than one call may hold: at most the limit
    of each kind a call, whichever store on the data calls (replicas taking turns, or
    the service restarted between steps), each record dropped once, none lost; what has
    not waited the horizon stays."""
    one, two = make_store(HORIZON, 10_000), make_store(HORIZON, 10_000)
    old = [prediction(f"p{i}") for i in range(2500)]
    for start in range(0, len(old), 500):  # arriving over 2000 s
        one.add_predictions(old[start : start + 500], T0 + start)
    one.add_labels([label(f"l{i}") for i in range(1500)], T0)
    one.add_predictions([prediction("fresh")], T0 + 2500)
    now = T0 + 2500 + HORIZON  # "fresh" waited exactly the horizon
    steps = [store.expire(now, 1000) for store in (one, two, one, two)]
    assert [_expired(step) for step in steps] == [
        (1000, 1000, True),
        (1000, 500, True),
        (500, 0, False),
        (0, 0, False),
    ]
    dropped = sorted((p for step in steps for p in step.predictions), key=lambda p: p.id)
    assert dropped == sorted(old, key=lambda p: p.id)
    assert one.pending() == two.pending() == Pending(predictions=1, labels=0)
    one.close()
    two.close()


def check_expiry_says_more_only_while_records_remain(make_store: StoreFactory) -> None:
    """A call that drops exactly what was past the horizon says so: none remain."""
    store = make_store(HORIZON, CAPACITY)
    store.add_predictions([prediction(f"p{i}") for i in range(10)], T0)
    store.add_labels([label(f"l{i}") for i in range(5)], T0)
    assert _expired(store.expire(T0 + HORIZON + 1, 5)) == (5, 5, True)
    assert _expired(store.expire(T0 + HORIZON + 1, 5)) == (5, 0, False)
    store.add_predictions([prediction(f"q{i}") for i in range(5)], T0 + 10)
    store.add_labels([label(f"m{i}") for i in range(10)], T0 + 10)
    assert _expired(store.expire(T0 + HORIZON + 11, 5)) == (5, 5, True)
    assert _expired(store.expire(T0 + HORIZON + 11, 5)) == (0, 5, False)
    assert store.pending() == Pending(predictions=0, labels=0)
    store.close()


CHECKS: list[Check] = [
    check_a_label_joins_its_waiting_prediction,
    check_a_prediction_joins_its_waiting_label,
    check_records_come_back_unchanged,
    check_an_id_sent_twice_in_a_batch_counts_once,
    check_a_waiting_record_sent_again_is_a_duplicate,
    check_a_joined_id_sent_again_is_a_duplicate,
    check_capacity_bounds_waiting_records,
    check_expiry_drops_what_waited_past_the_horizon,
    check_expiry_in_steps_drops_each_record_once,
    check_expiry_says_more_only_while_records_remain,
    check_a_restart_loses_nothing_and_joins_nothing_twice,
    check_two_stores_on_the_same_data_join_each_pair_once,
    check_empty_batches_change_nothing,
]
