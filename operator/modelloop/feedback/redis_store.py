"""The join store on a Redis-protocol server (Redis, Valkey; standalone or cluster), shared
by several stateless replicas of the feedback service.

Exactly once: a record is claimed by a Lua script (EVAL), which Redis runs atomically —
whichever replica's script sees the other half first joins the pair and deletes it, and
leaves a tombstone so a replayed prediction or label is a duplicate, not a second join.

Layout: the ids are spread over ``shards`` (crc32 of the id); everything of one shard —
each pending record, each tombstone, the two arrival-time indexes — carries the shard's
hash tag ``{sNN}``, so every key a script touches sits in one hash slot and the scripts
run unchanged on a Redis Cluster, whose nodes share the shards. Per shard:

- ``<prefix>:{sNN}:p:<id>`` / ``:l:<id>``: a pending prediction / label (JSON, by alias);
- ``<prefix>:{sNN}:d:<id>``: the tombstone of a joined id;
- ``<prefix>:{sNN}:pi`` / ``:li``: sorted sets of the pending ids by arrival time, which
  ``expire`` walks and ``pending`` counts.

Every record and tombstone has a TTL: a tombstone lives for the horizon after its join, a
pending record twice the horizon (``expire`` reports it before then; the TTL only bounds
what a store nobody expires would keep). ``<prefix>:meta`` records the shard count;
replicas configured with another are refused.

Capacity bounds the pending records, predictions and labels together. A batch takes two
round trips: the first joins what can be joined (the scripts, one per shard, in one
pipeline) and counts the pending records; the second stores as many of the rest as there
is room for, in the batch's order. The bound is exact for one replica; replicas whose
batches race between the two steps may each overshoot it by at most one batch.

A restart of the service loses nothing: the state is the server's (its own persistence,
AOF or RDB, decides what survives a restart of Redis itself).
"""

import json
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import redis
import redis.cluster

from .records import Joined, Label, Prediction
from .store import Expired, Pending, Stored

R = TypeVar("R", Prediction, Label)

# One EVAL per shard and chunk: a script blocks the server while it runs, so a large
# batch is split into chunks of this many records, and the expiry claims at most
# EXPIRE_CHUNK a script.
CHUNK = 500
EXPIRE_CHUNK = 1000

# KEYS: the shard's own index and other index. ARGV: the shard's key prefix, the own and
# other record kinds ("p", "l"), store ("1": keep a record with no other half; "0": only
# say it needs a place), now, record ttl ms, tombstone ttl ms, and a JSON array of the ids
# — each followed by its payload when storing: one argument (cjson decodes it in C; one
# argument per record costs the client more than the rest). A record's keys are built here
# from the shard's prefix: not
# in KEYS, but in the slot of those that are (the shard's hash tag), which a cluster allows.
# Returns the statuses as one string — d: duplicate, j: joined, w: waiting, n: needs a
# place — then the other half's payload of each joined record, in order.
ADD = """
local own_index, other_index = KEYS[1], KEYS[2]
local prefix, own_kind, other_kind = ARGV[1], ARGV[2], ARGV[3]
local store, now, ttl, tomb_ttl = ARGV[4] == '1', ARGV[5], ARGV[6], ARGV[7]
local step = store and 2 or 1
local records = cjson.decode(ARGV[8])
local status, out = {}, {''}
for i = 1, #records / step do
  local id = records[1 + step * (i - 1)]
  local own = prefix .. own_kind .. ':' .. id
  local other = prefix .. other_kind .. ':' .. id
  local tomb = prefix .. 'd:' .. id
  if redis.call('EXISTS', tomb) == 1 or redis.call('EXISTS', own) == 1 then
    status[i] = 'd'
  else
    local half = redis.call('GET', other)
    if half then
      redis.call('DEL', other)
      redis.call('ZREM', other_index, id)
      redis.call('SET', tomb, '1', 'PX', tomb_ttl)
      status[i] = 'j'
      out[#out + 1] = half
    elseif store then
      redis.call('SET', own, records[2 + step * (i - 1)], 'PX', ttl)
      redis.call('ZADD', own_index, now, id)
      status[i] = 'w'
    else
      status[i] = 'n'
    end
  end
end
out[1] = table.concat(status)
return out
"""

