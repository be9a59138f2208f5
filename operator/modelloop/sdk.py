"""For trainers: report a training's result to ModelLoop; for model servers and the
systems that know the truth: send predictions and labels to the feedback service
(``FeedbackClient``, at the end).

    from modelloop.sdk import report
    report(
        "s3://models/fraud/7/model.joblib",
        candidate={("precision", "eu"): 0.91, ("precision", "us"): 0.88},
        champion={("precision", "eu"): 0.90, ("precision", "us"): 0.89},
        samples={("precision", "eu"): 1200, ("precision", "us"): 800},
    )

For a proportion over the held-out examples (accuracy), also give the paired counts —
``pairs={("accuracy", "eu"): count_pairs(candidate_right, champion_right)}`` — and the
gate judges a regression by the examples where the two disagree: a paired test, much
more sensitive than comparing the two values.

It writes one compact JSON object to the termination message, which the operator
reads from the finished pod, and refuses a result the kubelet would truncate. In a
training workload (a TrainJob, a PyTorchJob, a Ray job's driver: MODELLOOP_RESULT_CONFIGMAP
is set) it writes the same object to that ConfigMap instead, through the API server with
the pod's ServiceAccount token — the only object that account may write. Call it once,
from one process (rank 0, or the Ray driver).
"""

import json
import math
import os
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from .feedback.records import Label, Prediction
from .retraining.result import MAX_BYTES, RESULT_CONFIGMAP_ENV, RESULT_KEY, parse_result

TERMINATION_LOG = "/dev/termination-log"
"""Where the kubelet reads the termination message (a container's default
terminationMessagePath). The variable MODELLOOP_TERMINATION_LOG overrides it, for
running a trainer outside a pod."""
SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
"""Where a pod's ServiceAccount token and the cluster's CA are mounted. The variable
MODELLOOP_SERVICE_ACCOUNT_DIR overrides it, for running a trainer outside a pod."""
Metrics = Mapping[tuple[str, str], float]


class Pairs(NamedTuple):
    """Where the candidate and the champion disagree on the same held-out examples."""

    candidate_only: int  # counted for the candidate only (accuracy: only it is right)
    champion_only: int  # counted for the champion only (accuracy: only it is right)


def count_pairs(candidate_hits: Iterable[bool], champion_hits: Iterable[bool]) -> Pairs:
    """The paired counts of a proportion from each example's outcome for both models (for
    accuracy: whether each predicted it right), in the same order of examples."""
    candidate_only = champion_only = 0
    for mine, theirs in zip(candidate_hits, champion_hits, strict=True):
        candidate_only += bool(mine and not theirs)
        champion_only += bool(theirs and not mine)
    return Pairs(candidate_only, champion_only)


def _rows(
    metrics: Metrics,
    samples: Mapping[tuple[str, str], int] | None,
    pairs: Mapping[tuple[str, str], Pairs] | None = None,
) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for (metric, slice_), value in sorted(metrics.items()):
        if not math.isfinite(value):
            raise ValueError(f"{metric} on slice {slice_} is {value}: report finite values")
        row: dict[str, object] = {"metric": metric, "slice": slice_, "value": value}
        if samples and (metric, slice_) in samples:
            row["samples"] = samples[(metric, slice_)]
        if pairs and (metric, slice_) in pairs:
            counted = pairs[(metric, slice_)]
            row["pairs"] = {
                "candidateOnly": counted.candidate_only,
                "championOnly": counted.champion_only,
            }
        rows.append(row)
    return rows


