"""The port's request: bodies read within the configured limits, counting bytes as they arrive.

Quart enforces ``MAX_CONTENT_LENGTH`` only on a declared length or a body awaited
whole; a chunked body read in parts, or a per-request limit, slip through. So the
port counts for itself and answers 413 before holding more than the limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from typing import Any

from quart import request
from quart.asgi import ASGIHTTPConnection
from quart.wrappers.request import Body, Request
from werkzeug.exceptions import RequestEntityTooLarge

from .asgi import scope_of
from .protocol import body_follows

# --- Backpressure ---------------------------------------------------------------------
#
# Quart's receiver task copies every ASGI body message into the request's ``Body`` as fast
# as the client sends, whether or not the handler reads: a 1 GiB upload to a slower
# consumer grew the server by 304 MiB, and the loop spent its time copying (measured
# here). Once a handler iterates the body, the receiver here stops taking
# messages while more than ``BODY_HIGH_WATER`` bytes wait unread; Hypercorn's bounded app
# queue then stops reading the socket, and TCP slows the client. A body awaited whole
# (``await request.body``) is never throttled.

BODY_HIGH_WATER = 1024 * 1024


class BoundedBody(Body):
    def __init__(self, expected_content_length: int | None, max_content_length: int | None) -> None:
        super().__init__(expected_content_length, max_content_length)
        self._streaming = False
        self._drained: asyncio.Event | None = None  # made when a reader first falls behind

    def __aiter__(self) -> BoundedBody:
        self._streaming = True
        return self

    async def __anext__(self) -> bytes:
        try:
            return await super().__anext__()
        finally:
            if self._drained is not None:
                self._drained.set()

    def append(self, data: bytes) -> None:
        super().append(data)
        if self._streaming and len(self._data) >= BODY_HIGH_WATER and not self._complete.is_set():
            if self._drained is None:
                self._drained = asyncio.Event()
            self._drained.clear()

    def set_complete(self) -> None:
        super().set_complete()
        if self._drained is not None:
            self._drained.set()

    async def drained(self) -> None:
        if self._drained is not None:
            await self._drained.wait()


class BoundedRequest(Request):
    body_class = BoundedBody
    _blueprints: tuple[object, list[str]] | None = None

    @property
    def blueprints(self) -> list[str]:
        """Quart's, worked out once per matched rule: Quart asks three times a request, ~1 µs
        each (``python -m bench.overhead``), and the rule never changes once matched."""
        rule, cached = self._blueprints or (None, None)
        if cached is None or rule is not self.url_rule:
            cached = super().blueprints
            self._blueprints = (self.url_rule, cached)
        return cached


class BoundedHTTPConnection(ASGIHTTPConnection):
    async def __call__(self, receive: Any, send: Any) -> None:
        if body_follows(scope_of(self)) is False:
            await _Bodiless(self, receive).run(send)
        else:
            await super().__call__(receive, send)

    async def handle_messages(self, request: Request, receive: Any) -> None:
        body = request.body
        while True:
            message = await receive()
            if message["type"] == "http.request":
                body.append(message.get("body", b""))
                if not message.get("more_body", False):
                    body.set_complete()
                elif isinstance(body, BoundedBody):
                    await body.drained()
            elif message["type"] == "http.disconnect":
                return


def check_declared_length(limit: int) -> None:
    if request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge()


async def read_body(limit: int) -> bytes:
    """The whole body, or 413 as soon as it passes ``limit`` bytes."""
    check_declared_length(limit)
    if request.content_length is not None:  # h11 holds the body to the declared length
        body: bytes = await request.body  # Quart types the awaited body Any
        return body
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.body:
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise RequestEntityTooLarge()
    return b"".join(chunks)


# --- Requests without a body ----------------------------------------------------------
#
# Quart runs each request in two tasks of its own: the handler, and a receiver that takes
# the body and watches for the client leaving (then the handler is cancelled). A request
# whose head says no body follows (no Content-Length, no Transfer-Encoding: a GET) has
# nothing to receive but that, so its handler runs in the server's task, and a watcher
# starts only for a request still running ``WATCH_AFTER`` to twice that later (a slow
# download, a long wait): a client that leaves is noticed as before, and a quick answer
# makes no task. Two tasks and their ``asyncio.wait`` were ~10 % of ``GET /json/dict``
# served by Hypercorn (README, "Benchmarks").

WATCH_AFTER = 0.05


class _Bodiless:
    """One request without a body, handled in the current task."""

    def __init__(self, connection: BoundedHTTPConnection, receive: Any) -> None:
        self.connection, self.receive = connection, receive
        self.task = asyncio.current_task()
        self.watcher: asyncio.Task[None] | None = None
        self.left = False  # the client went away; the handler was cancelled for it

    async def run(self, send: Any) -> None:
        request = self.connection._create_request_from_scope(send)
        request.body.set_complete()
        in_flight = _InFlight.of(asyncio.get_running_loop())
        in_flight.add(self)
        try:
            await self.connection.handle_request(request, send)
        except asyncio.CancelledError:
            if self.left and self.task is not None and self.task.cancelling() == 1:
                self.task.uncancel()  # as Quart ends a request whose client left: quietly
                return
            raise
        finally:
            in_flight.requests.pop(self, None)
            if self.watcher is not None:
                self.watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self.watcher

    def watch(self) -> None:
        self.watcher = asyncio.ensure_future(self._watch())

    async def _watch(self) -> None:
        while (await self.receive())["type"] != "http.disconnect":
            pass
        self.left = True
        if self.task is not None:
            self.task.cancel()


class _InFlight:
    """The requests without a body in progress in one event loop. Every ``WATCH_AFTER``
    seconds while there are any, each one that was there at the last look gets its watcher:
    one timer for them all, not one each (a timer a request was ~1 % of ``GET /json/dict``)."""

    _of_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _InFlight] = weakref.WeakKeyDictionary()

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.requests: dict[_Bodiless, bool] = {}  # in progress: seen by a look already
        self.looking = False

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> _InFlight:
        found = cls._of_loop.get(loop)
        if found is None:
            found = cls._of_loop[loop] = cls(loop)
        return found

    def add(self, one: _Bodiless) -> None:
        self.requests[one] = False
        if not self.looking:
            self.looking = True
            self.loop.call_later(WATCH_AFTER, self.look)

    def look(self) -> None:
        for one, seen in list(self.requests.items()):
            if seen:
                del self.requests[one]
                one.watch()
            else:
                self.requests[one] = True
        self.looking = bool(self.requests)
        if self.looking:
            self.loop.call_later(WATCH_AFTER, self.look)