# KEYS: the shard's index of one kind. ARGV: the prefix of its records' keys, the cutoff,
# how many to claim (0: only count). Claims the oldest ids arrived before the cutoff, at
# most that many, and deletes them with their records (keys built from the prefix, as in
# ADD); returns how many remain before the cutoff, then the claimed records' payloads (""
# for a record whose key already vanished by its TTL).
EXPIRE = """
local index, prefix, cutoff = KEYS[1], ARGV[1], '(' .. ARGV[2]
local ids = redis.call('ZRANGEBYSCORE', index, '-inf', cutoff, 'LIMIT', 0, tonumber(ARGV[3]))
local out = {0}
for i = 1, #ids do
  local key = prefix .. ids[i]
  out[i + 1] = redis.call('GET', key) or ''
  redis.call('DEL', key)
end
if #ids > 0 then
  redis.call('ZREM', index, unpack(ids))
end
out[1] = redis.call('ZCOUNT', index, '-inf', cutoff)
return out
"""


class ShardMismatch(RuntimeError):
    """The server's store was made with another shard count: ids would be looked up in the
    wrong shard."""


@dataclass(frozen=True)
class _Kind:
    record: str  # "p" or "l"
    index: str  # "pi" or "li"


PREDICTIONS = _Kind("p", "pi")
LABELS = _Kind("l", "li")


def shard_of(record_id: str, shards: int) -> int:
    """Stable across processes and replicas (unlike ``hash``)."""
    return zlib.crc32(record_id.encode()) % shards