def report(
    artifact_uri: str,
    candidate: Metrics,
    champion: Metrics | None = None,
    *,
    digest: str | None = None,
    samples: Mapping[tuple[str, str], int] | None = None,
    pairs: Mapping[tuple[str, str], Pairs] | None = None,
    path: str | None = None,
) -> str:
    """Write the result; returns the JSON written. ``pairs`` go on the candidate's rows and
    need the champion's value and the samples of the same metric and slice. Raises
    ValueError when it would not fit in a termination message or would not pass the
    operator's validation; ResultWriteError when the API server refuses the ConfigMap's
    update. ``path``: write to this file, whatever the environment says."""
    unpaired = sorted(set(pairs or {}) - (set(candidate) & set(champion or {})))
    if unpaired:
        raise ValueError(f"pairs for {unpaired}: report both values of each pair")
    result: dict[str, object] = {
        "artifactURI": artifact_uri,
        "metrics": {
            "candidate": _rows(candidate, samples, pairs),
            "champion": _rows(champion or {}, samples),
        },
    }
    if digest is not None:
        result["digest"] = digest
    text = json.dumps(result, separators=(",", ":"))
    if len(text.encode()) > MAX_BYTES:
        raise ValueError(
            f"the result is {len(text.encode())} bytes; a termination message holds {MAX_BYTES}: "
            "report fewer metrics or slices"
        )
    parse_result(text)  # the same check the operator makes
    configmap = os.environ.get(RESULT_CONFIGMAP_ENV)
    if path is None and configmap:
        _write_configmap(os.environ["MODELLOOP_NAMESPACE"], configmap, text)
        return text
    Path(path or os.environ.get("MODELLOOP_TERMINATION_LOG") or TERMINATION_LOG).write_text(text)
    return text


class ResultWriteError(Exception):
    """The API server refused the result ConfigMap's read or update (``status``: HTTP)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _write_configmap(namespace: str, name: str, text: str, attempts: int = 3) -> None:
    """Put ``text`` under the ConfigMap's result key: a read, then an update guarded by its
    resourceVersion (retried on a conflict), with the pod's ServiceAccount token."""
    account = Path(os.environ.get("MODELLOOP_SERVICE_ACCOUNT_DIR") or SERVICE_ACCOUNT)
    token = (account / "token").read_text().strip()
    host = os.environ["KUBERNETES_SERVICE_HOST"]
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    url = f"https://{f'[{host}]' if ':' in host else host}:{port}"
    url += f"/api/v1/namespaces/{namespace}/configmaps/{name}"
    tls = ssl.create_default_context(cafile=str(account / "ca.crt"))
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    for attempt in range(attempts):
        configmap = _kube_call(urllib.request.Request(url, headers=headers), tls)
        configmap["data"] = {**(configmap.get("data") or {}), RESULT_KEY: text}
        body = json.dumps(configmap).encode()
        try:
            _kube_call(urllib.request.Request(url, body, headers, method="PUT"), tls)
            return
        except ResultWriteError as error:
            if error.status != 409 or attempt == attempts - 1:
                raise


def _kube_call(request: urllib.request.Request, tls: ssl.SSLContext) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(request, timeout=30, context=tls) as response:
            answer: dict[str, Any] = json.loads(response.read())
            return answer
    except urllib.error.HTTPError as error:
        with error:
            said = _json(error.read()).get("message", "")
        raise ResultWriteError(
            error.code, f"{request.get_method()} {request.full_url}: HTTP {error.code}: {said}"
        ) from None


class FeedbackError(Exception):
    """The feedback service refused a batch (``status``: its HTTP status, ``reason``: its
    reason code, ``errors``: the fields it named), or could not be reached (status 0)."""

    def __init__(
        self, status: int, reason: str, errors: list[dict[str, str]] | None = None
    ) -> None:
        self.status = status
        self.reason = reason
        self.errors = errors or []
        named = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in self.errors)
        super().__init__(
            f"feedback service: HTTP {status} {reason}" + (f": {named}" if named else "")
        )


@dataclass
class Sent:
    """What the service did with the records sent, summed over the batches."""

    received: int = 0
    joined: int = 0
    waiting: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # by reason: duplicate, ...

    def add(self, answer: Mapping[str, Any]) -> None:
        self.received += int(answer.get("received", 0))
        self.joined += int(answer.get("joined", 0))
        self.waiting += int(answer.get("waiting", 0))
        for reason, count in (answer.get("skipped") or {}).items():
            self.skipped[reason] = self.skipped.get(reason, 0) + int(count)


