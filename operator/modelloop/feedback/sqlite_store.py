"""The embedded join store: one SQLite file, for a service with one replica.

One table holds every id the store knows, in one of three states: a prediction waiting
for its label, a label waiting for its prediction, or a joined pair (its id only, kept
for the horizon so that a label or prediction sent again is a duplicate, not a new
record). Each batch is one write transaction (``BEGIN IMMEDIATE``): the ids it touches
are read and written under the database's write lock, so a pair is joined once even if
two processes share the file by mistake. The counts of each state sit in the same
file, updated in the same transaction: capacity holds across restarts.

WAL journal with ``synchronous=NORMAL``: a committed batch survives the process being
killed (the service answers only after the commit); the last batches before a power
loss of the machine may not.
"""

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from .records import Joined, Label, Prediction
from .store import Expired, Pending, Stored

PREDICTION, LABEL, JOINED = 0, 1, 2
_SCHEMA_VERSION = 1
_SCHEMA = (
    # body: the waiting record as JSON (NULL once joined); arrived: when the store got
    # it, or when it was joined (the horizon counts from there).
    "CREATE TABLE IF NOT EXISTS records ("
    " id TEXT PRIMARY KEY, kind INTEGER NOT NULL, arrived REAL NOT NULL, body TEXT"
    ") WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS records_by_age ON records (kind, arrived)",
    "CREATE TABLE IF NOT EXISTS counts (kind INTEGER PRIMARY KEY, n INTEGER NOT NULL)",
    f"INSERT OR IGNORE INTO counts VALUES ({PREDICTION}, 0), ({LABEL}, 0), ({JOINED}, 0)",
)
_KNOWN = (
    "SELECT id, kind, coalesce(body, '') FROM records WHERE id IN (SELECT value FROM json_each(?))"
)
_INSERT = "INSERT INTO records (id, kind, arrived, body) VALUES (?, ?, ?, ?)"
_JOIN = f"UPDATE records SET kind = {JOINED}, arrived = ?, body = NULL WHERE id = ?"
# The oldest ``?`` ids of a state arrived before a cutoff (on the index by age), and
# whether one remains.
_OLDEST = "SELECT id FROM records WHERE kind = ? AND arrived < ? ORDER BY arrived LIMIT ?"
_PAST = "SELECT 1 FROM records WHERE kind = ? AND arrived < ? LIMIT 1"


class StoreFormatError(RuntimeError):
    """The file was written by another version of the store."""


