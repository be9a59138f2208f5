"""The feedback service's settings: the file, the flags over it, scoring per model, and
the attribute names a metric label cannot take."""

import argparse
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelloop.feedback.config import SettingsError, add_arguments, load
from modelloop.feedback.outcomes import Scoring, SliceAttribute, Task


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
