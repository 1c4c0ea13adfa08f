"""The global interceptors of seed 002 (section 4.2), and JSON errors for everything.

Every HTTP answer carries ``X-Request-ID`` and ``X-Response-Time``. The Flask version adds
them in ``after_request``; here :func:`stamps` makes them and ``app/edge.py`` appends them to
the answer's headers at the ASGI layer, where they land in the same place (last, as
``after_request`` left them), for a fraction of the cost: a Quart hook and the proxies it
reads took ~5 µs a request, a tenth of ``GET /json/dict`` in the app (README, "Benchmarks":
``bench/overhead.py``). For the same reason one hook, :func:`authenticate`, both checks the
token and counts the request against it (``app/protocol.py``).
"""

from __future__ import annotations

import os
import time

from quart import Quart, Response, current_app, g, jsonify, request, websocket
from quart.wrappers import Request, Websocket
from werkzeug.datastructures import Headers
from werkzeug.exceptions import HTTPException

from hostpulse.auth import PUBLIC, authorize, required_role
from hostpulse.errors import describe, internal_error
from hostpulse.payloads import REQUEST_ID, elapsed_ms

from .asgi import Scope, scope_of
from .protocol import take_slot
from .resources import get_settings


def _joined(headers: Headers, name: str) -> str | None:
    """A header as a WSGI server hands it to Flask: repeated lines joined by ``,``.

    Quart keeps repeated lines apart and ``get`` answers the first; gunicorn joins them
    (RFC 9110 5.3), so two ``Authorization`` lines are one unknown token to the Flask version.
    """
    values = headers.getlist(name)
    return ",".join(values) if values else None


async def authenticate() -> None:
    """Routing has matched (else the dispatch raises its 404/405); now the token and role,
    and the request counted against its token. A public route without a token has no one to
    look up (``authorize`` would answer None)."""
    current: Request = request._get_current_object()  # type: ignore[attr-defined]  # one proxy lookup, not one per attribute
    rule = current.url_rule
    if rule is None:
        return
    authorization = _joined(current.headers, "Authorization")
    method = current.method
    if authorization is None and required_role(rule.rule, method) is PUBLIC:
        g.user = None
        return
    g.user = user = authorize(get_settings(), rule.rule, method, authorization)
    take_slot(scope_of(current), authorization, user)


async def authenticate_websocket() -> None:
    """The same for a WebSocket's handshake: two ``Authorization`` lines are read joined, as
    an HTTP request's are (Quart's ``headers.get`` would take the first)."""
    current: Websocket = websocket._get_current_object()  # type: ignore[attr-defined]
    if current.url_rule is None:
        return
    authorization = _joined(current.headers, "Authorization")
    g.user = user = authorize(get_settings(), current.url_rule.rule, "GET", authorization)
    take_slot(scope_of(current), authorization, user)


class _RequestIds:
    """``uuid.uuid4().hex``, the Flask version's new id, 256 at a time: 4 KiB from
    ``os.urandom`` (one system call, not one a request), the version nibble 4 and the variant
    bits 10 set in each 16 bytes, the lot made hex once; an id is then a slice (0.1 µs,
    against 1.7 for ``uuid4().hex``). A forked child starts with none, so no two processes
    hand out the same ids."""

    COUNT = 256

    def __init__(self) -> None:
        self.forget()

    def forget(self) -> None:
        self.hex, self.at = "", self.COUNT

    def next(self) -> str:
        if self.at >= self.COUNT:
            raw = bytearray(os.urandom(16 * self.COUNT))
            for i in range(0, len(raw), 16):
                raw[i + 6] = raw[i + 6] & 0x0F | 0x40  # version 4
                raw[i + 8] = raw[i + 8] & 0x3F | 0x80  # variant RFC 4122
            self.hex, self.at = raw.hex(), 0
        at = self.at * 32
        self.at += 1
        return self.hex[at : at + 32]


_ids = _RequestIds()
os.register_at_fork(after_in_child=_ids.forget)


def new_request_id() -> str:
    """A fresh id, as ``uuid.uuid4().hex`` makes it."""
    return _ids.next()


def request_id_of(scope: Scope) -> bytes:
    """The request's ``X-Request-ID`` (repeated lines joined by ``,``, as :func:`_joined`
    reads them) when well-formed, else a new one."""
    incoming = [value for name, value in scope["headers"] if name.lower() == b"x-request-id"]
    if incoming:
        joined = b",".join(incoming)
        if REQUEST_ID.fullmatch(joined.decode("latin-1")):
            return joined
    return new_request_id().encode()


def stamps(scope: Scope, started: float) -> tuple[tuple[bytes, bytes], tuple[bytes, bytes]]:
    """``X-Request-ID`` and ``X-Response-Time`` (ms since ``started``, when the request
    reached the app) for an HTTP answer's headers."""
    return (b"x-request-id", request_id_of(scope)), (
        b"x-response-time",
        elapsed_ms(started, time.perf_counter()).encode(),
    )


async def http_error(exc: HTTPException) -> tuple[Response, int, list[tuple[str, str]]]:
    status, body, headers = describe(exc)
    return jsonify(body), status, headers


async def unexpected_error(exc: Exception) -> tuple[Response, int]:
    current_app.logger.exception("unhandled error on %s %s", request.method, request.path)
    return jsonify(internal_error()), 500


def register(app: Quart) -> None:
    app.before_request(authenticate)
    app.before_websocket(authenticate_websocket)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, unexpected_error)
