"""The Redis join store on a real ``redis-server`` (Debian's), standalone and as a cluster of
three: the store's contract (tests/harness/feedback_store_contract.py), exactly-once joins
between replicas racing on the same ids in threads, the TTLs, and a store that outlives a
restart of the service and of Redis itself; two service processes configured with it
(store.redis) count each label once between them."""

import itertools
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from localcluster.feedback import FeedbackService
from localcluster.redisserver import RedisCluster, RedisServer
from prometheus_client.parser import text_string_to_metric_families
from tests.harness.feedback_store_contract import CHECKS, Check

from modelloop.feedback.records import Label, Prediction
from modelloop.feedback.redis_store import RedisStore, ShardMismatch, shard_of
from modelloop.sdk import FeedbackClient, Sent

HORIZON = 100.0
_prefixes = itertools.count()
MakeStore = Callable[..., RedisStore]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    started = RedisServer(tmp_path_factory.mktemp("redis"))
    yield started
    started.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    started = RedisCluster(tmp_path_factory.mktemp("redis-cluster"))
    yield started
    started.stop()


def factory(url: str, cluster: bool = False) -> Iterator[MakeStore]:
    """Stores of one test share a key prefix (replicas of one service); tests do not."""
    prefix = f"test{next(_prefixes)}"
    made: list[RedisStore] = []

    def make(horizon: float = HORIZON, capacity: int = 10_000, shards: int = 16) -> RedisStore:
        made.append(
            RedisStore(url, horizon, capacity, shards=shards, prefix=prefix, cluster=cluster)
        )
        return made[-1]

    yield make
    for store in made:
        store.close()


@pytest.fixture
def make_store(server: RedisServer) -> Iterator[MakeStore]:
    yield from factory(server.url)


@pytest.fixture
def make_cluster_store(cluster: RedisCluster) -> Iterator[MakeStore]:
    yield from factory(cluster.url, cluster=True)


def prediction(i: int, version: str = "v1") -> Prediction:
    return Prediction(
        id=f"id-{i}",
        model="fraud",
        version=version,
        time=1000.0 + i,
        attributes={"region": "eu" if i % 2 else "us"},
        predicted="1" if i % 3 else "0",
        score=(i % 10) / 10,
    )


def label(i: int, value: str = "1") -> Label:
    return Label(id=f"id-{i}", label=value, time=2000.0 + i)


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
def test_the_store_contract(check: Check, make_store: MakeStore) -> None:
    check(make_store)


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
def test_the_store_contract_on_a_cluster(check: Check, make_cluster_store: MakeStore) -> None:
    check(make_cluster_store)


def test_capacity_holds_over_the_shards(make_store: MakeStore) -> None:
    store = make_store(capacity=400, shards=16)
    stored = store.add_predictions([prediction(i) for i in range(1000)], now=1.0)
    assert stored.waiting == store.pending().predictions == 400
    assert stored.refused == 600
    assert [p.id for p in stored.waiting_predictions] == [f"id-{i}" for i in range(400)]


@pytest.mark.parametrize("shards", [1, 16])
def test_expire_walks_chunks_and_shards_up_to_its_limit(make_store: MakeStore, shards: int) -> None:
    """A limit beyond one script's chunk takes several scripts (of one shard, or of
    several); once it is reached, the shards after are only counted."""
    store = make_store(horizon=1.0, capacity=10_000, shards=shards)
    store.add_predictions([prediction(i) for i in range(3500)], now=0.0)
    steps = [store.expire(now=5.0, limit=2500) for _ in range(2)]
    assert [(len(s.predictions), s.more) for s in steps] == [(2500, True), (1000, False)]
    assert len({p.id for s in steps for p in s.predictions}) == 3500
    assert store.pending().predictions == 0


def test_every_key_has_a_ttl_within_twice_the_horizon(
    make_store: MakeStore, server: RedisServer
) -> None:
    store = make_store(horizon=100.0)
    store.add_predictions([prediction(i) for i in range(20)], now=1.0)
    store.add_labels([label(i) for i in range(10)], now=1.0)
    store.add_labels([label(i) for i in range(500, 510)], now=1.0)
    client = redis.Redis.from_url(server.url)
    try:
        keys = list(client.scan_iter(match=f"{store.prefix}:*"))
        records = [k for k in keys if k.split(b":")[-2] in (b"p", b"l", b"d")]
        assert len(records) == 10 + 10 + 10  # waiting predictions, tombstones, waiting labels
        ttls = [client.pttl(k) for k in records]
        assert all(0 < ttl <= 200_000 for ttl in ttls), ttls
        tombstones = [client.pttl(k) for k in records if k.split(b":")[-2] == b"d"]
        assert all(ttl <= 100_000 for ttl in tombstones)
    finally:
        client.close()


