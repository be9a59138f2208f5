"""Predictions from KServe's inference logger: CloudEvents over HTTP, request and response
paired by ``ce-id``. Pure: the server hands each event's headers and body to
``KServePairer.add`` and stores the predictions it returns.

What KServe sends (kserve/kserve, ``pkg/logger/worker.go`` ``sendHttpCloudEvent`` and
``pkg/logger/handler.go`` ``ServeHTTP``; the agent's flags are filled from the pod in
``pkg/webhook/admission/pod/agent_injector.go``): one event per inference request and,
when the model answered 200, one per response, in binary mode — the body is the payload
as the model saw it, the attributes are headers:

- ``ce-specversion: 1.0``, ``ce-id`` (the request's own ``Ce-Id`` header when it had one,
  else a new UUID: the same for request and response), ``ce-type``
  ``org.kubeflow.serving.inference.request`` or ``.response``, ``ce-source`` (the pod),
  ``ce-time`` (RFC 3339, when the request arrived or the response was received);
- extensions ``ce-inferenceservicename``, ``ce-namespace``, ``ce-component``
  (predictor, transformer, ...), ``ce-endpoint`` (may be empty), ``ce-recordedtime``,
  ``ce-metadata`` (JSON ``{header: [values]}`` of the request headers the
  InferenceService lists in ``logger.metadataHeaders``) and, when any,
  ``ce-annotations`` (JSON ``{key: value}`` of the annotations it lists in
  ``logger.metadataAnnotations``);
- ``Content-Type``: the request's (the response event reuses it).

Bodies (``docs/samples/logger/basic/README.md``; the open inference protocol in
``python/kserve/kserve/protocol/rest/v2_datamodels.py``): v1 ``{"instances": [...]}`` →
``{"predictions": [...]}``; v2 ``{"inputs": [{"name", "shape", "datatype", "data"}]}`` →
``{"model_name", "model_version", "outputs": [tensors]}``, tensor data flat in row-major
order or nested by row.

Each instance becomes a ``Prediction``: id ``ce-id`` (``ce-id/i`` for the i-th of a batch
of several — a caller that sets ``Ce-Id`` on its inference request knows the ids to label),
model the InferenceService, version from the configured source, time the request's
``ce-time``, attributes from the configured fields of the instance, and predicted class or
value and score from the response row: a scalar is the prediction; a list of probabilities
predicts its argmax, the positive class's probability (``positive_index``, binary models)
being the score; an object gives both by the configured keys.
"""

import json
import math
import re
from collections import Counter, OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import ValidationError

from ..api.vocabulary import LABEL_VERSION
from .records import Prediction

REQUEST = "org.kubeflow.serving.inference.request"
RESPONSE = "org.kubeflow.serving.inference.response"
SPEC_VERSION = "1.0"
# `name`, `name[k]` or `[k]`: a key (v1 object instance) or an input tensor (v2), and a
# column of it; `[k]` alone is a position in a v1 list instance.
FIELD = re.compile(r"^(?P<key>[^\[\]]+)?(?:\[(?P<column>\d+)\])?$")


class Reject(StrEnum):
    """Why an event yields no prediction; the field names where."""

    MISSING_HEADER = "MissingHeader"
    UNSUPPORTED = "Unsupported"  # a specversion or ce-type this is not for
    NOT_JSON = "NotJSON"
    UNKNOWN_BODY = "UnknownBody"  # neither v1 nor v2
    BAD_TENSOR = "BadTensor"
    BAD_ROW = "BadRow"  # a response row that is no prediction
    BATCH_MISMATCH = "BatchMismatch"  # expected: instances, got: predictions
    MISSING_VERSION = "MissingVersion"
    DUPLICATE = "Duplicate"  # the same half of a ce-id already waits
    TOO_LARGE = "TooLarge"  # more instances than the buffer holds (expected: max_rows)
    INVALID = "Invalid"  # the prediction built breaks the record's rules


