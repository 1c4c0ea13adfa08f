"""Connection edges Hypercorn (h11) leaves open, closed here for the port (issue 11).

- **Content-Length with Transfer-Encoding.** h11 lets ``Transfer-Encoding`` win (RFC 9112
  section 6.3) and reads on: whatever a proxy took for the rest of the body is the next
  request, answered (request smuggling). gunicorn refuses the request with 400; so does
  :func:`body_follows` tells ``app/edge.py``, which answers it with ``Connection: close``, so
  nothing behind it is read.
- **Chunk extensions.** h11 accepts anything after a chunk size's ``;`` (``;.*``), a bare CR
  included; gunicorn refuses what RFC 9112 section 7.1.1 does not allow. A proxy and the
  server reading a chunk line differently is how requests are smuggled, so the port reads
  it as gunicorn does: an invalid extension is h11's 400, and the connection is closed.
- **Slow bodies.** Nothing bounded how long a body may take to arrive (Quart's
  ``BODY_TIMEOUT`` is off: ``app/requests.py`` reads bodies itself). :class:`BodyWatch` answers
  408 and closes the connection when no byte of a body has arrived for ``[limits]
  body_timeout`` seconds; a slow but steady upload is never cut.
- **Connections per token.** 5,000 slow bodies of one token grew the workers from ~50 to
  135 MB. Requests in progress and WebSockets are counted per token in each worker
  (after authentication: a request without a valid token is answered 401 at once and its
  connection closed); past ``[limits] connections_per_token`` the answer is 429. The slot
  is taken by the authentication hook (``app/interceptors.py``) and given back by
  ``app/edge.py`` once the answer is sent or the WebSocket closed: a slow download holds it.

An agent's idle WebSocket (``[limits] websocket_idle_timeout``) is closed by its route,
``app/views/metrics.py``, which knows when acks are still due.

- **Per-message cost of ``/ws/agent``.** Quart puts every WebSocket message through a task
  of its own that feeds a queue, two blinker signals and an ``asyncio.sleep(0)`` per send.
  :class:`DirectWebsocketConnection` lets the routes of :data:`DIRECT_WEBSOCKET_PATHS` read
  and write the ASGI messages themselves (:func:`asgi_of`); the handshake, hooks and errors
  stay Quart's (README, "Ingest cost").
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import Counter
from typing import Any

import h11
import h11._readers
from quart import Quart, g, websocket
from quart.asgi import ASGIWebsocketConnection
from quart.wrappers import Websocket

from hostpulse.auth import bearer
from hostpulse.errors import ApiError
from hostpulse.tokens import hash_token

from . import gc_pauses
from .asgi import Message, Receive, Scope, Send, scope_of
from .resources import get_resources

# RFC 9112 section 7.1.1, with token and quoted-string from RFC 9110 section 5.6.2 and 5.6.4:
#   chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED_STRING = rb'"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*"'
_CHUNK_EXT = rb"(?:[ \t]*;[ \t]*" + _TOKEN + rb"(?:[ \t]*=[ \t]*(?:" + _TOKEN + rb"|" + _QUOTED_STRING + rb"))?)*"
# h11's own chunk line (size of 1 to 20 hex digits, trailing whitespace tolerated), strict extensions
STRICT_CHUNK_HEADER = re.compile(rb"(?P<chunk_size>[0-9A-Fa-f]{1,20})(?P<chunk_ext>" + _CHUNK_EXT + rb")[ \t]*\r\n")


def strict_chunk_extensions() -> None:
    """h11 reads each chunk line with its module's ``chunk_header_re`` (h11 0.14-0.16): the
    RFC's grammar instead, for every h11 connection of the process."""
    if not isinstance(getattr(h11._readers, "chunk_header_re", None), re.Pattern):
        logging.getLogger("hostpulse.protocol").warning(
            "h11 %s reads chunk lines otherwise: chunk extensions are not checked",
            h11.__version__,  # type: ignore[attr-defined]  # h11 leaves it out of __all__
        )
        return
    h11._readers.chunk_header_re = STRICT_CHUNK_HEADER


