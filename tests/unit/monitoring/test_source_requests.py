"""What an instant query puts on the wire: its PromQL and timeout in a POST's form body,
never in the URL, however long the combined query; and how its answer is read (a local
server records the request and gives the answer)."""

import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from modelloop.monitoring.providers import Credentials, ProviderConfig
from modelloop.monitoring.series import BoundedRegistry
from modelloop.monitoring.source import PrometheusSource
from modelloop.monitoring.telemetry import Telemetry

ANSWER = {"status": "success", "data": {"resultType": "vector", "result": []}}


class Recorder(BaseHTTPRequestHandler):
    seen: ClassVar[list[dict[str, Any]]] = []
    payload: ClassVar[bytes] = json.dumps(ANSWER).encode()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        Recorder.seen.append(
            {
                "path": self.path,
                "type": self.headers["Content-Type"],
                "form": urllib.parse.parse_qs(body),
            }
        )
        payload = Recorder.payload
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def prometheus() -> Iterator[str]:
    Recorder.seen = []
    Recorder.payload = json.dumps(ANSWER).encode()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def source(url: str) -> PrometheusSource:
    config = ProviderConfig(name="p", url=url, timeout="7s")
    return PrometheusSource(config, Credentials(), Telemetry(BoundedRegistry()))


@pytest.mark.parametrize("size", [1, 100_000])
def test_the_query_goes_in_the_body(prometheus: str, size: int) -> None:
    query = 'sum(up{job=~"' + "|".join(f"j{i}" for i in range(size)) + '"})'
    answer = source(prometheus).query(query)
    assert (answer.error, answer.result) == (None, [])
    [request] = Recorder.seen
    assert request["path"] == "/api/v1/query"  # nothing in the URL
    assert request["type"] == "application/x-www-form-urlencoded"
    assert request["form"] == {"query": [query], "timeout": ["7"]}


def series(value: str, **labels: str) -> dict[str, Any]:
    return {"metric": labels, "value": [1764806400.125, value]}


@pytest.mark.parametrize(
    "result",
    [
        [series("0.93", model="m0", version="m0-v1", region="eu", modelloop_part="0")],
        [series(v, model="m0", modelloop_part=str(i)) for i, v in enumerate(("NaN", "+Inf", "-0"))],
        [series("1e-300", model="größe", slice="日本", quote='a"b\\c')],
        [series("2", model=f"m{i}", region=f"r{i % 10}") for i in range(5000)],
    ],
)
def test_an_answer_reads_as_the_json_it_is(prometheus: str, result: list[dict[str, Any]]) -> None:
    """The answer's reader is not the stdlib's: it must give the same objects."""
    written = {"status": "success", "data": {"resultType": "vector", "result": result}}
    Recorder.payload = json.dumps(written, ensure_ascii=False).encode()
    answer = source(prometheus).query("up")
    assert (answer.error, answer.result) == (None, result)


@pytest.mark.parametrize(
    "payload", [b"<html>502 Bad Gateway</html>", b'{"status": "success"}', b'{"data": ']
)
def test_an_answer_that_is_not_prometheus_json_is_a_bad_response(
    prometheus: str, payload: bytes
) -> None:
    Recorder.payload = payload
    answer = source(prometheus).query("up")
    assert answer.result is None
    assert answer.error is not None
    assert answer.error.startswith("Prometheus p: bad response: ")
