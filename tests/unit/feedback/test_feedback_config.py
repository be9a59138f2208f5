"""The feedback service's settings: the file, the flags over it, scoring per model, the
attribute names a metric label cannot take, the store they open (the chart's Redis
settings among them) and the KServe adapter's settings."""

import argparse
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelloop.feedback import redis_store
from modelloop.feedback.config import SettingsError, add_arguments, load, open_store
from modelloop.feedback.kserve import KServeConfig, VersionFrom
from modelloop.feedback.outcomes import Scoring, SliceAttribute, Task
from modelloop.feedback.sqlite_store import SqliteStore


def parse(tmp_path: Path, settings: Any, *flags: str) -> Any:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    arguments = list(flags)
    if settings is not None:
        path = tmp_path / "feedback.yaml"
        path.write_text(settings if isinstance(settings, str) else yaml.safe_dump(settings))
        arguments += ["--config", str(path)]
    return load(parser.parse_args(arguments))


def test_defaults(tmp_path: Path) -> None:
    settings = parse(tmp_path, None)
    assert settings.address == ("0.0.0.0", 8080)
    assert settings.store.path == Path("feedback.db")
    assert settings.horizon.delta.total_seconds() == 30 * 86400
    assert settings.expire_every.delta.total_seconds() == 60
    assert (settings.capacity, settings.max_series, settings.max_body_bytes) == (
        1_000_000,
        10_000,
        4 << 20,
    )
    assert settings.scoring("any") == Scoring(Task.CLASSIFICATION, 0.5, "1")
    assert settings.slice_attributes() == []


def test_a_file_and_flags_over_it(tmp_path: Path) -> None:
    settings = parse(
        tmp_path,
        {
            "listen": "127.0.0.1:9000",
            "store": {"path": "/data/a.db"},
            "horizon": "7d",
            "threshold": 0.4,
            "positiveClass": 1,
            "models": {
                "price": {"task": "regression"},
                "fraud": {"threshold": 0.3, "positiveClass": "fraud"},
                "churn": {"positiveClass": 0.5},
            },
            "attributes": [{"name": "region", "maxValues": 5}, {"name": "device"}],
        },
        "--store-path",
        "/data/b.db",
        "--capacity",
        "10",
    )
    assert settings.address == ("127.0.0.1", 9000)
    assert (settings.store.path, settings.capacity) == (Path("/data/b.db"), 10)
    assert settings.horizon.delta.total_seconds() == 7 * 86400
    assert settings.scoring("price") == Scoring(Task.REGRESSION, 0.4, "1")
    assert settings.scoring("fraud") == Scoring(Task.CLASSIFICATION, 0.3, "fraud")
    assert settings.scoring("churn") == Scoring(Task.CLASSIFICATION, 0.4, "0.5")
    assert settings.scoring("other") == Scoring(Task.CLASSIFICATION, 0.4, "1")
    assert settings.slice_attributes() == [
        SliceAttribute("region", 5),
        SliceAttribute("device", 20),
    ]