# --- Content-Length with Transfer-Encoding, slow bodies ----------------------------------

AMBIGUOUS_FRAMING = "a request may not carry both Content-Length and Transfer-Encoding"


def refusal(status: int, error: str, message: str) -> tuple[Message, Message]:
    """An error answered before (or instead of) the app, as the app's errors look, and the
    connection closed after it (``app/edge.py`` adds the stamps every answer carries)."""
    body = json.dumps({"error": error, "message": message}, separators=(",", ":"), sort_keys=True).encode() + b"\n"
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    return (
        {"type": "http.response.start", "status": status, "headers": headers},
        {"type": "http.response.body", "body": body, "more_body": False},
    )


_BODY_FOLLOWS = "hostpulse.body_follows"  # body_follows's answer, kept in the scope


def body_follows(scope: Scope) -> bool | None:
    """Whether a body follows the request's head, or None when its framing is ambiguous
    (Content-Length with Transfer-Encoding: the request is refused unread). Read once per
    request: ``app/edge.py`` asks, then ``app/requests.py``."""
    if _BODY_FOLLOWS in scope:
        known: bool | None = scope[_BODY_FOLLOWS]
        return known
    declared: bytes | None = None  # Content-Length
    chunked = False  # Transfer-Encoding
    for name, value in scope["headers"]:
        name = name.lower()
        if name == b"content-length":
            declared = value.strip()
        elif name == b"transfer-encoding":
            chunked = True
    if chunked and declared is not None:
        follows = None
    else:
        follows = chunked or declared not in (None, b"0") or scope.get("http_version", "1.1").startswith("2")
    scope[_BODY_FOLLOWS] = follows
    return follows


class BodyWatch:
    """One request whose body is awaited: 408 and the connection closed when no piece of it
    arrives for ``timeout`` seconds while the app waits for one.

    A watchdog, not a timeout around each ``receive()``: that would put every message
    through a task of its own and change when the app sees the body's pieces (Werkzeug's
    multipart decoder answers differently for different pieces: the compat suite saw it).
    Only the time spent waiting in ``receive()`` for a piece of the body counts; when the app
    does not read (back-pressure), the client is not waited for.
    """

    def __init__(self, app: Any, timeout: float, scope: Scope) -> None:
        self.app, self.timeout, self.scope = app, timeout, scope
        self.loop = asyncio.get_running_loop()
        self.pending = True  # the body is not complete yet
        self.waiting: asyncio.Task[Any] | None = None  # the task in receive() for a piece
        self.since = 0.0  # loop.time() that wait began
        self.timed_out = False
        self.responded = False
        self.timer: asyncio.TimerHandle | None = None

    async def run(self, receive: Receive, send: Send) -> None:
        async def timed_receive() -> Message:
            if not self.pending:
                return await receive()
            task = asyncio.current_task()
            self.waiting, self.since = task, self.loop.time()
            if self.timer is None:
                self.timer = self.loop.call_later(self.timeout, self._check)
            try:
                message = await receive()
            except asyncio.CancelledError:
                if self.timed_out and task is not None and task.cancelling() == 1:
                    task.uncancel()  # our cancellation: the app is told the client left
                    return {"type": "http.disconnect"}
                raise
            finally:
                self.waiting = None
            if message["type"] != "http.request" or not message.get("more_body", False):
                self.pending = False
            return message

        async def watched_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.responded = True
            if not self.timed_out:
                await send(message)

        try:
            await self.app(self.scope, timed_receive, watched_send)
        finally:
            if self.timer is not None:
                self.timer.cancel()
        if self.timed_out and not self.responded:
            for message in refusal(
                408, "request_timeout", f"no byte of the request body arrived for {self.timeout:g} s"
            ):
                await send(message)

    def _check(self) -> None:
        self.timer = None
        if not self.pending:
            return
        if self.waiting is None:  # the app is not reading: nothing to wait for yet
            self.timer = self.loop.call_later(self.timeout, self._check)
            return
        waited = self.loop.time() - self.since
        if waited < self.timeout:
            self.timer = self.loop.call_later(self.timeout - waited, self._check)
            return
        self.timed_out, self.pending = True, False
        self.waiting.cancel()


