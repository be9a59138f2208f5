"""What an instant query puts on the wire: its PromQL and timeout in a POST's form body,
never in the URL, however long the combined query (a local server records the request)."""

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

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        Recorder.seen.append(
            {
                "path": self.path,
                "type": self.headers["Content-Type"],
                "form": urllib.parse.parse_qs(body),
            }
        )
        payload = json.dumps(ANSWER).encode()
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
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.mark.parametrize("size", [1, 100_000])
def test_the_query_goes_in_the_body(prometheus: str, size: int) -> None:
    config = ProviderConfig(name="p", url=prometheus, timeout="7s")
    source = PrometheusSource(config, Credentials(), Telemetry(BoundedRegistry()))
    query = 'sum(up{job=~"' + "|".join(f"j{i}" for i in range(size)) + '"})'
    answer = source.query(query)
    assert (answer.error, answer.result) == (None, [])
    [request] = Recorder.seen
    assert request["path"] == "/api/v1/query"  # nothing in the URL
    assert request["type"] == "application/x-www-form-urlencoded"
    assert request["form"] == {"query": [query], "timeout": ["7"]}
