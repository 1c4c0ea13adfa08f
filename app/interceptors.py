"""The global interceptors of seed 002 (section 4.2), and JSON errors for everything.

Every HTTP answer carries ``X-Request-ID`` and ``X-Response-Time``. The Flask version adds
them in ``after_request``; here :class:`Stamp` appends them to the answer's headers at the
ASGI layer, where they land in the same place (last, as ``after_request`` left them), for
a fraction of the cost: a Quart hook and the proxies it reads took ~5 µs a request,
a tenth of ``GET /json/dict`` in the app (README, "Benchmarks": ``bench/overhead.py``).
"""

from __future__ import annotations

import os
import time
from typing import Any

from quart import Quart, Response, current_app, g, jsonify, request, websocket
from werkzeug.exceptions import HTTPException

from hostpulse.auth import PUBLIC, authorize, required_role
from hostpulse.errors import describe, internal_error
from hostpulse.payloads import REQUEST_ID, elapsed_ms

from .asgi import Message, Receive, Scope, Send
from .resources import get_settings


def field(name: str) -> str | None:
    """A request header as a WSGI server hands it to Flask: repeated lines joined by ``,``.

    Quart keeps repeated lines apart and ``get`` answers the first; gunicorn joins them
    (RFC 9110 5.3), so two ``Authorization`` lines are one unknown token to the Flask version.
    """
    values = request.headers.getlist(name)
    return ",".join(values) if values else None


async def authenticate() -> None:
    """Routing has matched (else the dispatch raises its 404/405); now the token and role.
    A public route without a token has no one to look up (``authorize`` would answer None)."""
    rule = request.url_rule
    if rule is None:
        return
    authorization = field("Authorization")
    method = request.method
    if authorization is None and required_role(rule.rule, method) is PUBLIC:
        g.user = None
        return
    g.user = authorize(get_settings(), rule.rule, method, authorization)


async def authenticate_websocket() -> None:
    if websocket.url_rule is None:
        return
    g.user = authorize(get_settings(), websocket.url_rule.rule, "GET", websocket.headers.get("Authorization"))


# uuid.uuid4().hex, the Flask version's new id, made from the same 16 random bytes without
# building a UUID object (1.7 µs against 0.5): the version nibble 4, the variant bits 10.
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def new_request_id() -> str:
    """A fresh id, as ``uuid.uuid4().hex`` makes it."""
    return f"{int.from_bytes(os.urandom(16)) & _UUID4_CLEAR | _UUID4_SET:032x}"


def request_id_of(scope: Scope) -> bytes:
    """The request's ``X-Request-ID`` (repeated lines joined by ``,``, as :func:`field`
    reads them) when well-formed, else a new one."""
    incoming = [value for name, value in scope["headers"] if name.lower() == b"x-request-id"]
    if incoming:
        joined = b",".join(incoming)
        if REQUEST_ID.fullmatch(joined.decode("latin-1")):
            return joined
    return new_request_id().encode()


class Stamp:
    """ASGI middleware: ``X-Request-ID`` and ``X-Response-Time`` (ms since the request reached
    the app) appended to each HTTP answer's headers."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id_of(scope)),
                    (b"x-response-time", elapsed_ms(started, time.perf_counter()).encode()),
                ]
            await send(message)

        await self.app(scope, receive, stamped)


async def http_error(exc: HTTPException) -> tuple[Response, int, list[tuple[str, str]]]:
    status, body, headers = describe(exc)
    return jsonify(body), status, headers


async def unexpected_error(exc: Exception) -> tuple[Response, int]:
    current_app.logger.exception("unhandled error on %s %s", request.method, request.path)
    return jsonify(internal_error()), 500


def register(app: Quart) -> None:
    """The hooks, and :class:`Stamp` around the app (inside ``app/protocol.py``'s guard,
    whose own answers carry both headers already)."""
    app.before_request(authenticate)
    app.before_websocket(authenticate_websocket)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, unexpected_error)
    app.asgi_app = Stamp(app.asgi_app)  # type: ignore[method-assign, assignment]  # app/asgi.py