# --- WebSockets whose route reads and writes ASGI messages itself ----------------------

#: paths whose WebSocket route reads the ASGI messages itself (:func:`asgi_of`)
DIRECT_WEBSOCKET_PATHS = frozenset({"/ws/agent"})


class DirectWebsocket(Websocket):
    """Quart's websocket, with the ASGI ``receive`` and ``send`` for a direct route."""

    asgi: tuple[Receive, Send] | None = None


class DirectWebsocketConnection(ASGIWebsocketConnection):
    """For a path of :data:`DIRECT_WEBSOCKET_PATHS`, no receiver task and no queue: the route
    is handed the ASGI callables (``websocket.connect`` is its first message, and it returns
    at ``websocket.disconnect``, as Quart would have cancelled it). Measured with
    ``bench.agents --cost``: Quart's queue, task and signals were ~60 us of a batch's
    ~250 us outside the store. Any other path is Quart's own handling."""

    async def __call__(self, receive: Any, send: Any) -> None:
        if self.scope["path"] not in DIRECT_WEBSOCKET_PATHS:
            await super().__call__(receive, send)
            return
        gc_pauses.install()  # a process holding agents' sockets: full collections kept short
        direct = self._create_websocket_from_scope(send)
        if isinstance(direct, DirectWebsocket):
            direct.asgi = (receive, send)
        await self.handle_websocket(direct, send)


def asgi_of(current: Any) -> tuple[Receive, Send]:
    """The ASGI ``receive`` and ``send`` of the current direct WebSocket (``quart.websocket``)."""
    found = current._get_current_object() if hasattr(current, "_get_current_object") else current
    if not isinstance(found, DirectWebsocket) or found.asgi is None:
        raise RuntimeError("not a direct WebSocket: add its path to DIRECT_WEBSOCKET_PATHS")
    return found.asgi


# --- connections per token ------------------------------------------------------------

#: the scope key of the token hash a request or WebSocket holds a slot for (app/edge.py gives it back)
SLOT = "hostpulse.connection_slot"


def take_slot(scope: Scope, authorization: str | None, user: object | None) -> None:
    """Count this request or WebSocket against its token (``user`` is who it authenticated
    as: None holds nothing); 429 past the cap."""
    if user is None:  # public, and no valid token: nothing held for anyone
        return
    resources = get_resources()
    cap = resources.settings.limits.connections_per_token
    token = bearer(authorization)
    if not cap or token is None:
        return
    key = hash_token(token)
    counts = resources.connections
    if counts[key] >= cap:
        raise ApiError(
            429,
            "too_many_requests",
            f"this token already has {cap} requests and WebSockets in progress here",
            headers={"Retry-After": "1"},
        )
    counts[key] += 1
    scope[SLOT] = key


def hold_slot(token: str) -> None:
    """Count a WebSocket whose token came in its first message (a browser's) against that
    token, as a handshake's ``Authorization`` is counted: 429 past the cap; given back when
    the WebSocket ends."""
    take_slot(scope_of(websocket), f"Bearer {token}", g.get("user"))


def give_slot_back(scope: Scope, counts: Counter[str]) -> None:
    """The exchange is over (its answer sent, or its WebSocket closed)."""
    key = scope.pop(SLOT, None)
    if key is not None:
        counts[key] -= 1
        if counts[key] <= 0:
            del counts[key]


def install(app: Quart) -> None:
    strict_chunk_extensions()
    app.websocket_class = DirectWebsocket
    app.asgi_websocket_class = DirectWebsocketConnection
