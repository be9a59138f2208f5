"""A real HTTP server on the loopback that plays a remote service (a webhook gate, a
notification receiver, the feedback service): it answers each POST with the reply of its
path (``routes``), else the next scripted ``Reply``, else the default one, and records
what it was sent, in order, with the time it arrived."""

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    # The JSON answered: a value, or a function of what was sent.
    body: Any | Callable[[Any], Any] = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering (cut short when the receiver stops)


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: Any
    at: float  # time.time() when it arrived


class Receiver:
    def __init__(
        self, default: Reply | None = None, routes: Mapping[str, Reply] | None = None
    ) -> None:
        self.replies: list[Reply] = []
        self.default = default or Reply()
        self.routes = dict(routes or {})
        self.received: list[Received] = []
        self.stopping = threading.Event()
        self.in_flight = 0
        self.most_at_once = 0  # requests being answered at the same time, at most
        lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                sent = json.loads(raw) if raw else None
                arrived = Received(self.path, dict(self.headers), sent, time.time())
                receiver.received.append(arrived)
                reply = receiver.routes.get(self.path) or (
                    receiver.replies.pop(0) if receiver.replies else receiver.default
                )
                with lock:
                    receiver.in_flight += 1
                    receiver.most_at_once = max(receiver.most_at_once, receiver.in_flight)
                if reply.delay:
                    receiver.stopping.wait(reply.delay)
                with lock:
                    receiver.in_flight -= 1
                body = reply.body(sent) if callable(reply.body) else reply.body
                data = json.dumps(body).encode()
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (the timeout cases)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self.thread.start()

    def sent_to(self, path: str) -> list[Received]:
        return [r for r in list(self.received) if r.path == path]

    def stop(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@contextmanager
def receiving(
    default: Reply | None = None, routes: Mapping[str, Reply] | None = None
) -> Iterator[Receiver]:
    started = Receiver(default, routes)
    try:
        yield started
    finally:
        started.stop()