class RedisStore:
    """``JoinStore`` on a Redis-protocol server at ``url`` (``redis://``, ``rediss://``,
    ``unix://``); ``cluster=True`` speaks to a Redis Cluster through any of its nodes."""

    def __init__(
        self,
        url: str,
        horizon_seconds: float,
        capacity: int,
        *,
        shards: int = 16,
        prefix: str = "modelloop:feedback",
        cluster: bool = False,
        timeout_seconds: float = 5.0,
    ) -> None:
        if horizon_seconds <= 0 or capacity <= 0 or not 1 <= shards <= 1024:
            raise ValueError("horizon and capacity must be positive, shards 1..1024")
        self.horizon = horizon_seconds
        self.shards = shards
        self.prefix = prefix
        self._capacity = capacity
        # The pending records counted after this replica's last batch (None: not yet).
        self._pending_after_last: int | None = None
        self._tomb_ttl_ms = max(1, round(horizon_seconds * 1000))
        self._ttl_ms = 2 * self._tomb_ttl_ms
        options: dict[str, Any] = {
            "socket_timeout": timeout_seconds,
            "socket_connect_timeout": timeout_seconds,
        }
        self._client: redis.Redis | redis.cluster.RedisCluster = (
            redis.cluster.RedisCluster.from_url(url, **options)
            if cluster
            else redis.Redis.from_url(url, **options)
        )
        self._check_shards()

    def _check_shards(self) -> None:
        meta = f"{self.prefix}:meta"
        self._client.set(meta, str(self.shards), nx=True)
        found = self._client.get(meta)
        if found is None or int(found) != self.shards:
            raise ShardMismatch(
                f"{meta} says {found!r} shards; this replica is configured with {self.shards}"
            )

    def _key(self, shard: int, name: str) -> str:
        return f"{self.prefix}:{{s{shard:02d}}}:{name}"

    def add_predictions(self, predictions: Sequence[Prediction], now: float) -> Stored:
        return self._add(predictions, PREDICTIONS, LABELS, now, _label)

    def add_labels(self, labels: Sequence[Label], now: float) -> Stored:
        return self._add(labels, LABELS, PREDICTIONS, now, _prediction)

    def _add(
        self,
        records: Sequence[R],
        own: _Kind,
        other: _Kind,
        now: float,
        parse_other: Callable[[bytes], Prediction | Label],
    ) -> Stored:
        """When the pending count after the last batch leaves room for all of this one, one
        round trip: each record takes its other half if that waits, else waits itself.
        Otherwise two: every record first takes its other half if that waits (or is found
        a duplicate), and the pending records are counted; then those left take the room
        there is in the batch's order, and the rest are refused. Either way the pending
        records are counted again for the next batch."""
        stored = Stored()
        first: list[int] = []  # the first of each id in the batch: the others are duplicates
        seen: set[str] = set()
        for position, record in enumerate(records):
            if record.id in seen:
                stored.duplicates += 1
            else:
                seen.add(record.id)
                first.append(position)
        if not first:
            return stored
        outcome: dict[int, tuple[str, bytes]] = {}  # position -> (status, other half)
        known = self._pending_after_last
        if known is not None and known + len(first) <= self._capacity:
            self._pending_after_last = self._run(records, first, own, other, now, True, outcome)
        else:
            pending = self._run(records, first, own, other, now, False, outcome)
            assert pending is not None  # first is not empty
            needing = [p for p in first if outcome[p][0] == "n"]
            room = max(0, self._capacity - pending)
            taken = self._run(records, needing[:room], own, other, now, True, outcome)
            self._pending_after_last = taken if needing[:room] else pending
        for position in first:  # in the batch's order, whatever the shards
            status, half = outcome[position]
            if status == "j":
                stored.joined.append(_joined(records[position], parse_other(half)))
            elif status == "w":
                stored.waiting += 1
                record = records[position]
                if isinstance(record, Prediction):
                    stored.waiting_predictions.append(record)
            elif status == "d":
                stored.duplicates += 1
            else:
                stored.refused += 1
        return stored

    def _run(
        self,
        records: Sequence[R],
        positions: Sequence[int],
        own: _Kind,
        other: _Kind,
        now: float,
        store: bool,
        outcome: dict[int, tuple[str, bytes]],
    ) -> int | None:
        """The ADD script on the records at ``positions``, one EVAL per shard and chunk, in
        one pipeline, which then counts the pending records (after the scripts): the
        count returned (None when there was nothing to run)."""
        if not positions:
            return None
        by_shard: dict[int, list[int]] = {}
        for position in positions:
            by_shard.setdefault(shard_of(records[position].id, self.shards), []).append(position)
        calls: list[list[int]] = []
        pipe = self._client.pipeline(transaction=False)
        for shard, members in by_shard.items():
            prefix = self._key(shard, "")
            for start in range(0, len(members), CHUNK):
                chunk = members[start : start + CHUNK]
                sent: list[str] = []
                for position in chunk:
                    record = records[position]
                    sent.append(record.id)
                    if store:
                        sent.append(record.model_dump_json(by_alias=True))
                # execute_command: a cluster pipeline refuses .eval(), not a raw EVAL
                pipe.execute_command(
                    "EVAL",
                    ADD,
                    2,
                    self._key(shard, own.index),
                    self._key(shard, other.index),
                    *(prefix, own.record, other.record, "1" if store else "0"),
                    *(repr(now), self._ttl_ms, self._tomb_ttl_ms, json.dumps(sent)),
                )
                calls.append(chunk)
        for shard in range(self.shards):
            pipe.zcard(self._key(shard, PREDICTIONS.index))
            pipe.zcard(self._key(shard, LABELS.index))
        answers = pipe.execute()
        for chunk, answer in zip(calls, answers, strict=False):
            statuses, halves = answer[0].decode(), iter(answer[1:])
            for position, status in zip(chunk, statuses, strict=True):
                outcome[position] = (status, next(halves) if status == "j" else b"")
        return int(sum(answers[len(calls) :]))

    def expire(self, now: float, limit: int) -> Expired:
        if limit < 1:
            raise ValueError("the limit must be positive")
        cutoff = now - self.horizon
        payloads, more_predictions = self._expire(PREDICTIONS, cutoff, limit)
        labels, more_labels = self._expire(LABELS, cutoff, limit)
        return Expired(
            predictions=[_prediction(p) for p in payloads if p],
            labels=len(labels),
            more=more_predictions or more_labels,
        )

    def _expire(self, kind: _Kind, cutoff: float, limit: int) -> tuple[list[bytes], bool]:
        """Claims at most ``limit`` records of ``kind`` arrived before ``cutoff``, shard
        after shard, one EXPIRE of at most EXPIRE_CHUNK a call; and whether any remain
        (once the limit is reached, the shards after are only counted)."""
        claimed: list[bytes] = []
        for shard in range(self.shards):
            while True:
                answer = self._client.eval(
                    EXPIRE,
                    1,
                    self._key(shard, kind.index),
                    self._key(shard, f"{kind.record}:"),
                    repr(cutoff),
                    min(EXPIRE_CHUNK, limit - len(claimed)),
                )
                claimed += answer[1:]
                if answer[0] == 0:
                    break
                if len(claimed) == limit:
                    return claimed, True
        return claimed, False

    def pending(self) -> Pending:
        pipe = self._client.pipeline(transaction=False)
        for shard in range(self.shards):
            pipe.zcard(self._key(shard, PREDICTIONS.index))
            pipe.zcard(self._key(shard, LABELS.index))
        counts: list[int] = pipe.execute()
        return Pending(predictions=sum(counts[0::2]), labels=sum(counts[1::2]))

    def close(self) -> None:
        self._client.close()


# The store reads back only what it wrote from records validated on their way in: built
# without validating again (a third of the cost of a join). The wire names are the field
# names (one word each), and JSON keeps a number a number and a text a text.
def _prediction(payload: bytes) -> Prediction:
    return Prediction.model_construct(**json.loads(payload))


def _label(payload: bytes) -> Label:
    return Label.model_construct(**json.loads(payload))


def _joined(record: Prediction | Label, half: Prediction | Label) -> Joined:
    if isinstance(record, Prediction):
        assert isinstance(half, Label)
        return Joined(record, half)
    assert isinstance(half, Prediction)
    return Joined(half, record)