@pytest.mark.parametrize(
    ("settings", "flags", "message"),
    [
        ({"attributes": [{"name": "version"}]}, [], "label of the service's own series"),
        ({"attributes": [{"name": "le"}]}, [], "label of the service's own series"),
        ({"attributes": [{"name": "a-b"}]}, [], "not a Prometheus label name"),
        ({"attributes": [{"name": "__x"}]}, [], "not a Prometheus label name"),
        ({"attributes": [{"name": "a"}, {"name": "a"}]}, [], "distinct"),
        ({"attributes": [{"name": "a", "maxValues": 0}]}, [], "maxValues"),
        ({"horizon": "30 days"}, [], "horizon"),
        ({"horizon": "500ms"}, [], "horizon"),
        ({"threshold": 1.5}, [], "threshold"),
        ({"models": {"m": {"task": "ranking"}}}, [], "task"),
        ({"listen": "8080"}, [], "listen"),
        ({"capcity": 5}, [], "capcity"),
        (None, ["--capacity", "0"], "capacity"),
        (None, ["--horizon", "1x"], "horizon"),
        ("listen: [", [], "feedback.yaml"),
        ("- a\n- b\n", [], "not a mapping"),
    ],
)
def test_bad_settings(tmp_path: Path, settings: Any, flags: list[str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        parse(tmp_path, settings, *flags)


def test_a_redis_store_by_url_or_by_file(tmp_path: Path) -> None:
    settings = parse(tmp_path, {"store": {"redis": {"url": "redis://r:6379/0"}}})
    assert settings.store.redis.address() == "redis://r:6379/0"
    assert not settings.store.redis.cluster
    secret = tmp_path / "url"
    secret.write_text("redis://:pw@r:6379/1\n")
    settings = parse(tmp_path, {"store": {"redis": {"urlFile": str(secret), "cluster": True}}})
    assert (settings.store.redis.address(), settings.store.redis.cluster) == (
        "redis://:pw@r:6379/1",
        True,
    )
    for redis in ({}, {"url": "redis://r", "urlFile": str(secret)}):
        with pytest.raises(SettingsError, match="either url or urlFile"):
            parse(tmp_path, {"store": {"redis": redis}})


def test_a_missing_file(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    with pytest.raises(SettingsError, match=r"nowhere\.yaml"):
        load(parser.parse_args(["--config", str(tmp_path / "nowhere.yaml")]))


class Recorded:
    """Stands for RedisStore: what open_store built it with (no server)."""

    def __init__(self, url: str, horizon: float, capacity: int, **options: Any) -> None:
        self.made = (url, horizon, capacity, options)


# The first two: what charts/modelloop/templates/feedback.yaml writes for
# feedback.store.type=redis (tests/integration/test_chart_feedback.py reads them from its
# rendered ConfigMap), the mounted Secret's file here a file of the test's.


@pytest.mark.parametrize(
    ("redis", "url_in_file", "made"),
    [
        (  # feedback.store.redis.urlSecret: the URL in a mounted file
            {"cluster": True, "urlFile": "the Secret's file"},
            "redis://:pw@valkey.data:6379/1\n",
            ("redis://:pw@valkey.data:6379/1", {"shards": 16, "cluster": True}),
        ),
        (  # feedback.store.redis.url
            {"cluster": False, "url": "redis://valkey.data:6379/2"},
            None,
            ("redis://valkey.data:6379/2", {"shards": 16, "cluster": False}),
        ),
        (  # by hand: another shard count
            {"url": "rediss://r:6380/0", "shards": 64},
            None,
            ("rediss://r:6380/0", {"shards": 64, "cluster": False}),
        ),
    ],
)
def test_the_charts_redis_settings_open_a_redis_store(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    redis: dict[str, Any],
    url_in_file: str | None,
    made: tuple[str, dict[str, Any]],
) -> None:
    monkeypatch.setattr(redis_store, "RedisStore", Recorded)
    if url_in_file is not None:
        secret = tmp_path / "url"
        secret.write_text(url_in_file)
        redis = redis | {"urlFile": str(secret)}
    settings = parse(tmp_path, {"store": {"redis": redis}, "horizon": "2d"}, "--capacity", "99")
    store = open_store(settings)
    assert isinstance(store, Recorded)
    url, options = made
    assert store.made == (url, 2 * 86400.0, 99, options)


def test_without_redis_the_store_is_the_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "f.db"
    store = open_store(parse(tmp_path, {"store": {"path": str(path)}}))
    try:
        assert isinstance(store, SqliteStore)
        assert path.exists()
    finally:
        store.close()


@pytest.mark.parametrize(
    ("redis", "message"),
    [
        ({"url": ""}, "url"),
        ({"url": "http://r:6379"}, "url"),
        ({"url": "redis://r", "shards": 0}, "shards"),
        ({"url": "redis://r", "password": "x"}, "password"),
    ],
)
def test_bad_redis_settings(tmp_path: Path, redis: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        parse(tmp_path, {"store": {"redis": redis}})


@pytest.mark.parametrize(
    ("store", "described"),
    [
        ({}, "sqlite feedback.db"),
        ({"redis": {"url": "redis://:secret@r.data:6379/0"}}, "redis r.data"),
        (
            {"redis": {"url": "unix:///run/redis.sock", "cluster": True}},
            "redis cluster /run/redis.sock",
        ),
        ({"redis": {"urlFile": "/etc/x/url"}}, "redis (the URL in /etc/x/url)"),
    ],
)
def test_the_store_is_logged_without_credentials(
    tmp_path: Path, store: dict[str, Any], described: str
) -> None:
    assert parse(tmp_path, {"store": store}).store.describe() == described


def test_kserve_settings_become_the_pairers_config(tmp_path: Path) -> None:
    assert parse(tmp_path, None).kserve.config() == KServeConfig()
    settings = parse(
        tmp_path,
        {
            "attributes": [{"name": "region"}, {"name": "hour"}],
            "kserve": {
                "attributes": {"region": "region", "hour": "features[0]"},
                "version": "header:X-Model-Version",
                "positiveIndex": 0,
                "predictionKey": "label",
                "scoreKey": "p",
                "predictionOutput": "classes",
                "scoreOutput": "probabilities",
                "maxPending": 50,
                "maxRows": 500,
                "maxAge": "2m",
            },
        },
    )
    assert settings.kserve.config() == KServeConfig(
        attributes={"region": "region", "hour": "features[0]"},
        version=VersionFrom("header", "X-Model-Version"),
        positive_index=0,
        prediction_key="label",
        score_key="p",
        prediction_output="classes",
        score_output="probabilities",
        max_pending=50,
        max_rows=500,
        max_age=120.0,
    )


@pytest.mark.parametrize(
    ("kserve", "message"),
    [
        ({"attributes": {"region": "a[b]"}}, "region"),
        ({"attributes": {"device": "device"}}, "device: not in attributes"),
        ({"version": "annotation:"}, "version source"),
        ({"version": "label:x"}, "version source"),
        ({"positiveIndex": 2}, "positiveIndex"),
        ({"maxAge": "2h"}, "maxAge"),
        ({"maxPending": 0}, "maxPending"),
        ({"maxRow": 5}, "maxRow"),
    ],
)
def test_bad_kserve_settings(tmp_path: Path, kserve: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        parse(tmp_path, {"attributes": [{"name": "region"}], "kserve": kserve})
