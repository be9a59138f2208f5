"""The operator's /metrics, written to the socket as it is rendered.

prometheus-client renders a whole scrape before it sends a byte: every sample a
``Sample`` with a dict of labels, every line a string, then all of them joined, then
encoded (and gzipped). At 1000 Models the per-Model families are about 100 000 samples,
and one scrape held 28 MiB for the time it took. Here the per-Model families render
their lines straight from what they hold (``Streamed``), the rest family by family
through prometheus-client's own text format, and the bytes go out in chunks of
``CHUNK_BYTES``: a scrape holds one chunk, whatever the fleet. The text is prometheus'
0.0.4 format, the same bytes ``generate_latest`` would give.
"""

import functools
import logging
import math
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol, cast, runtime_checkable

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
    """A collector that renders its own exposition text, piece by piece."""

    def text(self) -> Iterator[str]: ...


class Labels:
    """The label names of a family, rendered in the order prometheus-client writes them
    (sorted by name), for values given in the family's declared order."""

    def __init__(self, names: Sequence[str]) -> None:
        order = sorted(range(len(names)), key=names.__getitem__)
        pairs = [f'{names[i]}="{{{i}}}"' for i in order]  # format fields: the values
        self._size = len(names)
        self._format = "{{" + ",".join(pairs) + "}}"
        # The label set around the last name's value, filled once for many lines.
        at = order.index(len(names) - 1)
        self._head = "{{" + "".join(f"{p}," for p in pairs[:at]) + f'{names[-1]}="'
        self._tail = '"' + "".join(f",{p}" for p in pairs[at + 1 :]) + "}}"

    def lines(
        self, metric: str, values: Sequence[str], samples: Iterable[tuple[Sequence[str], float]]
    ) -> str:
        """The lines of samples sharing ``values``: those of every label, each sample's
        rest then empty; or of every label but the last, each sample's rest its value.
        The shared part is rendered once: a line costs a join, not a format."""
        shared = [_escape(v) for v in values]
        if len(shared) == self._size:
            labels = self._format.format(*shared)
            return "".join(f"{metric}{labels} {_number_text(n)}\n" for _, n in samples)
        head, tail = metric + self._head.format(*shared), self._tail.format(*shared)
        return "".join(f"{head}{_escape(last)}{tail} {_number_text(n)}\n" for (last,), n in samples)


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


def pieces(collectors: Iterable[object]) -> Iterator[str]:
    """The exposition text of ``collectors``, in their order, a piece at a time."""
    for collector in collectors:
        if isinstance(collector, Streamed):
            yield from collector.text()
            continue
        for metric in cast(Collector, collector).collect():
            yield generate_latest(_One(metric)).decode()


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


def body(collectors: Iterable[object], size: int = CHUNK_BYTES) -> Iterator[bytes]:
    """A scrape of ``collectors``: their text, encoded, in chunks of about ``size``."""
    return chunks(pieces(collectors), size)


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
    """Serve the exposition of ``collectors()`` on every path, in a daemon thread."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # no Content-Length known: the body ends at close

        def do_GET(self) -> None:
            if self.path == "/favicon.ico":
                self.send_error(404)
                return
            sent = body(collectors())
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
