"""The embedded join store: the store contract (tests/harness/feedback_store_contract.py)
on SQLite files, and what is SQLite's own: WAL, the file's format, a file shared by two
connections at once."""

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.harness.feedback_store_contract import (
    CAPACITY,
    CHECKS,
    HORIZON,
    T0,
    Check,
    StoreFactory,
    label,
    prediction,
)

from modelloop.feedback.sqlite_store import SqliteStore, StoreFormatError
from modelloop.feedback.store import Expired, Pending


@pytest.fixture
def make_store(tmp_path: Path) -> Iterator[StoreFactory]:
    opened: list[SqliteStore] = []

    def make(horizon_seconds: float, capacity: int, /) -> SqliteStore:
        opened.append(SqliteStore(tmp_path / "feedback.db", horizon_seconds, capacity))
        return opened[-1]

    yield make
    for store in opened:
        store.close()


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
def test_the_store_contract(check: Check, make_store: StoreFactory) -> None:
    check(make_store)


def test_the_file_is_in_wal_mode(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "f.db", HORIZON, CAPACITY)
    assert store.journal_mode == "wal"
    store.close()


def test_a_store_of_another_format_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "f.db"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version=7")
    with pytest.raises(StoreFormatError, match="format 7"):
        SqliteStore(path, HORIZON, CAPACITY)


@pytest.mark.parametrize(("horizon", "capacity"), [(0.0, 10), (10.0, 0)])
def test_nonsense_bounds_are_refused(tmp_path: Path, horizon: float, capacity: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        SqliteStore(tmp_path / "f.db", horizon, capacity)


def test_joined_ids_beyond_capacity_are_forgotten_oldest_first(tmp_path: Path) -> None:
    """A duplicate of a forgotten pair waits as a new record; it never joins twice (the
    other half of the pair is gone)."""
    store = SqliteStore(tmp_path / "f.db", HORIZON, 2)
    for i in range(4):
        store.add_predictions([prediction(f"p{i}")], T0 + i)
        assert len(store.add_labels([label(f"p{i}")], T0 + i).joined) == 1
    assert store.expire(T0 + 10, 1000) == Expired()
    assert store.add_labels([label("p0"), label("p1")], T0 + 11).waiting == 2
    assert store.add_labels([label("p2"), label("p3")], T0 + 11).duplicates == 2
    assert store.pending() == Pending(predictions=0, labels=2)
    store.close()


@pytest.mark.parametrize(
    ("capacity", "now"), [(2, T0 + 10), (100, T0 + HORIZON + 10)], ids=["capacity", "horizon"]
)
def test_joined_ids_are_forgotten_in_steps_of_the_limit(
    tmp_path: Path, capacity: int, now: float
) -> None:
    """Beyond capacity or past the horizon, at most ``limit`` joined ids a call: the
    store says more remain until the oldest three are forgotten (their labels sent again
    are new records, waiting or refused); the pairs joined last are still known."""
    store = SqliteStore(tmp_path / "f.db", HORIZON, capacity)
    for i in range(5):
        store.add_predictions([prediction(f"p{i}")], T0 + i)
        store.add_labels([label(f"p{i}")], T0 + i if i < 3 else now)
    assert [store.expire(now, 2).more for _ in range(2)] == [True, False]
    again = store.add_labels([label(f"p{i}") for i in range(5)], now)
    assert (len(again.joined), again.duplicates, again.waiting + again.refused) == (0, 2, 3)
    store.close()
