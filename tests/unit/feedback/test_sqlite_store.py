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
from modelloop.feedback.store import Pending


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
    assert store.expire(T0 + 10).labels == 0
    assert store.add_labels([label("p0"), label("p1")], T0 + 11).waiting == 2
    assert store.add_labels([label("p2"), label("p3")], T0 + 11).duplicates == 2
    assert store.pending() == Pending(predictions=0, labels=2)
    store.close()
