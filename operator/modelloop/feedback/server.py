"""``modelloop feedback``: the feedback service over HTTP (aiohttp).

    POST /v1/predictions  {"predictions": [...]}   POST /v1/labels  {"labels": [...]}
    POST /v1/kserve       one CloudEvent of KServe's inference logger (binary mode)
    GET /metrics                                    GET /healthz

One call at a time on the store and the counts (an asyncio lock): a batch runs on the
event loop itself (a thread hop would cost more than a small batch, and the largest
body takes a fraction of a second), the expiry on a worker thread, in steps of at most
``service.EXPIRE_STEP`` records of each kind (after an outage it may drop a great many:
the batches waiting run between the steps, /healthz answers meanwhile). Memory is
bounded: a body beyond ``maxBodyBytes`` is refused before it is read (413), at most
``_BODIES`` bodies are read at once (the other requests wait, their bytes in the
kernel's buffers), the waiting records live in the store, an expiry step holds at most
``EXPIRE_STEP`` predictions.
"""

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import sys
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from .config import Settings, SettingsError, load, open_store
from .kserve import Reject, Rejection
from .service import KSERVE, Accepted, Feedback, Kind, Refusal, Rejected, Skipped

log = logging.getLogger("modelloop.feedback")
T = TypeVar("T")
_BODIES = 4  # request bodies in memory at once
_RETRY_AFTER = "30"  # seconds, when the store is full
_STATUS = {Refusal.TOO_LARGE: 413, Refusal.NOT_JSON: 400, Refusal.INVALID: 400}


class Server:
    def __init__(self, feedback: Feedback, settings: Settings) -> None:
        self.feedback = feedback
        self.settings = settings
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="feedback-expiry")
        self._bodies = asyncio.Semaphore(_BODIES)
        self._store = asyncio.Lock()

    async def _run(self, call: Callable[..., T], *args: object) -> T:
        """On the event loop, after the store's other calls."""
        async with self._store:
            return call(*args)

    async def _run_aside(self, call: Callable[..., T], *args: object) -> T:
        """On the worker thread, after the store's other calls."""
        async with self._store:
            return await asyncio.get_running_loop().run_in_executor(self._worker, call, *args)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.settings.max_body_bytes)
        app.add_routes(
            [
                web.post("/v1/predictions", self._predictions),
                web.post("/v1/labels", self._labels),
                web.post("/v1/kserve", self._kserve),
                web.get("/metrics", self._metrics),
                web.get("/healthz", self._healthz),
            ]
        )
        app.cleanup_ctx.append(self._lifetime)
        return app

    async def _lifetime(self, app: web.Application) -> AsyncIterator[None]:
        expiry = asyncio.create_task(self._expire_periodically())
        yield
        expiry.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await expiry
        await self._run(self.feedback.store.close)
        self._worker.shutdown()

    async def _expire_periodically(self) -> None:
        every = self.settings.expire_every.delta.total_seconds()
        while True:
            try:
                await self._expire(time.time())
            except Exception:
                log.exception("expiry failed; trying again in %gs", every)
            await asyncio.sleep(every)

    async def _expire(self, now: float) -> None:
        """Everything past the horizon at ``now``, one bounded step at a time: the store
        is released between steps, so the requests waiting for it run in between."""
        more = True
        while more:
            more = await self._run_aside(self.feedback.expire, now)

    async def _predictions(self, request: web.Request) -> web.Response:
        return await self._ingest(request, Kind.PREDICTION, self.feedback.add_predictions)

    async def _labels(self, request: web.Request) -> web.Response:
        return await self._ingest(request, Kind.LABEL, self.feedback.add_labels)

    async def _ingest(
        self, request: web.Request, kind: Kind, add: Callable[[bytes, float], Accepted | Rejected]
    ) -> web.Response:
        length = request.content_length
        if length is not None and length > self.settings.max_body_bytes:
            return _reply(await self._run(self.feedback.refuse, kind, Refusal.TOO_LARGE))
        async with self._bodies:
            try:
                body = await request.read()
            except web.HTTPRequestEntityTooLarge:  # a body without Content-Length
                return _reply(await self._run(self.feedback.refuse, kind, Refusal.TOO_LARGE))
            except ConnectionResetError:
                return self._abandoned(kind)
            return _reply(await self._run(add, body, time.time()))

    async def _kserve(self, request: web.Request) -> web.Response:
        """KServe's logger sends each event once and logs any status but 200 as a failure:
        200 for an event taken (paired or waiting), 400/413 naming the field."""
        length = request.content_length
        if length is not None and length > self.settings.max_body_bytes:
            return _event_reply(await self._run(self.feedback.refuse_event, length))
        async with self._bodies:
            try:
                body = await request.read()
            except web.HTTPRequestEntityTooLarge:
                return _event_reply(await self._run(self.feedback.refuse_event, None))
            except ConnectionResetError:
                return self._abandoned(KSERVE)
            headers = dict(request.headers)
            return _event_reply(
                await self._run(self.feedback.add_event, headers, body, time.time())
            )

    def _abandoned(self, kind: str) -> web.Response:
        """The sender hung up before its body arrived: counted, not an error of ours."""
        self.feedback.abandon(kind)
        return web.Response(status=400)  # nobody is left to read it

    async def _metrics(self, request: web.Request) -> web.Response:
        body = await self._run(self.feedback.metrics)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")


def _reply(result: Accepted | Rejected) -> web.Response:
    if isinstance(result, Rejected):
        return web.json_response(
            {
                "error": result.reason.value,
                "errors": [dataclasses.asdict(e) for e in result.errors],
            },
            status=_STATUS[result.reason],
        )
    full = result.skipped.get(Skipped.CAPACITY, 0) > 0
    return web.json_response(
        {
            "received": result.received,
            "joined": result.joined,
            "waiting": result.waiting,
            "skipped": result.skipped,
        },
        # Full: the client sends the batch again later (what was taken is a duplicate).
        status=503 if full else 200,
        headers={"Retry-After": _RETRY_AFTER} if full else None,
    )


def _event_reply(result: Accepted | Rejection) -> web.Response:
    if isinstance(result, Accepted):
        return _reply(result)
    answer: dict[str, object] = {"error": result.reason.value, "field": result.field}
    answer |= {
        k: v for k, v in (("expected", result.expected), ("got", result.got)) if v is not None
    }
    return web.json_response(answer, status=413 if result.reason is Reject.TOO_LARGE else 400)


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = load(args)
    except SettingsError as error:
        print(f"modelloop feedback: {error}", file=sys.stderr)
        return 2
    feedback = Feedback(settings, open_store(settings))
    host, port = settings.address
    log.info(
        "feedback service on %s:%d, store %s, horizon %s, capacity %d",
        host,
        port,
        settings.store.describe(),
        settings.horizon,
        settings.capacity,
    )
    web.run_app(Server(feedback, settings).app(), host=host, port=port, access_log=None, print=None)
    return 0
