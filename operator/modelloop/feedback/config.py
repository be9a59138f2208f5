"""The feedback service's settings: a YAML file (camelCase, like the rest of ModelLoop),
and flags that override it (docs/feedback.md shows a file); and the join store they name
(``open_store``)."""

import argparse
import re
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from modelloop.api.durations import Duration, Within
from modelloop.api.vocabulary import LABEL_VERSION

from .kserve import FIELD, KServeConfig, VersionFrom
from .metrics import RESERVED_LABELS
from .outcomes import Scoring, SliceAttribute, Task, class_of
from .sqlite_store import SqliteStore
from .store import JoinStore

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# YAML reads ``positiveClass: 1`` as a number: a class is text (outcomes.class_of).
ClassName = Annotated[
    str,
    BeforeValidator(lambda v: class_of(float(v)) if isinstance(v, int | float) else v),
    Field(min_length=1, max_length=256),
]


class SettingsError(ValueError):
    pass


class _Settings(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class AttributeSettings(_Settings):
    name: str = Field(description="A prediction attribute; the metric label of that name.")
    max_values: int = Field(default=20, ge=1, le=10_000, description="Values beyond: other.")

    @field_validator("name")
    @classmethod
    def _label_name(cls, name: str) -> str:
        if not _LABEL_NAME.match(name) or name.startswith("__"):
            raise ValueError(f"{name!r} is not a Prometheus label name")
        if name in RESERVED_LABELS:
            raise ValueError(f"{name!r} is a label of the service's own series")
        return name


class ModelSettings(_Settings):
    """What one model overrides of the service's scoring defaults."""

    task: Task | None = None
    threshold: float | None = Field(default=None, ge=0, le=1)
    positive_class: ClassName | None = None


class RedisSettings(_Settings):
    """A Redis or Valkey server (or cluster) that the replicas share; its URL written
    here, or in a file (a mounted Secret: a password never sits in the settings). The
    chart writes ``url`` or ``urlFile``, and ``cluster``."""

    url: str | None = Field(
        default=None, pattern=r"^(rediss?|unix)://", description="redis://host:6379/0"
    )
    url_file: Path | None = None
    cluster: bool = False
    shards: int = Field(
        default=16, ge=1, le=1024, description="Every replica of one store: the same count."
    )

    @model_validator(mode="after")
    def _one_url(self) -> "RedisSettings":
        if (self.url is None) == (self.url_file is None):
            raise ValueError("give either url or urlFile")
        return self

    def address(self) -> str:
        if self.url is not None:
            return self.url
        assert self.url_file is not None  # _one_url
        return self.url_file.read_text().strip()


class StoreSettings(_Settings):
    """The SQLite file (one replica), unless ``redis`` is given."""

    path: Path = Field(default=Path("feedback.db"), description="The SQLite file.")
    redis: RedisSettings | None = None

    def describe(self) -> str:
        """For the log: the file, or the server's address without its credentials."""
        redis = self.redis
        if redis is None:
            return f"sqlite {self.path}"
        kind = "redis cluster" if redis.cluster else "redis"
        if redis.url is None:
            return f"{kind} (the URL in {redis.url_file})"
        parts = urlsplit(redis.url)
        return f"{kind} {parts.path if parts.scheme == 'unix' else parts.hostname}"


class KServeSettings(_Settings):
    """How the events of KServe's inference logger become predictions (POST /v1/kserve;
    docs/feedback.md): which fields of an instance are its attributes, where the version
    is, how a response row reads, and how long a request waits for its response."""

    attributes: dict[str, str] = Field(
        default_factory=dict,
        max_length=32,
        description="attribute -> field of an instance: key, key[k] (a column) or [k]",
    )
    version: str = Field(
        default=f"annotation:{LABEL_VERSION}",
        description="annotation:<key>, header:<name>, response or endpoint",
    )
    positive_index: int = Field(default=1, ge=0, le=1)
    prediction_key: str = Field(default="predicted", min_length=1)
    score_key: str = Field(default="score", min_length=1)
    prediction_output: str | None = Field(default=None, min_length=1)
    score_output: str | None = Field(default=None, min_length=1)
    max_pending: int = Field(default=10_000, ge=1, le=1_000_000)
    max_rows: int = Field(default=100_000, ge=1, le=10_000_000)
    max_age: Annotated[Duration, Within("1s", "1h")] = Duration("1m")

    @field_validator("attributes")
    @classmethod
    def _fields(cls, attributes: dict[str, str]) -> dict[str, str]:
        for attribute, path in attributes.items():
            if not path or not FIELD.match(path):
                raise ValueError(f"{attribute}: {path!r} is not key, key[k] or [k]")
        return attributes

    @field_validator("version")
    @classmethod
    def _version(cls, version: str) -> str:
        VersionFrom.parse(version)
        return version

    def config(self) -> KServeConfig:
        return KServeConfig(
            attributes=dict(self.attributes),
            version=VersionFrom.parse(self.version),
            positive_index=self.positive_index,
            prediction_key=self.prediction_key,
            score_key=self.score_key,
            prediction_output=self.prediction_output,
            score_output=self.score_output,
            max_pending=self.max_pending,
            max_rows=self.max_rows,
            max_age=self.max_age.delta.total_seconds(),
        )


class Settings(_Settings):
    listen: str = Field(default="0.0.0.0:8080", pattern=r"^[^\s]*:[0-9]{1,5}$")
    store: StoreSettings = StoreSettings()
    horizon: Annotated[Duration, Within("1s", "365d")] = Duration("30d")
    capacity: int = Field(default=1_000_000, ge=1, description="Records waiting, at most.")
    max_body_bytes: int = Field(default=4 << 20, ge=1024, le=256 << 20)
    max_series: int = Field(default=10_000, ge=1, description="model x version x attributes")
    expire_every: Annotated[Duration, Within("1s", "1h")] = Duration("1m")
    task: Task = Task.CLASSIFICATION
    threshold: float = Field(default=0.5, ge=0, le=1)
    positive_class: ClassName = "1"
    models: dict[str, ModelSettings] = Field(default_factory=dict)
    attributes: list[AttributeSettings] = Field(default_factory=list, max_length=16)
    kserve: KServeSettings = KServeSettings()

    @field_validator("attributes")
    @classmethod
    def _distinct(cls, attributes: list[AttributeSettings]) -> list[AttributeSettings]:
        names = [a.name for a in attributes]
        if len(set(names)) != len(names):
            raise ValueError("attribute names must be distinct")
        return attributes

    @model_validator(mode="after")
    def _kserve_attributes_are_listed(self) -> "Settings":
        unknown = sorted(set(self.kserve.attributes) - {a.name for a in self.attributes})
        if unknown:
            raise ValueError(
                f"kserve.attributes {', '.join(unknown)}: not in attributes (no metric label)"
            )
        return self

    @property
    def address(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host, int(port)

    def scoring(self, model: str) -> Scoring:
        own = self.models.get(model, ModelSettings())
        return Scoring(
            task=own.task or self.task,
            threshold=self.threshold if own.threshold is None else own.threshold,
            positive_class=own.positive_class or self.positive_class,
        )

    def slice_attributes(self) -> list[SliceAttribute]:
        return [SliceAttribute(a.name, a.max_values) for a in self.attributes]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="settings file (YAML, docs/feedback.md)")
    parser.add_argument("--listen", help="HOST:PORT (default 0.0.0.0:8080)")
    parser.add_argument("--store-path", help="the SQLite file (default feedback.db)")
    parser.add_argument("--horizon", help="how long records wait for their other half (30d)")
    parser.add_argument("--capacity", type=int, help="records waiting, at most (1000000)")
    parser.add_argument("-v", "--verbose", action="store_true")


def load(args: argparse.Namespace) -> Settings:
    """The file's settings, with the flags given on top."""
    raw: dict[str, Any] = {}
    if args.config is not None:
        try:
            loaded = yaml.safe_load(args.config.read_text()) or {}
        except (OSError, yaml.YAMLError) as error:
            raise SettingsError(f"{args.config}: {error}") from error
        if not isinstance(loaded, dict):
            raise SettingsError(f"{args.config}: not a mapping")
        raw = loaded
    flags = {"listen": args.listen, "horizon": args.horizon, "capacity": args.capacity}
    raw |= {name: value for name, value in flags.items() if value is not None}
    if args.store_path is not None:
        raw["store"] = {**raw.get("store", {}), "path": args.store_path}
    try:
        return Settings.model_validate(raw)
    except ValidationError as error:
        raise SettingsError(str(error)) from error


def open_store(settings: Settings) -> JoinStore:
    """The store the settings name: ``store.redis`` when given, else the SQLite file."""
    horizon = settings.horizon.delta.total_seconds()
    redis = settings.store.redis
    if redis is not None:
        from .redis_store import RedisStore  # the optional package: modelloop[feedback]

        return RedisStore(
            redis.address(), horizon, settings.capacity, shards=redis.shards, cluster=redis.cluster
        )
    return SqliteStore(settings.store.path, horizon, settings.capacity)