class SqliteStore:
    """A ``JoinStore`` in the SQLite file at ``path``.

    Pending records (predictions and labels waiting) are at most ``capacity``: beyond
    it a new waiting record is refused (a pair that completes is always taken). Joined
    ids are remembered for ``horizon_seconds`` after their join, at most ``capacity``
    of them (the oldest forgotten first). One caller at a time: the service runs every
    call on one thread.
    """

    def __init__(self, path: str | Path, horizon_seconds: float, capacity: int) -> None:
        if horizon_seconds <= 0 or capacity < 1:
            raise ValueError("the horizon and the capacity must be positive")
        self.horizon = horizon_seconds
        self.capacity = capacity
        self._db = sqlite3.connect(
            str(path), isolation_level=None, check_same_thread=False, timeout=10.0
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        with self._transaction():
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, _SCHEMA_VERSION):
                raise StoreFormatError(
                    f"{path}: store format {version}, this version reads {_SCHEMA_VERSION}"
                )
            for statement in _SCHEMA:
                self._db.execute(statement)
            self._db.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")

    @property
    def journal_mode(self) -> str:
        mode: str = self._db.execute("PRAGMA journal_mode").fetchone()[0]
        return mode

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _counts(self) -> list[int]:
        counts = [0, 0, 0]
        for kind, n in self._db.execute("SELECT kind, n FROM counts"):
            counts[kind] = n
        return counts

    def _save_counts(self, before: list[int], after: list[int]) -> None:
        self._db.executemany(
            "UPDATE counts SET n = ? WHERE kind = ?",
            [(n, kind) for kind, n in enumerate(after) if n != before[kind]],
        )

    def _known(self, ids: Sequence[str]) -> dict[str, tuple[int, str]]:
        rows = self._db.execute(_KNOWN, (json.dumps(ids),))
        return {id_: (kind, body) for id_, kind, body in rows}

    def add_predictions(self, predictions: Sequence[Prediction], now: float) -> Stored:
        stored = self._add(predictions, PREDICTION, LABEL, now)
        stored.waiting = len(stored.waiting_predictions)
        return stored

    def add_labels(self, labels: Sequence[Label], now: float) -> Stored:
        return self._add(labels, LABEL, PREDICTION, now)

    def _add(
        self, records: Sequence[Prediction | Label], mine: int, theirs: int, now: float
    ) -> Stored:
        """Store each record to wait for its other half (kind ``theirs``), or join it with
        the other half waiting; one transaction for the batch."""
        stored = Stored()
        if not records:
            return stored
        with self._transaction():
            before = self._counts()
            counts = list(before)
            known = self._known([r.id for r in records])
            inserts: list[tuple[str, int, float, str]] = []
            joins: list[tuple[float, str]] = []
            for record in records:
                state = known.get(record.id)
                if state is None:
                    if counts[PREDICTION] + counts[LABEL] >= self.capacity:
                        stored.refused += 1
                        continue
                    body = record.model_dump_json()
                    inserts.append((record.id, mine, now, body))
                    known[record.id] = (mine, body)
                    counts[mine] += 1
                    if isinstance(record, Prediction):
                        stored.waiting_predictions.append(record)
                    else:
                        stored.waiting += 1
                elif state[0] == theirs:
                    stored.joined.append(_pair(record, state[1]))
                    joins.append((now, record.id))
                    known[record.id] = (JOINED, "")
                    counts[theirs] -= 1
                    counts[JOINED] += 1
                else:
                    stored.duplicates += 1
            self._db.executemany(_INSERT, inserts)
            self._db.executemany(_JOIN, joins)
            self._save_counts(before, counts)
        return stored

    def expire(self, now: float, limit: int) -> Expired:
        """Oldest first, at most ``limit`` rows of each state (the joined ids forgotten
        at the horizon or beyond ``capacity`` among them): one bounded transaction."""
        if limit < 1:
            raise ValueError("the limit must be positive")
        cutoff = now - self.horizon
        with self._transaction():
            before = self._counts()
            counts = list(before)
            bodies = self._db.execute(
                f"DELETE FROM records WHERE id IN ({_OLDEST}) RETURNING body",
                (PREDICTION, cutoff, limit),
            ).fetchall()
            predictions = [Prediction.model_validate_json(b, strict=True) for (b,) in bodies]
            labels = self._drop_oldest(LABEL, cutoff, limit)
            forgotten = self._drop_oldest(JOINED, cutoff, limit)
            counts[PREDICTION] -= len(predictions)
            counts[LABEL] -= labels
            counts[JOINED] -= forgotten
            beyond = min(counts[JOINED] - self.capacity, limit - forgotten)
            counts[JOINED] -= self._drop_oldest(JOINED, float("inf"), beyond)
            dropped = {PREDICTION: len(predictions), LABEL: labels, JOINED: forgotten}
            more = counts[JOINED] > self.capacity or any(
                self._db.execute(_PAST, (kind, cutoff)).fetchone() is not None
                for kind, n in dropped.items()
                if n == limit
            )
            self._save_counts(before, counts)
        return Expired(predictions=predictions, labels=labels, more=more)

    def _drop_oldest(self, kind: int, cutoff: float, limit: int) -> int:
        """Deletes the oldest ``limit`` rows of ``kind`` arrived before ``cutoff``."""
        if limit < 1:
            return 0
        deleted: int = self._db.execute(
            f"DELETE FROM records WHERE id IN ({_OLDEST})", (kind, cutoff, limit)
        ).rowcount
        return deleted

    def pending(self) -> Pending:
        counts = self._counts()
        return Pending(predictions=counts[PREDICTION], labels=counts[LABEL])

    def close(self) -> None:
        self._db.close()


def _pair(record: Prediction | Label, waiting: str) -> Joined:
    """``record`` with the other half that waited (stored as JSON)."""
    if isinstance(record, Prediction):
        return Joined(record, Label.model_validate_json(waiting, strict=True))
    return Joined(Prediction.model_validate_json(waiting, strict=True), record)
