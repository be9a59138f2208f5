"""The operator's /metrics, written to the socket as it is rendered.

prometheus-client renders a whole scrape before it sends a byte: every sample a
``Sample`` with a dict of labels, every line a string, then all of them joined, then
encoded (and gzipped). At 1000 Models the per-Model families are about 100 000 samples,
and one scrape held 28 MiB for the time it took. Here the per-Model families render
their lines straight from what they hold (``Streamed``), the rest family by family
through prometheus-client's own text format, and the bytes go out in chunks of
``CHUNK_BYTES``: a scrape holds one chunk, whatever the fleet. The text is prometheus'
0.0.4 format, the same bytes ``generate_latest`` would give.

As prometheus-client's own server does, ``/metrics?name[]=A&name[]=B`` answers with the
samples named A or B alone (a family's HELP and TYPE kept): a reader that wants one
counter does not pay for the whole fleet's text, nor make the operator render it.
"""

import functools
import logging
import math
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol, cast, runtime_checkable
from urllib.parse import parse_qs, urlsplit

from prometheus_client import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

log = logging.getLogger(__name__)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
CHUNK_BYTES = 64 * 1024
# prometheus-client's rendering of a number (untyped there): "1.0", "NaN", "+Inf", "1e+06".
_number = cast(Callable[[float], str], floatToGoString)


@runtime_checkable
class Streamed(Protocol):
    """A collector that renders its own exposition text, piece by piece; ``describe``
    names its families (each a gauge: its samples are named as the family)."""

    def text(self) -> Iterator[str]: ...

    def describe(self) -> Iterable[Metric]: ...


class Gauge:
    """The lines of one family, each rendered by one ``str.format`` of a template made
    once: the label set in the order prometheus-client writes it (sorted by name), the
    values given in the family's declared order."""

    def __init__(self, metric: str, names: Sequence[str]) -> None:
        self._line = f"{metric}{_label_set(names)} {{{len(names)}}}\n"

    def line(self, values: Sequence[str], number: float) -> str:
        return self._line.format(*map(_escape, values), _number_text(number))


class OneHot:
    """A family whose last label takes each of ``choices`` in turn, 1.0 on the line of
    the current one and 0.0 on the others (a verdict gauge): a sample's lines are one
    ``str.format`` of the block made for its current choice."""

    def __init__(self, metric: str, names: Sequence[str], choices: Sequence[str]) -> None:
        sets = {choice: metric + _label_set(names, last=choice) for choice in choices}
        self._blocks = {
            current: "".join(
                f"{sets[choice]} {'1.0' if choice == current else '0.0'}\n" for choice in choices
            )
            for current in (*choices, None)  # None: no choice is current, every line 0.0
        }

    def lines(self, values: Sequence[str], current: str) -> str:
        block = self._blocks.get(current, self._blocks[None])
        return block.format(*map(_escape, values))


def _label_set(names: Sequence[str], last: str | None = None) -> str:
    """A format template of the label set: ``{i}`` for the i-th declared name's value;
    with ``last`` given, the last name has that (fixed) value and the rest are fields."""
    fields = {name: f"{{{i}}}" for i, name in enumerate(names)}
    if last is not None:
        fields[names[-1]] = _escape(last).replace("{", "{{").replace("}", "}}")
    pairs = ",".join(f'{name}="{fields[name]}"' for name in sorted(names))
    return "{{" + pairs + "}}"


def header(name: str, documentation: str, kind: str) -> str:
    """A family's HELP and TYPE lines."""
    help_ = documentation.replace("\\", r"\\").replace("\n", r"\n")
    return f"# HELP {name} {help_}\n# TYPE {name} {kind}\n"


@functools.lru_cache(maxsize=1 << 16)
def _escape(value: str) -> str:
    """A label value as the text format writes it. Cached: a scrape writes the same few
    values (namespace, Model, version, metric, slice) on hundreds of thousands of lines."""
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


_FLAGS = {0.0: "0.0", 1.0: "1.0"}  # a verdict gauge's numbers, most of every scrape's


def _number_text(value: float) -> str:
    text = _FLAGS.get(value)
    if text is None or math.copysign(1.0, value) < 0:  # -0.0 is written as it is
        return _number(value)
    return text


class _One(Collector):
    """One family, as the registry-like object ``generate_latest`` takes."""

    def __init__(self, metric: Metric) -> None:
        self._metric = metric

    def collect(self) -> Iterable[Metric]:
        return [self._metric]


def pieces(collectors: Iterable[object], names: frozenset[str] | None = None) -> Iterator[str]:
    """The exposition text of ``collectors``, in their order, a piece at a time; with
    ``names``, only the samples of those names."""
    for collector in collectors:
        if isinstance(collector, Streamed):
            if names is None:
                yield from collector.text()
                continue
            if not any(family.name in names for family in collector.describe()):
                continue  # not collected: the per-Model families are the fleet's size
        for metric in cast(Collector, collector).collect():
            kept = metric if names is None else restricted(metric, names)
            if kept is not None:
                yield generate_latest(_One(kept)).decode()


def restricted(metric: Metric, names: frozenset[str]) -> Metric | None:
    """``metric`` with its samples named in ``names`` alone; None when it has none."""
    samples = [sample for sample in metric.samples if sample.name in names]
    if not samples:
        return None
    kept = Metric(metric.name, metric.documentation, metric.type, metric.unit)
    kept.samples = samples
    return kept


def requested_names(path: str) -> frozenset[str] | None:
    """The sample names a request's ``name[]`` parameters ask for; None: all."""
    names = parse_qs(urlsplit(path).query).get("name[]")
    return frozenset(names) if names else None


def chunks(texts: Iterable[str], size: int = CHUNK_BYTES) -> Iterator[bytes]:
    """``texts`` encoded and gathered into chunks of about ``size`` bytes."""
    held: list[str] = []
    length = 0
    for text in texts:
        held.append(text)
        length += len(text)
        if length >= size:
            yield "".join(held).encode()
            held, length = [], 0
    if held:
        yield "".join(held).encode()


def body(
    collectors: Iterable[object],
    size: int = CHUNK_BYTES,
    names: frozenset[str] | None = None,
) -> Iterator[bytes]:
    """A scrape of ``collectors`` (of the samples named in ``names``, when given): their
    text, encoded, in chunks of about ``size``."""
    return chunks(pieces(collectors, names), size)


def gzipped(parts: Iterable[bytes]) -> Iterator[bytes]:
    compressor = zlib.compressobj(wbits=31)  # 31: a gzip header and trailer
    for part in parts:
        packed = compressor.compress(part)
        if packed:
            yield packed
    yield compressor.flush()


def serve(
    host: str, port: int, collectors: Callable[[], Iterable[object]]
) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """Serve the exposition of ``collectors()`` on every path (``?name[]=`` narrows it),
    in a daemon thread."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # no Content-Length known: the body ends at close

        def do_GET(self) -> None:
            if self.path == "/favicon.ico":
                self.send_error(404)
                return
            sent = body(collectors(), names=requested_names(self.path))
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE)
            if "gzip" in (self.headers.get("Accept-Encoding") or ""):
                sent = gzipped(sent)
                self.send_header("Content-Encoding", "gzip")
            self.end_headers()
            for part in sent:
                self.wfile.write(part)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("metrics: " + format, *args)

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="metrics", daemon=True)
    thread.start()
    return server, thread