Record = Mapping[str, Any] | Prediction | Label
# Worth sending again: the service could not take the batch now. Sending a batch again is
# safe: the service counts each id once (what it took the first time is a duplicate).
_TRANSIENT = frozenset({429, 502, 503, 504})


class FeedbackClient:
    """Sends predictions and labels to the feedback service at ``url``, in batches.

        client = FeedbackClient("http://modelloop-feedback.ml:8080")
        client.predictions([{"id": "r-17", "model": "fraud", "version": "fraud-v3",
                             "attributes": {"region": "eu"}, "predicted": "1", "score": 0.83}])
        client.labels([{"id": "r-17", "label": "0"}])

    A record is a dict in the service's wire form (camelCase) or a ``Prediction`` /
    ``Label``; a dict without ``time`` is stamped with the time it is sent. Each request
    has a ``timeout``; a batch the service cannot take now (503 when its store is full,
    502/504, 429, a connection error) is sent again up to ``retries`` times, waiting as it
    asks (``Retry-After``, at most ``max_wait`` seconds) or doubling from ``backoff``; a
    batch too large for it (413) is split in two. Anything else raises ``FeedbackError``
    with the service's reason and the fields it named.
    """

    def __init__(
        self,
        url: str,
        *,
        batch_size: int = 1000,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.5,
        max_wait: float = 30.0,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.url = url.rstrip("/")
        self.batch_size = batch_size
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_wait = max_wait

    def predictions(self, predictions: Iterable[Record]) -> Sent:
        return self._send("predictions", predictions)

    def labels(self, labels: Iterable[Record]) -> Sent:
        return self._send("labels", labels)

    def _send(self, kind: str, records: Iterable[Record]) -> Sent:
        sent = Sent()
        for batch in _batches(records, self.batch_size):
            self._post(kind, batch, sent)
        return sent

    def _post(self, kind: str, batch: list[dict[str, Any]], sent: Sent) -> None:
        body = json.dumps({kind: batch}, separators=(",", ":")).encode()
        attempt = 0
        while True:
            status, answer, wait = self._request(f"{self.url}/v1/{kind}", body)
            if status == 200:
                sent.add(answer)
                return
            if status == 413 and len(batch) > 1:
                half = len(batch) // 2
                self._post(kind, batch[:half], sent)
                self._post(kind, batch[half:], sent)
                return
            if (status != 0 and status not in _TRANSIENT) or attempt == self.retries:
                raise FeedbackError(status, str(answer.get("error", "")), answer.get("errors"))
            time.sleep(min(wait if wait is not None else self.backoff * 2**attempt, self.max_wait))
            attempt += 1

    def _request(self, url: str, body: bytes) -> tuple[int, dict[str, Any], float | None]:
        """(status, the JSON answer, Retry-After seconds); status 0 when unreachable."""
        request = urllib.request.Request(
            url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, _json(response.read()), None
        except urllib.error.HTTPError as error:
            with error:
                answer = _json(error.read())
                return error.code, answer, _retry_after(error.headers.get("Retry-After"))
        except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
            reason = getattr(error, "reason", error)
            return 0, {"error": f"unreachable ({reason})"}, None


def _batches(records: Iterable[Record], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for record in records:
        if isinstance(record, Prediction | Label):
            wire = record.model_dump(mode="json", by_alias=True)
        else:
            wire = dict(record)
            wire.setdefault("time", time.time())
        batch.append(wire)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _json(body: bytes) -> dict[str, Any]:
    try:
        answer = json.loads(body)
    except ValueError:
        return {"error": body[:200].decode(errors="replace")}
    return answer if isinstance(answer, dict) else {"error": str(answer)[:200]}


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: back off as usual