def test_two_replicas_adding_the_same_labels_count_each_once(make_store: MakeStore) -> None:
    """Both replicas receive every label (a retried delivery landing on each), in threads,
    interleaved with predictions arriving on both: every pair is joined exactly once."""
    first, second = make_store(), make_store()
    n = 3000
    predictions = [prediction(i) for i in range(n)]
    labels = [label(i) for i in range(n)]
    first.add_predictions(predictions[: n // 2], now=1.0)
    joined: list[list[str]] = [[], []]
    duplicates = [0, 0]

    def run(replica: int, store: RedisStore) -> None:
        if replica == 1:
            store.add_predictions(predictions[n // 2 :], now=2.0)
        for start in range(0, n, 100):
            stored = store.add_labels(labels[start : start + 100], now=3.0)
            joined[replica] += [j.prediction.id for j in stored.joined]
            duplicates[replica] += stored.duplicates

    threads = [threading.Thread(target=run, args=(r, s)) for r, s in enumerate([first, second])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    everything = joined[0] + joined[1]
    assert sorted(everything) == sorted(p.id for p in predictions)
    assert len(set(everything)) == n
    assert sum(duplicates) == n
    assert first.pending() == second.pending()
    assert (first.pending().predictions, first.pending().labels) == (0, 0)


def test_a_restarted_service_and_a_restarted_redis_keep_what_waits(
    tmp_path: Path,
) -> None:
    server = RedisServer(tmp_path / "redis")
    try:
        store = RedisStore(server.url, HORIZON, 1000, shards=4)
        store.add_predictions([prediction(i) for i in range(10)], now=1.0)
        store.add_labels([label(i) for i in range(5)], now=2.0)
        store.close()
        server.kill()  # SIGKILL: only what the append-only file holds survives
        server.start_again()
        restarted = RedisStore(server.url, HORIZON, 1000, shards=4)
        assert (restarted.pending().predictions, restarted.pending().labels) == (5, 0)
        stored = restarted.add_labels([label(i) for i in range(10)], now=3.0)
        assert (len(stored.joined), stored.duplicates) == (5, 5)
        restarted.close()
    finally:
        server.stop()


def test_replicas_with_another_shard_count_are_refused(make_store: MakeStore) -> None:
    make_store(shards=4)
    with pytest.raises(ShardMismatch, match="4"):
        make_store(shards=8)


def test_on_a_cluster_the_shards_spread_and_replicas_join_once(
    make_cluster_store: MakeStore, cluster: RedisCluster
) -> None:
    first, second = make_cluster_store(shards=16), make_cluster_store(shards=16)
    n = 2000
    first.add_predictions([prediction(i) for i in range(n)], now=1.0)
    joined: list[str] = []
    lock = threading.Lock()

    def run(store: RedisStore) -> None:
        for start in range(0, n, 250):
            stored = store.add_labels([label(i) for i in range(start, start + 250)], now=2.0)
            with lock:
                joined.extend(j.prediction.id for j in stored.joined)

    threads = [threading.Thread(target=run, args=(s,)) for s in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(joined) == sorted(f"id-{i}" for i in range(n))
    # The 16 shards' keys sit on every node of the cluster.
    holding = 0
    for node in cluster.servers:
        client = redis.Redis.from_url(node.url)
        try:
            holding += bool(list(client.scan_iter(match=f"{first.prefix}:{{s*", count=1000)))
        finally:
            client.close()
    assert holding == len(cluster.servers)
    first.add_predictions([prediction(i) for i in range(n, n + 50)], now=3.0)
    assert len(second.expire(now=3.0 + HORIZON + 1, limit=1000).predictions) == 50


def test_the_shard_of_an_id_is_the_same_in_every_process() -> None:
    """crc32, not Python's salted hash: every replica looks an id up in the same shard."""
    assert [shard_of(f"id-{i}", 16) for i in range(6)] == [10, 12, 6, 0, 3, 5]
    assert len({shard_of(f"id-{i}", 16) for i in range(1000)}) == 16


def test_two_service_processes_on_one_redis_count_each_label_once(
    server: RedisServer, tmp_path: Path
) -> None:
    """Predictions reach one replica or the other (some both); every label is posted to
    both replicas at once: the sums of their /metrics count each pair once."""
    settings = {
        "store": {"redis": {"url": server.url, "shards": 8}},
        "attributes": [{"name": "region"}],
    }
    replicas = [FeedbackService(tmp_path, settings, name=name) for name in ("a", "b")]
    try:
        n = 400
        predictions = [prediction(i).model_dump(by_alias=True) for i in range(n)]
        labels = [label(i, "1" if i % 4 else "0").model_dump(by_alias=True) for i in range(n)]
        clients = [FeedbackClient(r.url, batch_size=40) for r in replicas]
        clients[0].predictions(predictions[: 3 * n // 4])
        clients[1].predictions(predictions[n // 2 :])
        sent = [Sent(), Sent()]

        def post_labels(replica: int) -> None:
            order = labels if replica == 0 else labels[::-1]
            sent[replica] = clients[replica].labels(order)

        threads = [threading.Thread(target=post_labels, args=(r,)) for r in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sent[0].joined + sent[1].joined == n
        assert sent[0].skipped.get("duplicate", 0) + sent[1].skipped.get("duplicate", 0) == n
        totals: dict[tuple[str, str], float] = {}
        pending: list[float] = []
        for replica in replicas:
            for family in text_string_to_metric_families(replica.metrics()):
                for s in family.samples:
                    if s.name == "modelloop_feedback_pending":
                        pending.append(s.value)
                    elif "region" in s.labels and s.name.endswith("_total"):
                        key = (s.name, s.labels.get("outcome", ""))
                        totals[key] = totals.get(key, 0.0) + s.value
        assert pending == [0.0] * 4  # each replica sees the shared store: nothing waits
        expected_correct = sum(
            (predictions[i]["predicted"] == labels[i]["label"]) for i in range(n)
        )
        assert totals["modelloop_feedback_predictions_total", ""] == n
        assert totals["modelloop_feedback_labels_total", ""] == n
        assert totals["modelloop_feedback_correct_total", ""] == expected_correct
        confusion = sum(
            v for (name, _), v in totals.items() if name.startswith("modelloop_feedback_confusion")
        )
        assert confusion == n
    finally:
        for replica in replicas:
            replica.stop()