class Drop(StrEnum):
    """Why a waiting half was let go without its other half."""

    EXPIRED = "Expired"  # waited longer than max_age (a failed request has no response)
    EVICTED = "Evicted"  # the oldest, to make room (max_pending halves, max_rows rows)


@dataclass(frozen=True)
class Rejection:
    reason: Reject
    field: str
    expected: int | None = None
    got: int | None = None


@dataclass(frozen=True)
class VersionFrom:
    """Where a prediction's version comes from: ``annotation:<key>`` (``ce-annotations``),
    ``header:<name>`` (``ce-metadata``), ``response`` (the v2 response's
    ``model_version``) or ``endpoint`` (``ce-endpoint``)."""

    source: Literal["annotation", "header", "response", "endpoint"]
    name: str = ""

    @classmethod
    def parse(cls, text: str) -> "VersionFrom":
        source, _, name = text.partition(":")
        if source in ("annotation", "header") and name:
            return cls(source, name)  # type: ignore[arg-type]
        if source in ("response", "endpoint") and not name:
            return cls(source)  # type: ignore[arg-type]
        raise ValueError(
            f"version source {text!r}: annotation:<key>, header:<name>, response or endpoint"
        )

    @property
    def field(self) -> str:
        where = {
            "annotation": "ce-annotations",
            "header": "ce-metadata",
            "response": "model_version",
            "endpoint": "ce-endpoint",
        }[self.source]
        return f"{where}.{self.name}" if self.name else where


@dataclass(frozen=True)
class KServeConfig:
    attributes: Mapping[str, str] = field(default_factory=dict)  # attribute -> field
    version: VersionFrom = VersionFrom("annotation", LABEL_VERSION)
    positive_index: int = 1  # the positive class's column in a row of probabilities
    prediction_key: str = "predicted"  # of an object row (v1)
    score_key: str = "score"
    prediction_output: str | None = None  # v2: the output tensor; None: the first
    score_output: str | None = None  # v2: a separate tensor of scores
    max_pending: int = 10_000  # halves waiting for their other half
    max_rows: int = 100_000  # instances (or prediction rows) they hold, in all
    max_age: float = 60.0  # seconds a half waits

    def __post_init__(self) -> None:
        for attribute, path in self.attributes.items():
            if not FIELD.match(path) or path == "":
                raise ValueError(f"attribute {attribute}: field {path!r} is not key, key[k] or [k]")


@dataclass(frozen=True)
class _Request:
    model: str
    version: str | None
    time: float
    attributes: list[dict[str, str]]

    @property
    def count(self) -> int:
        return len(self.attributes)


@dataclass(frozen=True)
class _Response:
    version: str | None
    rows: list[tuple[float | str, float | None]]  # (predicted, score)

    @property
    def count(self) -> int:
        return len(self.rows)


@dataclass(frozen=True)
class _Waiting:
    """One half, waiting for the other."""

    arrived: float
    half: _Request | _Response


class _Refused(Exception):
    def __init__(self, rejection: Rejection) -> None:
        self.rejection = rejection


def _refuse(
    reason: Reject, where: str, expected: int | None = None, got: int | None = None
) -> _Refused:
    return _Refused(Rejection(reason, where, expected, got))


