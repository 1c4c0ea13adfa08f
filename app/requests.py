"""Reading request bodies within the configured limits, counting bytes as they arrive.

Quart enforces ``MAX_CONTENT_LENGTH`` only on a declared length or a body awaited
whole; a chunked body read in parts, or a per-request limit, slip through. So the
port counts for itself and answers 413 before holding more than the limit.
"""

from __future__ import annotations

import asyncio
from typing import Any

from quart import request
from quart.asgi import ASGIHTTPConnection
from quart.wrappers.request import Body, Request
from werkzeug.exceptions import RequestEntityTooLarge

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
        self._drained = asyncio.Event()
        self._drained.set()

    def __aiter__(self) -> BoundedBody:
        self._streaming = True
        return self

    async def __anext__(self) -> bytes:
        try:
            return await super().__anext__()
        finally:
            self._drained.set()

    def append(self, data: bytes) -> None:
        super().append(data)
        if self._streaming and len(self._data) >= BODY_HIGH_WATER and not self._complete.is_set():
            self._drained.clear()

    def set_complete(self) -> None:
        super().set_complete()
        self._drained.set()

    async def drained(self) -> None:
        await self._drained.wait()


class BoundedRequest(Request):
    body_class = BoundedBody


class BoundedHTTPConnection(ASGIHTTPConnection):
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
