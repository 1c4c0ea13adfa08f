"""Reading request bodies within the SPEC limits, counting bytes as they arrive.

Quart enforces ``MAX_CONTENT_LENGTH`` only on a declared length or a body awaited
whole; a chunked body read in parts, or a per-request limit, slip through. So the
port counts for itself and answers 413 before holding more than the limit.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Generator
from itertools import islice
from typing import Any

from quart import request
from quart.asgi import ASGIHTTPConnection
from quart.wrappers.request import Body, Request
from werkzeug.exceptions import RequestEntityTooLarge

from hostpulse.payloads import unpack


# --- Backpressure ---------------------------------------------------------------------
#
# Quart's receiver task copies every ASGI body message into the request's ``Body`` as fast
# as the client sends, whether or not the handler reads: a 1 GiB upload to a slower
# consumer grew the server by 304 MiB, and the loop spent its time copying (DESIGN,
# "Measured here"). Once a handler iterates the body, the receiver here stops taking
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
        return await request.body
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.body:
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise RequestEntityTooLarge()
    return b"".join(chunks)


# --- Seed 001's bulk JSON post, decoded without stalling the loop ------------------------
#
# ``json.loads`` of the 3.19 MB seed payload holds the GIL ~50 ms (a thread does not
# shield the loop: DESIGN, "Measured here"). simdjson validates the document without
# building its 100,000 objects. Its answer is used only where it provably matches
# ``json.loads``: it refuses NaN, Infinity, integers beyond 64 bits, floats that overflow,
# lone surrogates, invalid or surrogate-encoded UTF-8 and UTF-16/32 bodies, all of which
# ``json.loads`` may accept; every refusal goes to ``json.loads``. Duplicate keys are
# counted as ``json.loads`` keeps them (the last wins), and a document nested deeper than
# ``FAST_MAX_DEPTH`` (where ``json.loads`` may hit the recursion limit) goes to
# ``json.loads`` too.

FAST_MAX_DEPTH = 256
KEYS_PER_STEP = 20_000
_QUOTES_AND_BRACKETS = bytes(b for b in range(256) if b not in b'"[]{}')
_BRACKETS = bytes.maketrans(b"{}", b"[]")
_local = threading.local()

try:
    import simdjson
except ImportError:  # the fast path is optional: json.loads answers alike, slower
    simdjson = None


def _depth_at_most(raw: bytes, limit: int) -> bool:
    """Whether the validated document ``raw`` nests at most ``limit`` deep.

    Escapes go first (``\\\\`` then ``\\"``, left to right as JSON reads them); then only
    quotes and brackets are kept. Where no string holds a bracket, every string is left as
    ``""`` and the quotes pair up; otherwise the answer is unknown, so no. The brackets
    alone then give the depth, one level a pass."""
    if b"\\" in raw:
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    shape = raw.translate(None, _QUOTES_AND_BRACKETS)
    if 2 * shape.count(b'""') != shape.count(b'"'):
        return False
    shape = shape.translate(_BRACKETS, b'"')
    for _ in range(limit):
        if not shape:
            return True
        shape = shape.replace(b"[]", b"")
    return not shape


def _fast_steps(raw: bytes) -> Generator[None, None, dict[str, Any] | None]:
    """``unpack_fast`` in steps of a few milliseconds; it yields where the loop may run."""
    if simdjson is None or not raw.strip():
        return None
    parser = getattr(_local, "parser", None) or simdjson.Parser()
    _local.parser = None  # a parser holds one document at a time: not reused while this one lives
    try:
        document = parser.parse(raw)
    except Exception:  # refused, or beyond simdjson: json.loads decides
        _local.parser = parser
        return None
    try:
        if not isinstance(document, (simdjson.Object, simdjson.Array)):
            return None
        yield
        if not _depth_at_most(raw, FAST_MAX_DEPTH):
            return None
        if isinstance(document, simdjson.Object):
            keys: set[str] = set()
            remaining = document.keys()
            for _ in range(0, len(document), KEYS_PER_STEP):
                keys.update(islice(remaining, KEYS_PER_STEP))
                yield
            items = len(keys)
        else:
            items = len(document)
        return {"status": "success", "bytes": len(raw), "items": items}
    finally:
        del document
        _local.parser = parser


async def unpack_fast(raw: bytes) -> dict[str, Any] | None:
    """``payloads.unpack(raw)`` when simdjson can prove ``json.loads`` would agree, else
    ``None``; the loop runs other work between the steps."""
    steps = _fast_steps(raw)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value
        await asyncio.sleep(0)


async def unpack_body(limit: int) -> dict[str, Any]:
    """Seed 001's ``POST /data/`` answer for the body, as ``payloads.unpack`` answers it, byte
    for byte, without holding the event loop for ``json.loads`` of a large valid body.

    What simdjson refuses is nearly always invalid JSON, which ``json.loads`` rejects at
    the first bad byte; the rare valid documents it declines (NaN, integers over 64 bits,
    nesting over ``FAST_MAX_DEPTH``) are decoded here on the loop. A helper process was
    tried and dropped: Hypercorn's workers are daemonic and may not start children.
    """
    raw = await read_body(limit)
    answer = await unpack_fast(raw)
    return answer if answer is not None else unpack(raw)