class KServePairer:
    """Pairs request and response events by ``ce-id`` (either may come first), in a buffer
    bounded in halves, in the rows they hold and in age; ``dropped`` counts the halves let
    go, by reason. One caller at a time (the service's worker thread)."""

    def __init__(self, config: KServeConfig) -> None:
        self.config = config
        self.dropped: Counter[Drop] = Counter()
        self._waiting: OrderedDict[str, _Waiting] = OrderedDict()
        self._rows = 0  # instances or prediction rows held by the waiting halves

    @property
    def pending(self) -> int:
        return len(self._waiting)

    def add(
        self, headers: Mapping[str, str], body: bytes, now: float
    ) -> list[Prediction] | Rejection:
        """The predictions this event completes (none while its other half is missing)."""
        self.expire(now)
        try:
            return self._add({k.lower(): v for k, v in headers.items()}, body, now)
        except _Refused as refused:
            return refused.rejection

    def expire(self, now: float) -> None:
        while self._waiting:
            oldest = next(iter(self._waiting.values()))
            if now - oldest.arrived <= self.config.max_age:
                return
            self._drop_oldest(Drop.EXPIRED)

    def _add(self, headers: dict[str, str], body: bytes, now: float) -> list[Prediction]:
        for name in ("ce-specversion", "ce-id", "ce-type"):
            if not headers.get(name):
                raise _refuse(Reject.MISSING_HEADER, name)
        if headers["ce-specversion"] != SPEC_VERSION:
            raise _refuse(Reject.UNSUPPORTED, "ce-specversion")
        kind = headers["ce-type"]
        if kind not in (REQUEST, RESPONSE):
            raise _refuse(Reject.UNSUPPORTED, "ce-type")
        event_id = headers["ce-id"]
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, ValueError):
            raise _refuse(Reject.NOT_JSON, "body") from None
        if not isinstance(payload, dict):
            raise _refuse(Reject.UNKNOWN_BODY, "body")
        waiting = self._waiting.get(event_id)
        if waiting is not None and isinstance(waiting.half, _Request) == (kind == REQUEST):
            raise _refuse(Reject.DUPLICATE, "ce-id")
        half = self._request(headers, payload, now) if kind == REQUEST else self._response(payload)
        if half.count > self.config.max_rows:
            raise _refuse(Reject.TOO_LARGE, "body", self.config.max_rows, half.count)
        if waiting is not None:  # its other half waits: a pair
            del self._waiting[event_id]
            self._rows -= waiting.half.count
            if isinstance(half, _Request) and isinstance(waiting.half, _Response):
                return self._predictions(event_id, half, waiting.half)
            assert isinstance(half, _Response)
            assert isinstance(waiting.half, _Request)
            return self._predictions(event_id, waiting.half, half)
        while self._waiting and (
            len(self._waiting) >= self.config.max_pending
            or self._rows + half.count > self.config.max_rows
        ):
            self._drop_oldest(Drop.EVICTED)
        self._waiting[event_id] = _Waiting(now, half)
        self._rows += half.count
        return []

    def _drop_oldest(self, why: Drop) -> None:
        _, dropped = self._waiting.popitem(last=False)
        self._rows -= dropped.half.count
        self.dropped[why] += 1

    def _request(self, headers: dict[str, str], payload: dict[str, Any], now: float) -> _Request:
        model = headers.get("ce-inferenceservicename")
        if not model:
            raise _refuse(Reject.MISSING_HEADER, "ce-inferenceservicename")
        version = self._version(headers)
        time = _time(headers.get("ce-time"), now)
        if isinstance(payload.get("instances"), list):
            attributes = [self._v1_attributes(i) for i in payload["instances"]]
        elif isinstance(payload.get("inputs"), list):
            attributes = self._v2_attributes(payload["inputs"])
        else:
            raise _refuse(Reject.UNKNOWN_BODY, "body.instances")
        return _Request(model, version, time, attributes)

    def _version(self, headers: dict[str, str]) -> str | None:
        source = self.config.version
        if source.source == "endpoint":
            return headers.get("ce-endpoint") or None
        if source.source == "response":
            return None
        header = "ce-annotations" if source.source == "annotation" else "ce-metadata"
        try:
            found = json.loads(headers.get(header) or "{}")
        except ValueError:
            raise _refuse(Reject.NOT_JSON, header) from None
        if not isinstance(found, dict):
            raise _refuse(Reject.NOT_JSON, header)
        if source.source == "annotation":
            value = found.get(source.name)
            return value if isinstance(value, str) and value else None
        for name, values in found.items():  # Go's canonical header names
            if name.lower() == source.name.lower() and isinstance(values, list) and values:
                return str(values[0]) or None
        return None

    def _v1_attributes(self, instance: Any) -> dict[str, str]:
        out: dict[str, str] = {}
        for attribute, path in self.config.attributes.items():
            value = _pick_v1(instance, path)
            if value is not None:
                out[attribute] = value
        return out

    def _v2_attributes(self, inputs: list[Any]) -> list[dict[str, str]]:
        tensors = {t.get("name"): (i, t) for i, t in enumerate(inputs) if isinstance(t, dict)}
        count = None
        out: list[dict[str, str]] | None = None
        for attribute, path in self.config.attributes.items():
            match = FIELD.match(path)
            assert match is not None
            found = tensors.get(match["key"])
            if found is None:
                continue
            rows = _rows(found[1], f"inputs[{found[0]}]")
            column = int(match["column"]) if match["column"] is not None else None
            if out is None:
                count, out = len(rows), [{} for _ in rows]
            elif len(rows) != count:
                raise _refuse(Reject.BAD_TENSOR, f"inputs[{found[0]}].shape", count, len(rows))
            for row, attributes in zip(rows, out, strict=True):
                value = _cell(row, column)
                if value is not None:
                    attributes[attribute] = value
        if out is None:  # no configured attribute: the batch size from any input
            first = next((t for t in inputs if isinstance(t, dict)), None)
            if first is None:
                raise _refuse(Reject.BAD_TENSOR, "inputs[0]")
            out = [{} for _ in _rows(first, "inputs[0]")]
        return out

    def _response(self, payload: dict[str, Any]) -> _Response:
        if isinstance(payload.get("predictions"), list):
            rows = [self._row(r, f"predictions[{i}]") for i, r in enumerate(payload["predictions"])]
            return _Response(None, rows)
        outputs = payload.get("outputs")
        if not isinstance(outputs, list) or not outputs:
            raise _refuse(Reject.UNKNOWN_BODY, "body.predictions")
        named = {t.get("name"): (i, t) for i, t in enumerate(outputs) if isinstance(t, dict)}
        wanted = self.config.prediction_output
        index, tensor = named.get(wanted, (-1, None)) if wanted else (0, outputs[0])
        if tensor is None:
            raise _refuse(Reject.BAD_TENSOR, f"outputs.{wanted}")
        where = f"outputs[{index}]"
        rows = [self._row(r, f"{where}.data[{i}]") for i, r in enumerate(_rows(tensor, where))]
        if self.config.score_output:
            found = named.get(self.config.score_output)
            if found is None:
                raise _refuse(Reject.BAD_TENSOR, f"outputs.{self.config.score_output}")
            scores = _rows(found[1], f"outputs[{found[0]}]")
            if len(scores) != len(rows):
                raise _refuse(
                    Reject.BAD_TENSOR, f"outputs[{found[0]}].shape", len(rows), len(scores)
                )
            rows = [
                (predicted, self._score(s, f"outputs[{found[0]}].data[{i}]"))
                for i, ((predicted, _), s) in enumerate(zip(rows, scores, strict=True))
            ]
        version = payload.get("model_version")
        return _Response(version if isinstance(version, str) and version else None, rows)

    def _row(self, row: Any, where: str) -> tuple[float | str, float | None]:
        if isinstance(row, list) and len(row) == 1:
            row = row[0]
        if isinstance(row, bool):
            return float(row), None
        if isinstance(row, str) or _number(row):
            return (row if isinstance(row, str) else float(row)), None
        if isinstance(row, list) and row and all(_number(p) for p in row):
            best = max(range(len(row)), key=row.__getitem__)
            score = float(row[self.config.positive_index]) if len(row) == 2 else None
            return float(best), score
        if isinstance(row, dict) and self.config.prediction_key in row:
            predicted = row[self.config.prediction_key]
            if not (isinstance(predicted, str) or _number(predicted)):
                raise _refuse(Reject.BAD_ROW, f"{where}.{self.config.prediction_key}")
            score = row.get(self.config.score_key)
            if score is not None and not _number(score):
                raise _refuse(Reject.BAD_ROW, f"{where}.{self.config.score_key}")
            return (
                predicted if isinstance(predicted, str) else float(predicted),
                None if score is None else float(score),
            )
        raise _refuse(Reject.BAD_ROW, where)

    def _score(self, row: Any, where: str) -> float:
        if isinstance(row, list) and len(row) == 1:
            row = row[0]
        if isinstance(row, list) and len(row) == 2 and all(_number(p) for p in row):
            return float(row[self.config.positive_index])
        if _number(row):
            return float(row)
        raise _refuse(Reject.BAD_ROW, where)

    def _predictions(
        self, event_id: str, request: _Request, response: _Response
    ) -> list[Prediction]:
        if len(request.attributes) != len(response.rows):
            raise _refuse(
                Reject.BATCH_MISMATCH, "predictions", len(request.attributes), len(response.rows)
            )
        version = response.version if self.config.version.source == "response" else request.version
        if version is None:
            raise _refuse(Reject.MISSING_VERSION, self.config.version.field)
        several = len(response.rows) > 1
        out = []
        for i, (attributes, (predicted, score)) in enumerate(
            zip(request.attributes, response.rows, strict=True)
        ):
            try:
                out.append(
                    Prediction(
                        id=f"{event_id}/{i}" if several else event_id,
                        model=request.model,
                        version=version,
                        time=request.time,
                        attributes=attributes,
                        predicted=predicted,
                        score=score,
                    )
                )
            except ValidationError as error:
                where = ".".join(str(p) for p in error.errors()[0]["loc"])
                raise _refuse(Reject.INVALID, where) from None
        return out


def _number(value: Any) -> bool:
    """A finite JSON number (not a bool; no integer too large for a float)."""
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**53


def _time(text: str | None, now: float) -> float:
    """RFC 3339 (Go writes up to nine fractional digits: Python keeps six); ``now`` when
    absent, UTC when it names no zone."""
    if not text:
        return now
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise _refuse(Reject.UNSUPPORTED, "ce-time") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or _number(value):
        return json.dumps(value)
    return None


def _cell(row: Any, column: int | None) -> str | None:
    if column is None:
        if isinstance(row, list) and len(row) == 1:
            row = row[0]
        return _text(row)
    if isinstance(row, list) and column < len(row):
        return _text(row[column])
    return None


def _pick_v1(instance: Any, path: str) -> str | None:
    match = FIELD.match(path)
    assert match is not None
    key, column = match["key"], match["column"]
    if key is None:
        return _cell(instance, int(column)) if isinstance(instance, list) else None
    if not isinstance(instance, dict) or key not in instance:
        return None
    return _cell(instance[key], None if column is None else int(column))


def _rows(tensor: Any, where: str) -> list[Any]:
    """A v2 tensor's rows: the first dimension, each row a scalar or a flat list."""
    if not isinstance(tensor, dict):
        raise _refuse(Reject.BAD_TENSOR, where)
    shape, data = tensor.get("shape"), tensor.get("data")
    if (
        not isinstance(shape, list)
        or not 1 <= len(shape) <= 2
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise _refuse(Reject.BAD_TENSOR, f"{where}.shape")
    if not isinstance(data, list):
        raise _refuse(Reject.BAD_TENSOR, f"{where}.data")
    count = shape[0]
    width = shape[1] if len(shape) == 2 else None
    if width is None:
        if len(data) != count:
            raise _refuse(Reject.BAD_TENSOR, f"{where}.data", count, len(data))
        return data
    if len(data) == count and all(isinstance(r, list) and len(r) == width for r in data):
        return data
    if len(data) != count * width:
        raise _refuse(Reject.BAD_TENSOR, f"{where}.data", count * width, len(data))
    return [data[i * width : (i + 1) * width] for i in range(count)]
